"""Which precisions a model version may run in: the fixed probe images every parity check uses,
and the reduced-precision check, made once per version at registration.

fp32 runtimes must give fp32's probabilities (worker.engine checks them at start). A reduced
precision (bf16) moves probabilities further than that (the linear head over standardised
features amplifies small feature errors), so the question for it is whether labels and accuracy
hold: it is allowed only if, on the version's own held-out test split and the probes, at least
AGREEMENT_NEEDED of labels agree with fp32 and accuracy drops by at most ACCURACY_DROP_ALLOWED.
It is checked where the hardware runs it: on a CPU without bf16 it is simply not a candidate.
"""

import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from trainer.conversion import CLASS_OUTPUT, Run, image_input_name
from trainer.faces import ModelBatch, model_batch
from trainer.model import class_probabilities

logger = logging.getLogger(__name__)

# Parity of an fp32 runtime: the largest difference allowed in any output. The same arithmetic
# in another order moves a probability by about 1e-6 (OpenVINO fp32: < 1e-5 on the default
# model); a wrong input or layer moves it by far more.
PROBABILITY_TOLERANCE = 1e-3
# Familiarity (trainer.model.familiarity_output) is a distance through a steep ramp, not a
# probability: a runtime's other rounding of the first layer's statistics moves it by up to
# ~1e-2 on probes, which changes nothing a user sees (it is shown to two decimals and only
# weighs the photo's score against the face's).
OUTPUT_TOLERANCES = {"familiarity": 0.03}
PROBE_COUNT = 16
AGREEMENT_NEEDED = 0.995
ACCURACY_DROP_ALLOWED = 0.005  # half a point
# Reduced precisions and the CPU flags that run them in hardware (emulated, they are slower).
REDUCED_PRECISION_FLAGS = {"bf16": frozenset({"amx_bf16", "avx512_bf16"})}


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass  # not Linux: no flags, so fp32 only
    return set()


