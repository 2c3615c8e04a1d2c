"""The folder storage: streamed listing, symlinks that lead out are not followed, loops end,
and nothing outside the source can be read."""

import os

import pytest

from trainer.storage import FolderStorage, StorageError, open_storage


def test_lists_files_recursively_in_order(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "a.jpg").write_bytes(b"1")
    (tmp_path / "b" / "c.jpg").write_bytes(b"2")
    storage = open_storage(str(tmp_path))
    assert [entry.uri for entry in storage.iter_files()] == [
        str(tmp_path / "a.jpg"), str(tmp_path / "b" / "c.jpg")]


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
    assert open(path, "rb").read() == b"data"
    assert not list(tmp_path.rglob("*.partial"))
