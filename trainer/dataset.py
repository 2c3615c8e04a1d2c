"""A labelled source (one sub-folder per class) turned into decoded, split, fingerprinted data.

Every file is identified by its content, not its name. A file that is not an image we can
decode is skipped with its reason, recorded in the run; no file is ever changed or deleted.
"""

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from db.errors import InvalidInput
from trainer.images import DEFAULT_MAX_PIXELS, ImageError, decode_image
from trainer.storage import Storage, open_storage

MIN_IMAGES_PER_CLASS = 5
SPLIT_FRACTIONS = (0.7, 0.2, 0.1)  # train, validation, test: the tutorial's proportions


class DatasetError(InvalidInput):
    """A labelled source that cannot be trained on; the message says what to fix."""


@dataclass
class LabelledImages:
    """Decoded images of a source with their class indices, and what had to be skipped."""

    source: str
    class_names: list[str]
    uris: list[str]
    images: np.ndarray  # (n, size, size, 3) float32 in [0, 255], from trainer.images.decode_image
    labels: np.ndarray  # (n,) int32 class indices
    fingerprint: str
    skipped: list[dict] = field(default_factory=list)
    sha256: list[str] = field(default_factory=list)  # each image's content hash, as `uris`


@dataclass
class Split:
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    # Of `train`, the images a person reviewed (trainer.corrections adds them): none by default.
    reviewed: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


def _relative(storage: Storage, uri: str) -> str:
    return uri[len(storage.root):].lstrip("/")


def list_labelled_files(storage: Storage) -> tuple[list[str], list[tuple[str, str]], list[dict]]:
    """(class names, [(uri, class name)], skipped) for a source with one sub-folder per class."""
    files, skipped = [], []
    for listing in storage.iter_files():
        relative = _relative(storage, listing.uri)
        parts = relative.split("/")
        if any(part.startswith(".") for part in parts):
            continue  # hidden files and folders (.DS_Store, .git) are not data
        if listing.problem:
            skipped.append({"uri": listing.uri, "reason": listing.problem})
        elif len(parts) < 2:
            skipped.append({"uri": listing.uri, "reason": "not inside a class folder"})
        else:
            files.append((listing.uri, parts[0]))
    class_names = sorted({class_name for _, class_name in files})
    # Name order, whatever order the storage listed them in: the seeded split depends on it.
    return class_names, sorted(files), sorted(skipped, key=lambda item: item["uri"])


def fingerprint_files(entries: list[tuple[str, bytes]]) -> str:
    """Hash of every file's relative name and content: changes when any image changes."""
    digest = hashlib.sha256()
    for name, data in sorted(entries):
        digest.update(name.encode("utf-8", "surrogateescape") + b"\0")
        digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest()


def source_fingerprint(source: str) -> str:
    """The dataset fingerprint without decoding: the same hash training records."""
    storage = open_storage(source)
    _, files, _ = list_labelled_files(storage)
    return fingerprint_files([(_relative(storage, uri), storage.read_bytes(uri))
                              for uri, _ in files])


def load_labelled_images(source: str, image_size: int, max_pixels: int = DEFAULT_MAX_PIXELS,
                         threads: int = 4) -> LabelledImages:
    """Read, identify and decode every image of a labelled source with the one decode path,
    refusing those over `max_pixels` (the limit workers apply: HAPPYSAD_MAX_IMAGE_PIXELS, passed
    by the caller), so training refuses the same images."""
    storage = open_storage(source)
    if not storage.exists():
        raise DatasetError(f"training source not found: {source}")
    class_names, files, skipped = list_labelled_files(storage)
    if len(class_names) < 2:
        raise DatasetError(
            f"{source} needs at least two class sub-folders with images, found {len(class_names)}"
            + (f" ({class_names[0]})" if class_names else "")
        )

    def read_and_decode(item: tuple[str, str]):
        uri, class_name = item
        try:
            data = storage.read_bytes(uri)
        except OSError as error:
            return uri, class_name, None, None, f"cannot read: {error.strerror or error}"
        try:
            return uri, class_name, data, decode_image(data, image_size, max_pixels), None
        except ImageError as error:
            return uri, class_name, data, None, str(error)

    uris, labels, decoded, hashed, content_hashes = [], [], [], [], []
    with ThreadPoolExecutor(threads) as pool:  # OpenCV releases the GIL while decoding
        for uri, class_name, data, pixels, problem in pool.map(read_and_decode, files):
            if data is not None:
                hashed.append((_relative(storage, uri), data))
            if problem:
                skipped.append({"uri": uri, "reason": problem})
                continue
            uris.append(uri)
            content_hashes.append(hashlib.sha256(data).hexdigest())
            labels.append(class_names.index(class_name))
            decoded.append(pixels)

    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(class_names))
    for class_name, count in zip(class_names, counts):
        if count < MIN_IMAGES_PER_CLASS:
            raise DatasetError(
                f"class {class_name!r} has {count} usable images; at least "
                f"{MIN_IMAGES_PER_CLASS} are needed to train, validate and test"
            )
    return LabelledImages(
        source=storage.root, class_names=class_names, uris=uris,
        images=np.stack(decoded).astype(np.float32), labels=np.asarray(labels, dtype=np.int32),
        fingerprint=fingerprint_files(hashed), skipped=skipped, sha256=content_hashes,
    )


def stratified_split(labels: np.ndarray, seed: int) -> Split:
    """70/20/10 indices per class, seeded; every class has at least one test and one
    validation image, so the test split is never empty (the tutorial's could be)."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "validation": [], "test": []}
    for class_index in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == class_index))
        n_test = max(1, round(len(members) * SPLIT_FRACTIONS[2]))
        n_validation = max(1, round(len(members) * SPLIT_FRACTIONS[1]))
        parts["test"].append(members[:n_test])
        parts["validation"].append(members[n_test:n_test + n_validation])
        parts["train"].append(members[n_test + n_validation:])
    return Split(**{name: rng.permutation(np.concatenate(chunks)) for name, chunks in parts.items()})


def class_weights(labels: np.ndarray, class_count: int) -> dict[int, float]:
    """Balanced weights, so a class with fewer photos is not simply outvoted."""
    counts = np.bincount(labels, minlength=class_count).astype(np.float64)
    return {index: float(len(labels) / (class_count * count)) for index, count in enumerate(counts)}
