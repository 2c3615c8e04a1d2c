"""trainer.face_detector finds what the `mtcnn` package's own detect_faces finds, and
trainer.faces keeps the face the package's JSON made it keep. Generated images hold no face,
so the thresholds are lowered until every stage passes boxes on: the comparison then covers the
pyramid, all three networks, the box arithmetic and every merge."""

import numpy as np
import pytest

from trainer.faces import MIN_CONFIDENCE, largest_faces

LOW_THRESHOLDS = (0.1, 0.01, 0.0)  # PNet, RNet, ONet: ~25 boxes reach the end on 3 images


@pytest.fixture(scope="module")
def package_and_ours():
    from mtcnn import MTCNN

    from trainer.face_detector import FaceDetector

    package = MTCNN(device="CPU:0")
    return package, FaceDetector(package.stages)


def blurred_noise(count: int, size: int, seed: int = 72) -> np.ndarray:
    """Smooth random colour images: blurred 72 px noise, blobs of the sizes PNet looks at."""
    import cv2

    noise = np.random.default_rng(seed).integers(0, 256, (count, 72, 72, 3), np.uint8)
    return np.stack([cv2.resize(cv2.GaussianBlur(image, (0, 0), 1.8), (size, size))
                     for image in noise])


@pytest.mark.parametrize("size", [200, 72])
def test_our_runner_finds_the_packages_boxes(package_and_ours, size):
    package, ours = package_and_ours
    images = blurred_noise(3, size)
    expected = package.detect_faces(list(images), min_face_size=20, output_type="numpy",
                                    box_format="xyxy", threshold_pnet=LOW_THRESHOLDS[0],
                                    threshold_rnet=LOW_THRESHOLDS[1],
                                    threshold_onet=LOW_THRESHOLDS[2])[:, :6]
    found = ours.detect(images, min_face_size=20, thresholds=LOW_THRESHOLDS)
    assert len(np.unique(expected[:, 0])) == 3  # the comparison compares something
    assert found.shape == expected.shape
    np.testing.assert_allclose(found, expected, atol=0.01)  # pixels; the order is the package's


def test_a_conversion_kept_for_the_next_process_gives_the_same_boxes(package_and_ours,
                                                                     tmp_path, monkeypatch):
    """The first detector writes its networks' conversions; a second (as in the next process)
    reads them back instead of converting; a damaged one is converted again and replaced."""
    from trainer import face_detector

    package, ours = package_and_ours
    images = blurred_noise(3, 72)
    expected = ours.detect(images, min_face_size=20, thresholds=LOW_THRESHOLDS)
    first = face_detector.FaceDetector(package.stages, tmp_path)
    np.testing.assert_array_equal(first.detect(images, 20, LOW_THRESHOLDS), expected)
    kept = sorted(tmp_path.glob("*.xml"))
    assert len(kept) == 3 and all(path.with_suffix(".bin").stat().st_size for path in kept)
    assert not [path for path in tmp_path.iterdir() if path.is_dir()]  # nothing half-written

    import openvino

    conversions = []
    convert = openvino.convert_model
    monkeypatch.setattr(openvino, "convert_model",
                        lambda concrete: conversions.append(concrete) or convert(concrete))
    second = face_detector.FaceDetector(package.stages, tmp_path)
    np.testing.assert_array_equal(second.detect(images, 20, LOW_THRESHOLDS), expected)
    assert conversions == []  # read back, not converted
    kept[0].write_text("<net>damaged")
    third = face_detector.FaceDetector(package.stages, tmp_path)
    np.testing.assert_array_equal(third.detect(images, 20, LOW_THRESHOLDS), expected)
    assert len(conversions) == 1 and "damaged" not in kept[0].read_text()


def test_the_face_search_keeps_its_conversions_in_happysad_cache_dir(tmp_path, monkeypatch):
    from db.settings import reset_settings
    from trainer import faces

    monkeypatch.setenv("HAPPYSAD_CACHE_DIR", str(tmp_path / "cache"))
    reset_settings()
    faces._detector.cache_clear()  # this process's detector was made with another folder
    try:
        faces.photo_faces(blurred_noise(2, 200))
        kept = sorted((tmp_path / "cache" / "face-search").glob("*.xml"))
        assert kept and all(path.with_suffix(".bin").stat().st_size for path in kept)
    finally:
        faces._detector.cache_clear()


def test_nothing_found_in_flat_images(package_and_ours):
    _, ours = package_and_ours
    assert ours.detect(np.full((2, 200, 200, 3), 128, np.uint8)).shape == (0, 6)


def test_the_largest_confident_face_is_kept_as_the_packages_json_rounds_it():
    found = np.array([
        [0, 10.4, 20.6, 50.4, 60.6, 0.95],  # 40 x 40 once rounded
        [0, 100.0, 100.0, 160.0, 160.0, MIN_CONFIDENCE - 0.01],  # larger, not confident
        [0, 0.0, 0.0, 40.0, 40.0, 0.99],  # as large: the first of equal areas is kept
        [2, 5.2, 5.2, 15.7, 25.2, 0.91],  # width 10.5 rounds to 10 (even), height 20
    ])
    boxes = largest_faces(found, 3)
    assert boxes.dtype == np.float32
    np.testing.assert_array_equal(boxes, [[10, 21, 40, 40], [0, 0, 0, 0], [5, 5, 10, 20]])


@pytest.mark.parametrize("method", ["union", "min"])
@pytest.mark.parametrize("initial_sort", [True, False])
def test_our_merge_keeps_the_packages_boxes_in_its_order(method, initial_sort):
    """Random boxes of five images, with equal confidences and whole-pixel sizes among them."""
    from mtcnn.utils.bboxes import smart_nms_from_bboxes

    from trainer.face_detector import suppress_overlaps

    rng = np.random.default_rng(0)
    for trial in range(20):
        count = int(rng.integers(0, 60))
        corners = rng.uniform(0, 100, (count, 2))
        sizes = np.round(rng.uniform(1, 40, (count, 2)))
        scores = rng.choice([0.5, 0.7, 0.9], count) if trial % 2 else rng.uniform(0, 1, count)
        boxes = np.c_[rng.integers(0, 5, count), corners, corners + sizes, scores]
        for threshold in (0.5, 0.7):
            expected = smart_nms_from_bboxes(boxes, threshold=threshold, method=method,
                                             initial_sort=initial_sort)
            kept = suppress_overlaps(boxes, threshold, method, initial_sort)
            np.testing.assert_array_equal(kept, expected)
