"""What every part of the throughput benchmark shares: paths, environments, generated data."""

import os
import shutil
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
IMAGE_SIZE = 256  # the tutorial's CNN input
JPEG_SHAPES = {"256x256": (256, 256), "1024x768": (1024, 768)}
PHOTOS = "photos"  # the name of the end-to-end runs on real photos (--photos)

def log(message: str) -> None:
    print(f"[throughput] {message}", file=sys.stderr, flush=True)


def clean_env(**extra: str) -> dict:
    """This environment without its HAPPYSAD_ settings, but for the engine the run was asked
    to use (a run sets HAPPYSAD_ENGINE per measurement)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAPPYSAD_")}
    engine = os.environ.get("HAPPYSAD_ENGINE", "auto")
    return env | {"PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2",
                  "HAPPYSAD_ENGINE": engine} | extra


def use_env(env: dict) -> None:
    """Point this process's settings and database engine at another home/database."""
    from db.session import dispose_engines
    from db.settings import reset_settings

    for name in [k for k in os.environ if k.startswith("HAPPYSAD_")]:
        del os.environ[name]
    os.environ.update({k: v for k, v in env.items() if k.startswith("HAPPYSAD_")})
    reset_settings()
    dispose_engines()

def write_jpegs(folder: Path, shape: tuple[int, int], count: int, unique: int = 48) -> Path:
    """`count` JPEGs of drawn faces; a few dozen distinct files, hard-linked under many names."""
    import cv2

    from trainer.sample_data import CLASS_NAMES, draw_face

    rng = np.random.default_rng(0)
    originals = folder / f"originals-{shape[0]}x{shape[1]}"
    originals.mkdir(parents=True)
    width, height = shape
    for index in range(unique):
        face = draw_face(CLASS_NAMES[index % 2], height, rng)
        side = (width - height) // 2  # wide photos: the face in the middle, edges mirrored
        image = cv2.copyMakeBorder(face, 0, 0, side, side, cv2.BORDER_REFLECT)
        cv2.imwrite(str(originals / f"{index}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    source = folder / f"jpeg-{shape[0]}x{shape[1]}-{count}"
    source.mkdir()
    for index in range(count):
        os.link(originals / f"{index % unique}.jpg", source / f"{index:07d}.jpg")
    return source


def copy_photos(folders: list[Path], destination: Path) -> list[Path]:
    """Every file with an image name under `folders` (searched recursively), copied once into
    `destination` and shuffled (seed 0), so the first few hundred, which the stages and the
    one-image loop time, come from every folder. Copied, not linked: the sets stay untouched."""
    from trainer.formats import has_image_name

    destination.mkdir(parents=True)
    found = [path for folder in folders for path in sorted(Path(folder).rglob("*"))
             if path.is_file() and has_image_name(path.name) and not path.name.startswith(".")]
    copies = []
    for index, path in enumerate(found):
        copies.append(destination / f"{index:05d}{path.suffix.lower()}")
        shutil.copyfile(path, copies[-1])
    return [copies[index] for index in np.random.default_rng(0).permutation(len(copies))]


def link_repeated(originals: list[Path], source: Path, count: int) -> Path:
    """`count` hard links to `originals` in turn under distinct names (each keeps its
    extension), so a job of any size is made of the same few hundred files."""
    source.mkdir(parents=True)
    for index in range(count):
        original = originals[index % len(originals)]
        os.link(original, source / f"{index:07d}{original.suffix}")
    return source


def train_and_register(sample_folder: Path, homes: dict[str, dict],
                       architecture: str = "baseline", recipe: bool = False) -> str:
    """A model of `architecture` at IMAGE_SIZE registered as production in every mode's
    database: one quick epoch (generated JPEGs: this is about speed), or with `recipe` the
    architecture's own epochs and augmentation, the model a user gets (real photos: the engines'
    reduced-precision check is judged on a fitted model, not a near-random one). Returns the
    first registration's file."""
    from db.session import session_scope
    from db.settings import get_settings
    from trainer.registry import register
    from trainer.train import TrainingParams, train

    params = (TrainingParams(architecture=architecture, image_size=IMAGE_SIZE) if recipe else
              TrainingParams(architecture=architecture, epochs=1, image_size=IMAGE_SIZE,
                             augment=False))
    result = train(str(sample_folder), params)
    paths = []
    for env in homes.values():
        use_env(env)
        paths.append(register(result, promote="always", settings=get_settings(),
                              sessions=session_scope).path)
    return paths[0]

def tutorial_model(sample_folder: Path, path: Path) -> str:
    """The tutorial's CNN (baseline, 1 epoch) saved at `path`: the yardstick's model."""
    from trainer.train import TrainingParams, train

    result = train(str(sample_folder), TrainingParams(
        architecture="baseline", epochs=1, image_size=IMAGE_SIZE, augment=False))
    result.model.save(path)
    return str(path)


def rss_mb(pid: int, field: str = "VmRSS") -> float | None:
    """A process's resident memory (VmRSS) or its peak (VmHWM), in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass  # the process has gone
    return None


def engines_record(env: dict) -> dict:
    """The production version's engine record in `env`'s database (its OpenVINO files' hashes
    and reduced-precision verdicts): what a worker's engine choice reads."""
    from db import queries
    from db.session import session_scope

    use_env(env)
    with session_scope() as session:
        return (queries.production_model_version(session).params or {}).get("engines", {})
