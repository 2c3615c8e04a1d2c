"""A local folder as storage. Symbolic links that lead out of it are never followed, and
nothing outside its root is read."""

import os
import stat
from collections.abc import Iterator
from pathlib import Path

from trainer.storage.base import Listing, StorageError, StoredReads


KINDS = {stat.S_ISFIFO: "a FIFO (named pipe)", stat.S_ISSOCK: "a socket",
         stat.S_ISCHR: "a character device", stat.S_ISBLK: "a block device"}


def not_regular(path: str) -> str | None:
    """Why `path` (links followed) is not a file to read, or None if it is one or is gone."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None  # gone, a broken link or a loop: the reader says which
    if stat.S_ISREG(mode):
        return None
    kind = next((name for test, name in KINDS.items() if test(mode)), "not a regular file")
    return f"not a regular file: {kind} (skipped, never opened)"


class FolderStorage(StoredReads):
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
                # A file, or a broken link or loop (the reader says which); a link to a FIFO,
                # socket or device is skipped like one.
                problem = not_regular(path)
                yield Listing(path, problem, skip=problem is not None)
            # A link to a folder inside the source is skipped: that folder is walked anyway,
            # and following it could loop forever.
            return
        if entry.is_dir(follow_symlinks=False):
            subfolders.append(path)
        elif entry.is_file(follow_symlinks=False):
            yield Listing(path)
        else:  # never opened: open() on a FIFO waits for a writer that may never come
            yield Listing(path, not_regular(path) or "not a regular file", skip=True)

    def _checked(self, uri: str) -> str:
        path = uri.removeprefix("file://")
        if not self._inside(path):
            raise StorageError(f"refusing to read outside the source {self.root}: {uri}")
        return path

    def _open(self, uri: str):
        path = self._checked(uri)
        try:
            # Non-blocking, so a FIFO put in a file's place since the listing cannot hang the
            # reader; anything but a regular file is refused before a byte is read.
            descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError:
            if os.path.islink(path) and not os.path.exists(path):
                # Said plainly, rather than "file not found" or "too many levels of links".
                raise OSError(None, "broken symbolic link or symbolic link loop") from None
            raise
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            os.close(descriptor)
            raise StorageError(not_regular(path) or "not a regular file")
        os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")

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
