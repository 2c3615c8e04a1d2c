"""The storage interface every source and store goes through (httpx's `_transports/base.py`
is the shape): list the files under a root, read them, write beside them.

A URI stored in the database (a prediction's, a review's) is lossless text, not a path: it is
read back through `read_stored`, the one place that turns it into bytes, and whose errors are
all a `StorageError` with a one-line reason (as httpx maps its transport's exceptions)."""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from db.errors import InvalidInput
from trainer.storage.uri_text import decode_uri


class StorageError(InvalidInput):
    """A source that does not exist, cannot be listed, or a path outside the source."""


@dataclass(frozen=True)
class Listing:
    """One file found under a source; `problem` says why it cannot be used, if it cannot.
    `skip`: never a row, counted as skipped (a FIFO, socket or device: never opened)."""

    uri: str
    problem: str | None = None
    skip: bool = False


class StoredReads:
    """`read_stored` for any storage with `read_bytes`: both implementations inherit it."""

    def read_stored(self, stored_uri: str) -> bytes:
        """The bytes of the file a stored URI names (lossless text, see uri_text). Its name
        is decoded first, so `caf%E9.jpg` and the non-UTF-8 `caf\\xe9.jpg` are two files."""
        try:
            return self.read_bytes(decode_uri(stored_uri))
        except StorageError:
            raise
        except FileNotFoundError:
            raise StorageError("file disappeared before it could be read") from None
        except PermissionError:
            raise StorageError("permission denied") from None
        except OSError as error:
            raise StorageError(f"cannot read: {error.strerror or error}") from None


class Storage(Protocol):
    root: str

    def exists(self) -> bool: ...

    def iter_files(self) -> Iterator[Listing]: ...

    def read_bytes(self, uri: str) -> bytes: ...

    def read_stored(self, stored_uri: str) -> bytes: ...

    def read_head(self, uri: str, size: int) -> bytes: ...

    def write_bytes(self, relative_path: str, data: bytes) -> str: ...

    def join(self, relative_path: str) -> str: ...
