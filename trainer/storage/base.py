"""The storage interface every source and store goes through (httpx's `_transports/base.py`
is the shape): list the files under a root, read them, write beside them."""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from db.errors import InvalidInput


class StorageError(InvalidInput):
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