def probe_images(image_size: int) -> np.ndarray:
    """Fixed, deterministic probes (uint8 pixels): seeded noise, smooth blobs, gradients and
    flat fields."""
    rng = np.random.default_rng(20240601)
    axis = np.linspace(0.0, 1.0, image_size, dtype=np.float32)
    across, down = np.meshgrid(axis, axis)
    fields = [across, down, (across + down) / 2, np.hypot(across - 0.5, down - 0.5) * 1.4]
    probes = [rng.random((image_size, image_size, 3), dtype=np.float32) for _ in range(4)]
    for _ in range(4):
        blobs = rng.random((4, 4, 3), dtype=np.float32)
        probes.append(np.kron(blobs, np.ones((image_size // 4 + 1,) * 2 + (1,)))[
            :image_size, :image_size].astype(np.float32))
    for index, field in enumerate(fields):
        probes.append(np.stack([field, 1 - field, np.roll(field, index, 0)], axis=-1))
        colour = rng.random(3, dtype=np.float32)
        probes.append(np.clip(colour * field[..., None] + 0.1 * rng.standard_normal(
            (image_size, image_size, 3), dtype=np.float32), 0, 1))
    unit = np.clip(np.stack(probes[:PROBE_COUNT]), 0.0, 1.0)
    return np.round(unit * 255).astype(np.uint8)


@dataclass
class Verdict:
    precision: str
    passed: bool
    label_agreement: float  # on the test split and the probes
    accuracy_fp32: float  # on the test split
    accuracy: float
    images: int

    def describe(self) -> str:
        return (f"{self.precision}: {self.label_agreement:.2%} of labels agree with fp32 on "
                f"{self.images} images (needs {AGREEMENT_NEEDED:.1%}), test accuracy "
                f"{self.accuracy:.2%} against fp32's {self.accuracy_fp32:.2%} (may drop "
                f"{ACCURACY_DROP_ALLOWED * 100:.1f} point)")


def judge(precision: str, reference, candidate, labels) -> Verdict:
    """Class probabilities of fp32 and of the candidate over the test split then the probes;
    `labels`: the test split's true classes (the first len(labels) rows)."""
    reference, candidate, labels = np.asarray(reference), np.asarray(candidate), np.asarray(labels)
    finite = bool(np.all(np.isfinite(candidate))) and candidate.shape == reference.shape
    agreement = float(np.mean(reference.argmax(1) == candidate.argmax(1))) if finite else 0.0
    test = slice(0, len(labels))
    accuracy_fp32 = float(np.mean(reference[test].argmax(1) == labels)) if len(labels) else 1.0
    accuracy = (float(np.mean(candidate[test].argmax(1) == labels)) if finite else 0.0) \
        if len(labels) else accuracy_fp32
    passed = (finite and agreement >= AGREEMENT_NEEDED
              and accuracy_fp32 - accuracy <= ACCURACY_DROP_ALLOWED + 1e-9)
    return Verdict(precision, passed, agreement, accuracy_fp32, accuracy, len(reference))


def image_size(model) -> int:
    """The side in pixels of the decoded images `model` takes."""
    name = image_input_name(model)
    return next(tensor.shape[1] for tensor in model.inputs if tensor.name == name)


def named_batch(model, pixels: np.ndarray) -> ModelBatch:
    """uint8 pixels -> the model's inputs by name: the image, and whatever else
    trainer.faces.model_batch finds for it (the face search), a row per face read."""
    batch = model_batch(model, pixels)
    if isinstance(batch.inputs, dict):
        return batch
    return replace(batch, inputs={image_input_name(model): batch.inputs})


def output_differences(reference: dict, candidate: dict) -> tuple[dict[str, float], bool]:
    """The largest difference of each output ({name: value}), and whether every one is within
    its tolerance (OUTPUT_TOLERANCES, else PROBABILITY_TOLERANCE; NaN never is)."""
    differences = {name: float(np.max(np.abs(np.asarray(reference[name], np.float64) -
                                             candidate[name]), initial=0)) for name in reference}
    return differences, all(value <= OUTPUT_TOLERANCES.get(name, PROBABILITY_TOLERANCE)
                            for name, value in differences.items())


def check_fp32_parity(model, candidate: Run, reference: Run, images) -> dict:
    """Whether an fp32 runtime gives TensorFlow's outputs on the version's held-out test split
    (`images`: uint8 pixels), every output within its tolerance: the worker's start-up check
    runs on fixed probes, which a face-reading model finds unlike anything it was trained on
    and answers alike, so only real images show its photo path. Logged, with its figure."""
    size = image_size(model)
    batch = named_batch(model, np.asarray(images, np.uint8).reshape(-1, size, size, 3))
    expected = reference(batch.inputs)
    try:
        differences, passed = output_differences(expected, candidate(batch.inputs))
    except Exception as error:  # a runtime that cannot run it, or answers another shape
        why = f"fp32: failed on the test images: {error}"
        logger.warning("OpenVINO refused (%s)", why)
        return {"passed": False, "images": len(images), "why": why}
    why = (f"fp32: max |d| {max(differences.values(), default=0.0):.2g} over "
           f"{len(differences)} output(s) on {len(images)} test images (tolerance "
           f"{PROBABILITY_TOLERANCE}, familiarity {OUTPUT_TOLERANCES['familiarity']})")
    logger.log(logging.INFO if passed else logging.WARNING, "OpenVINO %s (%s)",
               "matches TensorFlow" if passed else "refused", why)
    return {"passed": passed, "max_difference": differences, "images": len(images), "why": why}


def check_reduced_precision(model, candidates: dict[str, Run], reference: Run, images,
                            labels, class_count: int, flags: set[str] | None = None) -> dict:
    """{precision: verdict record} for every reduced precision: checked (with `candidates`'
    runner) where this CPU runs it in hardware, else recorded as not a candidate. `images`:
    the test split's uint8 pixels. Each verdict is logged with its figures."""
    flags = cpu_flags() if flags is None else flags
    record = {}
    for precision, needed in REDUCED_PRECISION_FLAGS.items():
        if not needed & flags or precision not in candidates:
            record[precision] = {"passed": False, "why": f"not a candidate: no {precision} "
                                 f"hardware ({', '.join(sorted(needed))}) on the checking CPU"}
            continue
        size = image_size(model)
        batch = named_batch(model, np.concatenate(
            [np.asarray(images, np.uint8).reshape(-1, size, size, 3), probe_images(size)]))
        probabilities = [class_probabilities(batch.outputs(run)[CLASS_OUTPUT], class_count)
                         for run in (reference, candidates[precision])]
        verdict = judge(precision, *probabilities, labels)
        logger.log(logging.INFO if verdict.passed else logging.WARNING, "reduced precision %s "
                   "(%s)", "allowed" if verdict.passed else "refused", verdict.describe())
        record[precision] = asdict(verdict) | {"why": verdict.describe()}
    return record
