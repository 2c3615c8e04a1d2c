"""The folder storage: streamed listing, symlinks that lead out are not followed, loops end,
and nothing outside the source can be read."""

import os
from pathlib import Path

import pytest

from trainer.storage import FolderStorage, StorageError, open_storage


def test_lists_files_recursively_folder_by_folder(tmp_path):
    for folder in ("b", "a", "a/z"):
        (tmp_path / folder).mkdir()
    for name in ("top.jpg", "b/2.jpg", "a/1.jpg", "a/z/3.jpg", "a/0.jpg"):
        (tmp_path / name).write_bytes(b"1")
    storage = open_storage(str(tmp_path))
    listed = [entry.uri[len(storage.root) + 1:] for entry in storage.iter_files()]
    assert listed[0] == "top.jpg" and sorted(listed[1:3]) == ["a/0.jpg", "a/1.jpg"]
    assert listed[3:] == ["a/z/3.jpg", "b/2.jpg"]  # sub-folders depth first, in name order


def test_a_folder_is_listed_while_it_is_read(tmp_path, monkeypatch):
    """Streamed: the first files come out before the folder has been read to its end, so a
    million-file folder is never held in memory."""
    for index in range(5):
        (tmp_path / f"{index}.jpg").write_bytes(b"1")
    real_scandir = os.scandir

    class Interrupted(Exception):
        pass

    class FirstTwoThenFail:
        def __init__(self, path):
            self.entries = iter(list(real_scandir(path))[:2])

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def __iter__(self):
            yield from self.entries
            raise Interrupted  # had iter_files read everything first, nothing would be yielded

    monkeypatch.setattr(os, "scandir", FirstTwoThenFail)
    listing = open_storage(str(tmp_path)).iter_files()
    assert [next(listing).uri, next(listing).uri]
    with pytest.raises(Interrupted):
        next(listing)


def test_file_uri_is_a_folder(tmp_path):
    assert isinstance(open_storage(f"file://{tmp_path}"), FolderStorage)
    with pytest.raises(StorageError, match="unsupported"):
        open_storage("ftp://example/x")


def test_symlinks_out_of_source_and_loops(tmp_path):
    source, outside = tmp_path / "source", tmp_path / "outside"
    source.mkdir()
    outside.mkdir()
    (outside / "secret.jpg").write_bytes(b"secret")
    (source / "inside.jpg").write_bytes(b"ok")
    os.symlink(outside / "secret.jpg", source / "link_out.jpg")
    os.symlink(outside, source / "dir_out")
    os.symlink(source, source / "loop")
    os.symlink(source / "inside.jpg", source / "link_in.jpg")
    entries = {os.path.basename(e.uri): e.problem for e in open_storage(str(source)).iter_files()}
    assert entries["inside.jpg"] is None and entries["link_in.jpg"] is None
    assert "leads out" in entries["link_out.jpg"] and "leads out" in entries["dir_out"]
    assert "loop" not in entries  # a link to a folder inside is not walked twice


def test_refuses_reads_outside_the_source(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    (tmp_path / "secret").write_text("x")
    storage = open_storage(str(source))
    with pytest.raises(StorageError, match="outside"):
        storage.read_bytes(str(tmp_path / "secret"))
    with pytest.raises(StorageError, match="outside"):
        storage.read_bytes(str(source / ".." / "secret"))


def test_missing_folder(tmp_path):
    with pytest.raises(StorageError, match="not found"):
        list(open_storage(str(tmp_path / "nope")).iter_files())


def test_write_is_atomic_and_creates_folders(tmp_path):
    storage = open_storage(str(tmp_path))
    path = storage.write_bytes("x/y/z.bin", b"data")
    assert Path(path).read_bytes() == b"data"
    assert not list(tmp_path.rglob("*.partial"))


def test_fifos_sockets_and_links_to_them_are_skipped_with_their_reason_never_opened(tmp_path):
    """A FIFO used to get no row and no count (one JPEG and one FIFO: total 1, skipped 0), and
    a link named .jpg that led to one got a row whose worker blocked in open() for ever."""
    import socket

    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8\xff a JPEG's first bytes")
    os.mkfifo(tmp_path / "pipe.jpg")
    os.mkfifo(tmp_path / "pipe")
    os.symlink("pipe.jpg", tmp_path / "link-to-pipe.jpg")
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(tmp_path / "socket.png"))
        _listed_and_refused(tmp_path)


def _listed_and_refused(tmp_path):
    from scheduler.listing import iter_batches

    storage = open_storage(str(tmp_path))
    problems = {Path(entry.uri).name: entry.problem for entry in storage.iter_files()}
    assert problems["pipe.jpg"] == problems["pipe"] == problems["link-to-pipe.jpg"] == (
        "not a regular file: a FIFO (named pipe) (skipped, never opened)")
    assert problems["socket.png"].startswith("not a regular file: a socket")
    skipped = [0]
    batches = list(iter_batches(storage, 10, skipped))
    assert batches == [[str(tmp_path / "photo.jpg")]] and skipped == [4]

    # Read anyway (a FIFO put in a listed file's place), it is refused, not waited on.
    import threading

    outcome = []
    reader = threading.Thread(target=lambda: outcome.append(_read(storage, tmp_path / "pipe.jpg")),
                              daemon=True)
    reader.start()
    reader.join(60)
    assert outcome == ["not a regular file: a FIFO (named pipe) (skipped, never opened)"]


def _read(storage, path) -> str:
    try:
        storage.read_stored(str(path))
    except StorageError as error:
        return str(error)
    return "read"
