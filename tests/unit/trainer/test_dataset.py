"""Intake, split and fingerprint of a labelled folder; the same tensor in training and serving."""

import numpy as np
import pytest

from tests.helpers.images import encode, solid_rgb
from trainer.dataset import DatasetError, load_labelled_images, stratified_split


def make_folder(root, counts: dict[str, int]):
    for name, count in counts.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            colour = (index * 10 % 255, 100, 200 if name == "sad" else 0)
            (root / name / f"{index}.png").write_bytes(encode(solid_rgb(20, 20, colour)))
    return root


def test_skips_non_images_with_reasons_and_never_touches_files(tmp_path):
    root = make_folder(tmp_path, {"happy": 6, "sad": 6})
    (root / "happy" / "notes.txt").write_text("not an image")
    (root / "sad" / "empty.jpg").write_bytes(b"")
    (root / "stray.png").write_bytes(encode(solid_rgb(4, 4)))
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    data = load_labelled_images(str(root), 16)
    assert data.class_names == ["happy", "sad"] and len(data.uris) == 12
    reasons = {s["uri"].rsplit("/", 1)[-1]: s["reason"] for s in data.skipped}
    assert "not a recognised" in reasons["notes.txt"]
    assert "empty" in reasons["empty.jpg"]
    assert "class folder" in reasons["stray.png"]
    assert before == {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_training_refuses_what_workers_refuse_over_the_pixel_limit(tmp_path):
    root = make_folder(tmp_path, {"happy": 6, "sad": 6})  # 20x20 = 400 pixels each
    (root / "happy" / "large.png").write_bytes(encode(solid_rgb(40, 40)))  # 1,600 pixels
    data = load_labelled_images(str(root), 16, max_pixels=1000)
    assert len(data.uris) == 12
    reasons = {s["uri"].rsplit("/", 1)[-1]: s["reason"] for s in data.skipped}
    assert reasons == {"large.png": "image is 40x40 pixels, over the limit of 1,000: refused"}


@pytest.mark.parametrize("counts, message", [
    ({"happy": 6}, "at least two class"),
    ({"happy": 6, "sad": 2}, "'sad' has 2 usable images"),
])
def test_clear_errors(tmp_path, counts, message):
    with pytest.raises(DatasetError, match=message):
        load_labelled_images(str(make_folder(tmp_path, counts)), 16)


def test_missing_folder(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        load_labelled_images(str(tmp_path / "missing"), 16)


def test_split_is_stratified_seeded_and_never_leaves_test_empty():
    labels = np.array([0] * 151 + [1] * 150)
    split = stratified_split(labels, seed=3)
    assert sorted(np.concatenate([split.train, split.validation, split.test])) == list(range(301))
    for class_index in (0, 1):
        assert (labels[split.test] == class_index).sum() == 15
        assert (labels[split.validation] == class_index).sum() == 30
    again = stratified_split(labels, seed=3)
    assert np.array_equal(split.test, again.test)
    tiny = stratified_split(np.array([0] * 5 + [1] * 5), seed=0)
    assert len(tiny.test) == 2 and len(tiny.validation) == 2
    assert len(split.reviewed) == 0  # reviewed images join a split later (trainer.corrections)


def test_fingerprint_follows_content(tmp_path):
    root = make_folder(tmp_path, {"happy": 5, "sad": 5})
    first = load_labelled_images(str(root), 8).fingerprint
    assert load_labelled_images(str(root), 8).fingerprint == first
    (root / "sad" / "0.png").write_bytes(encode(solid_rgb(20, 20, (1, 2, 3))))
    assert load_labelled_images(str(root), 8).fingerprint != first


def test_training_and_serving_make_the_same_tensor(tmp_path):
    """Training's intake and the worker's read path give identical arrays for the same file."""
    from trainer.images import model_input
    from trainer.storage import open_storage
    from worker.classify import read_one

    root = make_folder(tmp_path, {"happy": 5, "sad": 5})
    big = encode(solid_rgb(700, 500, (250, 20, 90)), ".jpg")
    (root / "happy" / "big.jpg").write_bytes(big)
    data = load_labelled_images(str(root), 64)
    storage = open_storage(str(root))
    decoded, errors = zip(*(read_one(storage, uri, 64, 10**8) for uri in data.uris))
    assert list(errors) == [None] * len(data.uris)
    assert np.array_equal(model_input(np.stack(decoded)), data.images)


def test_training_data_does_not_depend_on_listing_order(tmp_path, monkeypatch):
    """Folders are listed as the file system returns them; training sorts, so the same folder
    gives the same images in the same order, and so the same seeded split, on any machine."""
    import os

    root = make_folder(tmp_path, {"happy": 6, "sad": 6})
    first = load_labelled_images(str(root), 8)
    real_scandir = os.scandir

    class Reversed:
        def __init__(self, path):
            self.entries = list(real_scandir(path))[::-1]

        def __enter__(self):
            return iter(self.entries)

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(os, "scandir", Reversed)
    second = load_labelled_images(str(root), 8)
    assert second.uris == first.uris == sorted(first.uris)
    assert np.array_equal(second.images, first.images)
