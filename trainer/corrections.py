"""Reviewed images as training data: read through each job's own storage (never copied or
moved), deduplicated by content, fingerprinted, added to a run's training split only, and
exported as a labelled folder of copies.

The held-out images (validation and test) are drawn from HAPPYSAD_TRAIN_DATA alone, as
without reviews, so the promotion gate compares challenger and production on the same images;
a reviewed image whose bytes are already in HAPPYSAD_TRAIN_DATA keeps its folder label there
and is not added, so no image is ever in both training and the held-out set.
"""

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from trainer.dataset import LabelledImages, Split
from trainer.images import ImageError, decode_image
from trainer.storage import StorageError, open_storage
from trainer.storage.uri_text import decode_uri

IN_TRAIN_DATA = "already in HAPPYSAD_TRAIN_DATA: keeps its folder label there"


@dataclass(frozen=True)
class Correction:
    """A reviewed image's bytes and the label a person gave it."""

    source: str
    uri: str
    label: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def read_corrections(reviewed: Iterable) -> tuple[list[Correction], list[dict]]:
    """Read each reviewed image (objects with `source`, `uri`, `label`, oldest first) through
    its job's storage; one per content, the latest verdict winning. (corrections, skipped)."""
    storages, by_content, skipped = {}, {}, []
    for item in reviewed:
        storage = storages.get(item.source) or storages.setdefault(item.source,
                                                                   open_storage(item.source))
        try:
            data = storage.read_stored(item.uri)  # the stored text, decoded inside storage
        except StorageError as error:  # gone since it was labelled, or unreadable
            skipped.append({"uri": item.uri, "reason": f"cannot read: {error}"})
            continue
        correction = Correction(item.source, item.uri, item.label, data)
        by_content.pop(correction.sha256, None)  # re-inserted last: the latest verdict wins
        by_content[correction.sha256] = correction
    return list(by_content.values()), skipped


def corrections_fingerprint(corrections: list[Correction]) -> str | None:
    """Hash of every reviewed image's content and label; None when there is none."""
    if not corrections:
        return None
    digest = hashlib.sha256()
    for sha, label in sorted((c.sha256, c.label) for c in corrections):
        digest.update(f"{sha}\0{label}\0".encode())
    return digest.hexdigest()


def training_fingerprint(source_fingerprint: str, corrections: list[Correction]) -> str:
    """The run's data fingerprint: the source's alone when nothing is reviewed (so a retrain
    with no reviews sees the data unchanged), else both together."""
    reviewed = corrections_fingerprint(corrections)
    if reviewed is None:
        return source_fingerprint
    return hashlib.sha256(f"{source_fingerprint}\0reviews\0{reviewed}".encode()).hexdigest()


def add_to_training(data: LabelledImages, split: Split, corrections: list[Correction],
                    image_size: int, max_pixels: int | None = None) -> int:
    """Append the usable corrections to `data` and to the training split only (in place);
    the held-out splits are untouched. Returns how many were added; the rest are in skipped."""
    in_source = set(data.sha256)
    uris, labels, decoded, hashes = [], [], [], []
    for correction in corrections:
        problem = None
        if correction.sha256 in in_source:
            problem = IN_TRAIN_DATA
        elif correction.label not in data.class_names:
            problem = (f"reviewed label {correction.label!r} is not a class of the training "
                       f"data ({', '.join(data.class_names)})")
        else:
            try:
                kwargs = {"max_pixels": max_pixels} if max_pixels else {}
                decoded.append(decode_image(correction.data, image_size, **kwargs))
            except ImageError as error:
                problem = str(error)
        if problem:
            data.skipped.append({"uri": correction.uri, "reason": f"reviewed image: {problem}"})
            continue
        uris.append(correction.uri)
        hashes.append(correction.sha256)
        labels.append(data.class_names.index(correction.label))
    data.fingerprint = training_fingerprint(data.fingerprint, corrections)
    if not uris:
        return 0
    first = len(data.uris)
    data.uris = data.uris + uris
    data.sha256 = data.sha256 + hashes
    data.images = np.concatenate([data.images, np.stack(decoded).astype(np.float32)])
    data.labels = np.concatenate([data.labels, np.asarray(labels, dtype=np.int32)])
    split.reviewed = np.arange(first, first + len(uris))
    split.train = np.concatenate([split.train, split.reviewed])
    return len(uris)


def export_corrections(corrections: list[Correction], dest: str | Path) -> dict:
    """Write copies into DEST/<label>/<file name>: a new or empty folder, never over a file.
    Two different images with one name keep both (the second gets its hash in its name)."""
    dest = Path(dest).expanduser()
    if dest.exists() and not dest.is_dir():
        raise FileExistsError(f"{dest} is a file: give a new or empty folder")
    if dest.is_dir() and any(dest.iterdir()):
        raise FileExistsError(f"{dest} is not empty: give a new or empty folder (nothing "
                              "was written)")
    per_class: dict[str, int] = {}
    for correction in corrections:
        folder = dest / correction.label
        folder.mkdir(parents=True, exist_ok=True)
        name = PurePosixPath(decode_uri(correction.uri)).name or "image"  # its own name back
        target = folder / name
        if target.exists():
            stem, suffix = PurePosixPath(name).stem, PurePosixPath(name).suffix
            target = folder / f"{stem}-{correction.sha256[:12]}{suffix}"
        with open(target, "xb") as file:  # never overwrite
            file.write(correction.data)
        per_class[correction.label] = per_class.get(correction.label, 0) + 1
    return {"dest": str(dest.resolve()), "images": sum(per_class.values()),
            "per_class": dict(sorted(per_class.items()))}
