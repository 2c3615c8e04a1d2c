"""One storage interface, two implementations: a local folder and an S3 bucket.

Chosen by the URI: `/path` or `file:///path` is a folder, `s3://bucket/prefix` a bucket. A
storage object is rooted at its source and refuses to read anything outside it, so a worker can
never be steered to files the user did not submit.
"""

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class StorageError(ValueError):
    """A source that does not exist, cannot be listed, or a path outside the source."""


@dataclass(frozen=True)
class Listing:
    """One file found under a source; `problem` says why it cannot be used, if it cannot."""

    uri: str
    problem: str | None = None


class Storage(Protocol):
    root: str

    def exists(self) -> bool: ...

    def iter_files(self) -> Iterator[Listing]: ...

    def read_bytes(self, uri: str) -> bytes: ...

    def read_head(self, uri: str, size: int) -> bytes: ...

    def write_bytes(self, relative_path: str, data: bytes) -> str: ...

    def join(self, relative_path: str) -> str: ...


def is_bucket_uri(uri: str) -> bool:
    return uri.startswith("s3://")


def open_storage(uri: str) -> Storage:
    """The storage for a source URI: a bucket for s3://, a folder for anything else."""
    if is_bucket_uri(uri):
        return BucketStorage(uri)
    if uri.startswith("file://"):
        uri = uri.removeprefix("file://")
    if "://" in uri:
        raise StorageError(f"unsupported source {uri!r}: use a folder path, file:// or s3://")
    return FolderStorage(uri)


class FolderStorage:
    """Files under a local folder. Symbolic links that lead out of it are never followed."""

    def __init__(self, root: str | Path):
        self.root = os.path.realpath(os.path.expanduser(str(root)))

    def exists(self) -> bool:
        return os.path.isdir(self.root)

    def join(self, relative_path: str) -> str:
        return os.path.join(self.root, relative_path)

    def _inside(self, path: str) -> bool:
        real = os.path.realpath(path)
        return real == self.root or real.startswith(self.root + os.sep)

    def iter_files(self) -> Iterator[Listing]:
        """Every regular file below the root, streamed: a folder's files in the order the file
        system lists them (sorting would hold a million-file folder in memory), then its
        sub-folders, depth first in name order."""
        if not self.exists():
            raise StorageError(f"source folder not found: {self.root}")
        stack = [self.root]
        while stack:
            folder, subfolders = stack.pop(), []
            try:
                with os.scandir(folder) as entries:
                    for entry in entries:
                        yield from self._visit(entry, subfolders)
            except OSError as error:
                yield Listing(folder, f"cannot list folder: {error.strerror}")
            stack.extend(sorted(subfolders, reverse=True))

    def _visit(self, entry: os.DirEntry, subfolders: list[str]) -> Iterator[Listing]:
        path = entry.path
        if entry.is_symlink():
            if not self._inside(path):
                yield Listing(path, "symbolic link that leads out of the source (not followed)")
            elif not os.path.isdir(path):
                yield Listing(path)  # a file, or a broken link or loop: the reader says which
            # A link to a folder inside the source is skipped: that folder is walked anyway,
            # and following it could loop forever.
            return
        if entry.is_dir(follow_symlinks=False):
            subfolders.append(path)
        elif entry.is_file(follow_symlinks=False):
            yield Listing(path)

    def _checked(self, uri: str) -> str:
        path = uri.removeprefix("file://")
        if not self._inside(path):
            raise StorageError(f"refusing to read outside the source {self.root}: {uri}")
        return path

    def _open(self, uri: str):
        path = self._checked(uri)
        try:
            return open(path, "rb")
        except OSError:
            if os.path.islink(path) and not os.path.exists(path):
                # Said plainly, rather than "file not found" or "too many levels of links".
                raise OSError(None, "broken symbolic link or symbolic link loop") from None
            raise

    def read_bytes(self, uri: str) -> bytes:
        with self._open(uri) as file:
            return file.read()

    def read_head(self, uri: str, size: int) -> bytes:
        with self._open(uri) as file:
            return file.read(size)

    def write_bytes(self, relative_path: str, data: bytes) -> str:
        path = Path(self.join(relative_path))
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".partial")
        temporary.write_bytes(data)
        temporary.replace(path)  # readers never see half a file
        return str(path)


_filesystems: dict[tuple, object] = {}


def s3_filesystem():
    """An s3fs filesystem for this process, pointed at HAPPYSAD_S3_ENDPOINT_URL if set.

    Credentials come from the standard AWS variables. Made per process: s3fs runs an event loop
    in a thread, which does not survive a fork.
    """
    import s3fs

    from db.settings import get_settings

    endpoint = get_settings().s3_endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
    key = (os.getpid(), endpoint)
    if key not in _filesystems:
        client_kwargs = {"endpoint_url": endpoint} if endpoint else {}
        _filesystems[key] = s3fs.S3FileSystem(skip_instance_cache=True, client_kwargs=client_kwargs)
    return _filesystems[key]


class BucketStorage:
    """Objects under an S3 prefix (AWS, MinIO, moto): s3://bucket/prefix."""

    def __init__(self, uri: str):
        self.root = uri.rstrip("/")
        self._key_root = self.root.removeprefix("s3://")

    @property
    def _fs(self):
        return s3_filesystem()

    def exists(self) -> bool:
        try:
            return self._fs.exists(self._key_root) and self._fs.isdir(self._key_root)
        except (OSError, PermissionError) as error:
            raise StorageError(f"cannot reach {self.root}: {error}") from None

    def join(self, relative_path: str) -> str:
        return f"{self.root}/{relative_path}"

    def iter_files(self) -> Iterator[Listing]:
        if not self.exists():
            raise StorageError(f"source bucket prefix not found: {self.root}")
        for key in sorted(self._fs.find(self._key_root)):
            yield Listing(f"s3://{key}")

    def _checked(self, uri: str) -> str:
        key = uri.removeprefix("s3://")
        if not key.startswith(self._key_root + "/") or "/../" in key:
            raise StorageError(f"refusing to read outside the source {self.root}: {uri}")
        return key

    def read_bytes(self, uri: str) -> bytes:
        return self._fs.cat_file(self._checked(uri))

    def read_head(self, uri: str, size: int) -> bytes:
        return self._fs.cat_file(self._checked(uri), start=0, end=size)

    def write_bytes(self, relative_path: str, data: bytes) -> str:
        uri = self.join(relative_path)
        self._fs.pipe_file(uri.removeprefix("s3://"), data)
        return uri
