"""A model version's file, fetched, verified and loaded: what the submitter checks and a worker
loads. Light on purpose (TensorFlow only inside `load_model`): `happysad submit` verifies the
model before it makes a job, and must not pay for an image or machine-learning library.
"""

import hashlib
import os
from pathlib import Path

from db.errors import HappysadError
from db.tables import ModelVersion
from trainer.formats import SERVABLE_PREPROCESSING_VERSIONS
from trainer.storage import StorageError, is_bucket_uri, open_storage


class ModelLoadError(HappysadError):
    """A model file that is missing, corrupt, tampered with, or made for another pipeline."""


def version_folder(version: int) -> str:
    return f"v{version:04d}"


def local_model_path(row: ModelVersion, cache_folder: Path) -> Path:
    """A local file for the version's model: itself, or a cached copy of the bucket object."""
    return local_version_file(row, "model.keras", cache_folder)


def local_version_file(row: ModelVersion, name: str, cache_folder: Path) -> Path:
    """A local file for one of the version's files beside model.keras (`name`): itself, or a
    cached copy of the bucket object under `cache_folder` (HAPPYSAD_HOME's cache, named by the
    caller's settings)."""
    if not is_bucket_uri(row.path):
        return Path(row.path).with_name(name)
    cached = cache_folder / version_folder(row.version) / name
    if not cached.exists():
        storage = open_storage(row.path.rsplit("/", 2)[0])
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_name(f"{name}.{os.getpid()}.partial")
        partial.write_bytes(storage.read_bytes(f"{row.path.rsplit('/', 1)[0]}/{name}"))
        partial.replace(cached)
    return cached


def verified_model_path(row: ModelVersion, cache_folder: Path) -> Path:
    """The version's local model file, once its preprocessing version and hash are checked.
    Cheap (no TensorFlow): the submitter calls it too, so a bad model makes no job."""
    if row.preprocessing_version not in SERVABLE_PREPROCESSING_VERSIONS:  # older: fed as trained
        raise ModelLoadError(
            f"model v{row.version} was trained with preprocessing version "
            f"{row.preprocessing_version}, this code can feed "
            f"{', '.join(map(str, SERVABLE_PREPROCESSING_VERSIONS))}: retrain it")
    try:
        path = local_model_path(row, cache_folder)
        data = path.read_bytes()
    except OSError as error:
        raise ModelLoadError(f"model v{row.version} file missing: {row.path} ({error})") from None
    if hashlib.sha256(data).hexdigest() != row.model_sha256:
        raise ModelLoadError(f"model v{row.version} file {row.path} does not match its recorded "
                             "hash: corrupt or tampered with, refusing to load")
    return path


def load_model(row: ModelVersion, cache_folder: Path):
    """Load a version's Keras model in safe mode after checking its file's hash."""
    path = verified_model_path(row, cache_folder)
    import keras

    try:
        return keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # Keras raises many types for a bad archive
        raise ModelLoadError(f"model v{row.version} cannot be loaded: {error}") from None


def verified_engine_files(row: ModelVersion, runtime: str,
                          cache_folder: Path) -> tuple[dict[str, bytes] | None, str]:
    """({file name: bytes}, "") of the version's conversion for `runtime` ("openvino"), each
    file checked against the hash its row records, as model.keras is; or (None, why not)."""
    record = (row.params or {}).get("engines", {}).get(runtime, {})
    if not record.get("files"):
        return None, record.get("error") or "not made at registration"
    files = {}
    for name, digest in record["files"].items():
        try:
            data = local_version_file(row, name, cache_folder).read_bytes()
        except (OSError, StorageError) as error:
            return None, f"{name} missing ({error.strerror or error})"
        if hashlib.sha256(data).hexdigest() != digest:
            return None, f"{name} does not match its recorded hash (damaged or tampered with)"
        files[name] = data
    return files, ""
