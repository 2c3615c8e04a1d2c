"""The face-reading architecture: fer's expression network read from its package (and refused
when its file names a layer that carries code), face crops cut where the box says, drawn faces
found, a missing face no evidence, familiarity, and the whole model saved and reloaded in safe
mode giving identical outputs."""

import numpy as np
import pytest

from tests.helpers.models import drawn_faces_data, reloaded_identical
from trainer.faces import crop_faces, face_inputs
from trainer.inputs import DRAWN_INPUT, FACE_INPUT, FACE_SIZE, FOUND_INPUT

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


def test_the_expression_file_check_reads_a_file_whose_lock_another_holds(tmp_path):
    """The architecture check only reads: a lock held elsewhere (here an exclusive flock, what
    HDF5's own locking takes) does not stop it, as it did a test at random in a full run."""
    import fcntl
    import json
    import os

    import h5py

    from trainer.backbones import expression

    path = tmp_path / "emotion_model.hdf5"
    with h5py.File(path, "w") as file:
        file.attrs["model_config"] = json.dumps({"config": {"layers": [
            {"class_name": "Conv2D"}, {"class_name": "Lambda"}]}})
    holder = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        assert expression.layer_classes(path) == {"Conv2D", "Lambda"}
    finally:
        os.close(holder)


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
    faces = face_inputs(pixels)
    assert faces[FACE_INPUT].shape == (3, FACE_SIZE, FACE_SIZE, 1)
    assert faces[FOUND_INPUT].shape == faces[DRAWN_INPUT].shape == (3, 1)
    assert not faces[FOUND_INPUT].any() and not faces[DRAWN_INPUT].any()
    assert not faces[FACE_INPUT].any()


def fitted_face_model(class_count: int, pixels: np.ndarray):
    """The default architecture at `pixels`' size with its standardisations and familiarity
    fitted on them and random linear parts (what the saved-model and shortcut tests need)."""
    import keras

    from trainer.inputs import IMAGE_INPUT
    from trainer.model import FEATURES_LAYER, build_pretrained_faces
    from trainer.transfer import fit_familiarity, layer_runner

    keras.utils.set_random_seed(0)
    model = build_pretrained_faces(pixels.shape[1], class_count)
    model.get_layer("feature_standardisation").adapt(
        layer_runner(model, [IMAGE_INPUT], FEATURES_LAYER)(pixels))
    fit_familiarity(model, pixels[::2], pixels[1::2])
    return model


def face_model_inputs(pixels: np.ndarray) -> dict:
    """Random crops; a photo face on every third image, a drawn one on the next."""
    rng = np.random.default_rng(2)
    index = np.arange(len(pixels))
    return {"image": pixels,
            FACE_INPUT: rng.integers(0, 256, (len(pixels), FACE_SIZE, FACE_SIZE, 1)).astype(
                np.float32),
            FOUND_INPUT: (index % 3 == 0).astype(np.float32)[:, None],
            DRAWN_INPUT: (index % 3 == 1).astype(np.float32)[:, None]}


@pytest.mark.parametrize("class_count", [2, 3])
def test_the_face_model_saved_and_reloaded_in_safe_mode_gives_identical_outputs(
        tmp_path, class_count):
    from worker.engine import probe_images

    pixels = probe_images(SIZE).astype(np.float32)
    model = fitted_face_model(class_count, pixels)
    inputs = face_model_inputs(pixels)
    reloaded = reloaded_identical(model, inputs, tmp_path, class_count)
    familiarity = np.asarray(reloaded(inputs)["familiarity"])
    assert familiarity.shape == (len(pixels), 1)
    assert familiarity.min() >= 0 and familiarity.max() <= 1


def test_a_missing_face_is_no_evidence_for_any_class():
    """No shortcut through a missing face: with no face found the model's score is the image's
    own (weighed by familiarity, the rest of it bounded to the unfamiliar confidence), whatever
    the blank crop holds; a found face adds its own score to it, and blanking it takes exactly
    that away again."""
    import keras

    from trainer.model import FACE_LOGITS_LAYER, IMAGE_LOGITS_LAYER
    from worker.engine import probe_images

    pixels = probe_images(SIZE).astype(np.float32)
    model = fitted_face_model(2, pixels)
    inputs = face_model_inputs(pixels)
    inputs[DRAWN_INPUT][:] = 0

    def scores(model_inputs):
        part = keras.Model(model.inputs, [model.get_layer("logits").output,
                                          model.get_layer(IMAGE_LOGITS_LAYER).output,
                                          model.get_layer(FACE_LOGITS_LAYER).output,
                                          model.get_layer("familiarity").output])
        return [np.asarray(value) for value in part(model_inputs)]

    blanked = dict(inputs, **{FOUND_INPUT: np.zeros_like(inputs[FOUND_INPUT])})
    other_crops = dict(blanked, **{FACE_INPUT: 255 - blanked[FACE_INPUT]})
    logits, image, face, familiarity = scores(inputs)
    blank_logits, blank_image, _, _ = scores(blanked)
    from trainer.model import RECIPES, score_limit

    limit = score_limit(RECIPES["pretrained-faces"].unfamiliar_confidence, 2)
    np.testing.assert_allclose(
        blank_logits, image * familiarity + np.clip(image, -limit, limit) * (1 - familiarity),
        rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(scores(other_crops)[0], blank_logits, rtol=1e-5, atol=1e-6)
    found = inputs[FOUND_INPUT][:, 0] > 0
    gain = RECIPES["pretrained-faces"].face_weight
    np.testing.assert_allclose(logits[found], (image[found] + gain * face[found])
                               * familiarity[found] + face[found] * (1 - familiarity[found]),
                               rtol=1e-4, atol=1e-5)
    # A drawn face (no photo face) counts with the recipe's drawn weight where the image is
    # familiar, and alone where it is not.
    drawn_inputs = dict(blanked, **{FACE_INPUT: inputs[FACE_INPUT],
                                    DRAWN_INPUT: np.ones_like(inputs[DRAWN_INPUT])})
    drawn_logits, _, drawn_face, _ = scores(drawn_inputs)
    drawn_gain = RECIPES["pretrained-faces"].drawn_weight
    np.testing.assert_allclose(drawn_logits, (image + drawn_gain * drawn_face) * familiarity
                               + drawn_face * (1 - familiarity), rtol=1e-4, atol=1e-5)


def test_an_image_unlike_the_training_images_is_unfamiliar_and_gets_no_confident_label():
    """Trained on textured, photo-like images, the model finds flat drawings unfamiliar, and
    without a face they keep the image part's label, never surer than the recipe's unfamiliar
    confidence however sure the image part is."""
    import keras

    from trainer.model import IMAGE_LOGITS_LAYER
    from trainer.sample_data import draw_face

    rng = np.random.default_rng(6)
    textures = np.clip(rng.normal(128, 50, (40, SIZE, SIZE, 3)), 0, 255).astype(np.float32)
    model = fitted_face_model(2, textures[:30])
    head = model.get_layer(IMAGE_LOGITS_LAYER)
    kernel, bias = head.get_weights()
    head.set_weights([kernel * 50, bias])  # a very sure image part
    drawings = np.stack([draw_face("happy", SIZE, rng) for _ in range(10)]).astype(np.float32)
    blank = {FACE_INPUT: np.zeros((10, FACE_SIZE, FACE_SIZE, 1), np.float32),
             FOUND_INPUT: np.zeros((10, 1), np.float32), DRAWN_INPUT: np.zeros((10, 1), np.float32)}
    familiar = np.asarray(model({"image": textures[30:], **blank})["familiarity"])
    strange = model({"image": drawings, **blank})
    assert np.median(familiar) > 0.9
    assert np.asarray(strange["familiarity"]).max() < 0.2
    from trainer.model import FACE_LOGITS_LAYER, RECIPES

    ceiling = RECIPES["pretrained-faces"].unfamiliar_confidence
    probabilities = np.asarray(strange["class_probabilities"])[:, 0]
    image_part = keras.Model(model.inputs, model.get_layer(IMAGE_LOGITS_LAYER).output)
    image_says = np.asarray(image_part({"image": drawings, **blank}))[:, 0] > 0
    assert np.all(np.maximum(probabilities, 1 - probabilities) <= ceiling + 1e-5)
    assert np.array_equal(probabilities > 0.5, image_says)
    # Even a face part sure of its reading gives an unfamiliar drawing at most the recipe's
    # unfamiliar confidence, and still the face's own label.

    face_head = model.get_layer(FACE_LOGITS_LAYER)
    face_kernel, face_bias = face_head.get_weights()
    face_head.set_weights([face_kernel * 50, face_bias * 50 + 3])  # sure the face is class 1
    drawn = dict(blank, **{FACE_INPUT: np.full((10, FACE_SIZE, FACE_SIZE, 1), 128, np.float32),
                           DRAWN_INPUT: np.ones((10, 1), np.float32)})
    sure = np.asarray(model({"image": drawings, **drawn})["class_probabilities"])
    familiarity = np.asarray(model({"image": drawings, **drawn})["familiarity"])
    assert np.all(sure[familiarity[:, 0] == 0] <= ceiling + 1e-5)
    assert np.all(sure[familiarity[:, 0] == 0] > 0.5)


@pytest.mark.parametrize("mood", ["happy", "sad"])
def test_a_drawn_face_is_found_as_drawn(mood):
    """A smiley of `happysad sample-data` (no face to MTCNN, a busy background) is found as a
    drawn face, its box inside the image around the middle, and its crop is given to the
    expression network."""
    from trainer.faces import drawn_face
    from trainer.sample_data import draw_face

    image = draw_face(mood, 260, np.random.default_rng(3))
    x, y, width, height = drawn_face(image)
    assert 260 * 0.2 < width and 260 * 0.2 < height and max(width, height) < 260
    assert -5 <= x and x + width <= 265 and -5 <= y and y + height <= 265
    faces = face_inputs(image[None])
    assert faces[DRAWN_INPUT][0, 0] == 1 and faces[FOUND_INPUT][0, 0] == 0
    assert faces[FACE_INPUT][0].std() > 10  # features drawn in the crop


def draw_emoji(background, shaded: bool, mouth: str, size: int = 256) -> np.ndarray:
    """An emoji-like face: a yellow disc (flat or shaded to orange), eyes, and an open mouth
    with teeth, a smile, or a frown with a tear; on a flat background."""
    import cv2

    image = np.empty((size, size, 3), np.uint8)
    image[:] = background
    centre, radius = (size // 2, size // 2 + 6), int(size * 0.36)
    if shaded:
        for step in range(radius, 0, -2):
            level = step / radius
            cv2.circle(image, centre, step, (255, int(230 - 80 * level), int(60 * (1 - level))),
                       -1, cv2.LINE_AA)
    else:
        cv2.circle(image, centre, radius, (255, 204, 51), -1, cv2.LINE_AA)
    for side in (-1, 1):
        cv2.ellipse(image, (centre[0] + side * radius // 3, centre[1] - radius // 4),
                    (radius // 10, radius // 6), 0, 0, 360, (60, 40, 20), -1, cv2.LINE_AA)
    mouth_centre = (centre[0], centre[1] + radius // 3)
    if mouth == "teeth":
        cv2.ellipse(image, mouth_centre, (radius // 2, radius // 3), 0, 0, 180, (90, 20, 30), -1)
        cv2.rectangle(image, (mouth_centre[0] - radius // 3, mouth_centre[1]),
                      (mouth_centre[0] + radius // 3, mouth_centre[1] + radius // 10),
                      (255, 255, 255), -1)
    elif mouth == "smile":
        cv2.ellipse(image, mouth_centre, (radius // 2, radius // 4), 0, 10, 170, (60, 40, 20), 6)
    else:
        cv2.ellipse(image, (mouth_centre[0], mouth_centre[1] + radius // 5),
                    (radius // 2, radius // 4), 0, 190, 350, (60, 40, 20), 6)
        cv2.circle(image, (centre[0] + radius // 3, centre[1] + radius // 6), radius // 9,
                   (80, 170, 255), -1)
    return image


@pytest.mark.parametrize("background,shaded,mouth", [
    ((255, 255, 255), False, "teeth"), ((200, 225, 255), True, "smile"),
    ((40, 40, 40), True, "frown"), ((250, 200, 220), False, "frown")])
def test_emoji_with_open_mouths_tears_and_shading_on_any_plain_background_are_found(
        background, shaded, mouth):
    from trainer.faces import figure_on_plain_background

    image = draw_emoji(background, shaded, mouth)
    x, y, width, height = figure_on_plain_background(image)
    assert 0.6 * 256 < width < 0.85 * 256 and 0.6 * 256 < height < 0.85 * 256
    assert abs(x + width / 2 - 128) < 15 and abs(y + height / 2 - 134) < 15


def sticker_sheet(per_side: int, gap: int, size: int = 256) -> tuple[np.ndarray, int]:
    """A sheet of per_side x per_side emoji (draw_emoji, cut to their disc) on white, `gap`
    pixels apart and from the edges; and the side of each emoji's cell."""
    import cv2

    cell = (size - gap * (per_side + 1)) // per_side
    sheet = np.full((size, size, 3), 255, np.uint8)
    moods = ("teeth", "smile", "frown")
    for index in range(per_side ** 2):
        emoji = draw_emoji((255, 255, 255), index % 2 == 0, moods[index % 3])[42:227, 36:221]
        row, column = divmod(index, per_side)
        top, left = gap + row * (cell + gap), gap + column * (cell + gap)
        sheet[top:top + cell, left:left + cell] = cv2.resize(emoji, (cell, cell),
                                                             interpolation=cv2.INTER_AREA)
    return sheet, cell


@pytest.mark.parametrize("per_side,gap", [(2, 4), (3, 4), (3, 16), (4, 8), (4, 12)])
def test_every_emoji_of_a_sticker_sheet_is_found_not_the_sheet(per_side, gap):
    """Emoji a few pixels apart used to close into one block the size of the sheet, and small
    ones fell under the least figure: each box is now one emoji's cell, one per emoji."""
    from trainer.faces import (MOST_DRAWN_FACES, drawn_faces, figure_on_plain_background,
                               figures_on_plain_background)

    sheet, cell = sticker_sheet(per_side, gap)
    x, y, width, height = figure_on_plain_background(sheet)
    assert 0.75 * cell < width < 1.2 * cell and 0.75 * cell < height < 1.2 * cell
    assert len(drawn_faces(sheet)) == min(per_side ** 2, MOST_DRAWN_FACES)
    boxes = figures_on_plain_background(sheet)
    assert len(boxes) == per_side ** 2
    assert np.all((0.75 * cell < boxes[:, 2:]) & (boxes[:, 2:] < 1.2 * cell))
    centres = boxes[:, :2] + boxes[:, 2:] / 2
    cells = np.sort(np.floor(centres / (cell + gap)).astype(int) @ [per_side, 1])
    assert list(cells) == list(range(per_side ** 2))  # each emoji once


def test_a_sticker_sheet_is_read_by_every_face_and_other_images_by_their_own():
    """An image with several drawn faces is called once per face, beside the whole image; its
    outputs are the mean of theirs, and the images around it keep their own rows."""
    from trainer.faces import face_inputs, model_batch
    from worker.engine import load_engine, probe_images

    size = 128
    sheet, _ = sticker_sheet(3, 8, size)
    pixels = np.concatenate([probe_images(size)[:2], sheet[None], probe_images(size)[2:4]])
    model = fitted_face_model(2, np.concatenate([probe_images(size), sheet[None]]).astype(
        np.float32))
    batch = model_batch(model, pixels)
    assert batch.count == 5 and list(batch.owners) == [0, 1] + [2] * 9 + [3, 4]
    rows = batch.inputs
    assert np.all(rows["image"][2:11] == sheet) and rows["drawn_found"][2:11].all()

    def run(inputs):
        return {name: np.asarray(value) for name, value in model(inputs).items()}

    outputs = batch.outputs(run)
    assert {name: value.shape for name, value in outputs.items()} == {
        "class_probabilities": (5, 1), "familiarity": (5, 1)}
    each_face = run(rows)["class_probabilities"][2:11, 0]
    assert np.ptp(each_face) > 1e-3  # the faces are read apart: smiles, frowns, teeth
    np.testing.assert_allclose(outputs["class_probabilities"][2, 0], each_face.mean(), rtol=1e-5)
    # training reads the image by its largest face alone: the first of the sheet's rows
    np.testing.assert_array_equal(rows["face"][2], face_inputs(sheet[None])["face"][0])
    alone = model_batch(model, pixels[[0, 1, 3, 4]])
    np.testing.assert_allclose(outputs["class_probabilities"][[0, 1, 3, 4]],
                               alone.outputs(run)["class_probabilities"], rtol=1e-5)
    engine = load_engine(model, 2, "tensorflow")  # the worker's engine: the same, traced
    np.testing.assert_allclose(engine(pixels)["class_probabilities"],
                               outputs["class_probabilities"], atol=1e-4)


def test_a_sticker_sheet_is_drawn_faces_even_where_the_photo_finder_finds_one(monkeypatch):
    """MTCNN finds a face on a third of real sheets of glossy emoji (64 of the 216 of
    benchmarks.check_folders), which then read as photos; the emoji drawn here do not fire it,
    so its answer is given: a box on every image. The sheet is still its drawn faces; a
    busy image keeps the photo finder's face."""
    import trainer.faces as faces

    sheet, _ = sticker_sheet(3, 8)
    busy = np.random.default_rng(6).integers(0, 256, sheet.shape).astype(np.uint8)
    monkeypatch.setattr(faces, "photo_faces", lambda pixels: np.tile(
        np.float32([[20, 20, 80, 80]]), (len(pixels), 1)))
    inputs = faces.face_inputs(np.stack([sheet, busy]))
    assert inputs[DRAWN_INPUT][:, 0].tolist() == [1, 0]
    assert inputs[FOUND_INPUT][:, 0].tolist() == [0, 1]
    np.testing.assert_array_equal(
        inputs[FACE_INPUT][0], crop_faces(sheet[None], faces.drawn_faces(sheet)[:1],
                                          faces.DRAWN_MARGIN)[0])


def test_the_rows_of_a_batch_of_sheets_are_run_a_batch_at_a_time():
    """A batch of images with several faces each is run on at most as many rows at once as
    the batch has images, and each image's outputs are the mean of its rows'."""
    from trainer.faces import MOST_DRAWN_FACES, ModelBatch

    count = 2 * MOST_DRAWN_FACES
    owners = np.repeat(np.arange(count), 3)
    rows = np.arange(len(owners), dtype=np.float32)
    calls = []

    def run(inputs):
        calls.append(len(inputs["face"]))
        return {"class_probabilities": inputs["face"][:, None] * 2}

    outputs = ModelBatch({"face": rows}, owners, count).outputs(run)
    assert max(calls) == count and sum(calls) == len(rows)
    np.testing.assert_allclose(outputs["class_probabilities"][:, 0],
                               2 * rows.reshape(count, 3).mean(axis=1))


def test_touching_emoji_are_parted():
    """Emoji that touch one another (no gap between them, a plain margin round the sheet) are
    one roundish block until an erosion parts them."""
    import cv2

    from trainer.faces import drawn_faces, figure_on_plain_background

    sheet = np.full((256, 256, 3), 255, np.uint8)
    for centre in ((76, 76), (180, 76), (76, 180), (180, 180)):
        cv2.circle(sheet, centre, 52, (255, 204, 51), -1)
        cv2.circle(sheet, (centre[0] - 18, centre[1] - 12), 7, (60, 40, 20), -1)
        cv2.circle(sheet, (centre[0] + 18, centre[1] - 12), 7, (60, 40, 20), -1)
    x, y, width, height = figure_on_plain_background(sheet)
    assert 80 < width < 125 and 80 < height < 125
    boxes = drawn_faces(sheet)
    assert len(boxes) == 4 and np.all((80 < boxes[:, 2:]) & (boxes[:, 2:] < 125))


def flat_emoji(count_per_background: int = 3):
    """Emoji images at SIZE, their drawn faces' crops as trainer.faces cuts them, and the same
    crops with a photo's grain."""
    import cv2

    from trainer.faces import DRAWN_MARGIN, figure_on_plain_background

    emoji = [draw_emoji(background, False, mouth)
             for background in ((255, 255, 255), (200, 225, 255), (40, 40, 40), (250, 200, 220),
                                (220, 255, 220), (255, 240, 200))
             for mouth in ("teeth", "smile", "frown")[:count_per_background]]
    pixels = np.stack([cv2.resize(image, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
                       for image in emoji]).astype(np.float32)
    boxes = np.stack([figure_on_plain_background(image) for image in emoji])
    crops = crop_faces(np.stack(emoji), boxes, DRAWN_MARGIN).astype(np.float32)
    grain = np.random.default_rng(4).normal(0, 6, crops.shape)
    return pixels, crops, np.clip(np.round(crops + grain), 0, 255).astype(np.float32)


def test_flat_share_counts_the_inner_pixels_level_with_their_neighbours():
    import keras

    from trainer.model import FLAT_BORDER, FLAT_TOLERANCE, flat_share

    _, crops, grainy = flat_emoji()
    face = keras.Input((FACE_SIZE, FACE_SIZE, 1))
    share = keras.Model(face, flat_share(face))
    inner = crops[:, FLAT_BORDER:-FLAT_BORDER, FLAT_BORDER:-FLAT_BORDER, 0]
    level = ((np.abs(np.diff(inner, axis=2))[:, :-1] <= FLAT_TOLERANCE)
             & (np.abs(np.diff(inner, axis=1))[:, :, :-1] <= FLAT_TOLERANCE))
    np.testing.assert_allclose(np.asarray(share(crops))[:, 0], level.mean(axis=(1, 2)),
                               atol=1e-6)
    assert np.asarray(share(crops)).min() > 0.5 > 0.3 > np.asarray(share(grainy)).max()


def familiarity_fitted_on(folder: np.ndarray, folder_faces: dict, reviewed_drawings: int = 0):
    """The default architecture at SIZE, familiarity fitted on `folder` (half of it
    validation), and a function: (images, crops, drawn flag) -> (familiarity, the style
    statistics' own familiarity); a found photo face is `found` 1 with `drawn` 0."""
    import keras

    from trainer.model import build_pretrained_faces
    from trainer.transfer import fit_familiarity

    keras.utils.set_random_seed(0)
    model = build_pretrained_faces(SIZE, 2)
    fit_familiarity(model, folder, folder[1::2], folder_faces, reviewed_drawings)
    style_part = keras.Model(model.inputs, model.get_layer("style_familiarity").output)

    def familiarity(images, crops, drawn: float, found: float = 0.0):
        inputs = {"image": images, FACE_INPUT: crops,
                  FOUND_INPUT: np.full((len(images), 1), found, np.float32),
                  DRAWN_INPUT: np.full((len(images), 1), drawn, np.float32)}
        return np.asarray(model(inputs)["familiarity"]), np.asarray(style_part(inputs))

    return familiarity


def clip_art_folder(pixels: np.ndarray, crops: np.ndarray) -> tuple[np.ndarray, dict]:
    """A training folder of 30 photo-like textures (no face) and the first 6 emoji (drawn
    faces): its images and their face inputs."""
    textures = np.clip(np.random.default_rng(6).normal(128, 50, (30, SIZE, SIZE, 3)), 0, 255)
    folder = np.concatenate([textures.astype(np.float32), pixels[:6]])
    faces = {FACE_INPUT: np.concatenate([np.zeros((30, FACE_SIZE, FACE_SIZE, 1), np.float32),
                                         crops[:6]]),
             DRAWN_INPUT: np.concatenate([np.zeros((30, 1)), np.ones((6, 1))]).astype(np.float32)}
    return folder, faces


def test_a_flat_drawn_face_is_unfamiliar_however_much_clip_art_the_training_folder_holds():
    """Photo-like images with a few emoji among them: whatever the style statistics make of the
    emoji, a face with flat fills is unfamiliar, found as drawn or by the photo finder (which
    fires on some line-drawn emoji). The same crops with a photo's grain, or no face found,
    keep the style's familiarity."""
    pixels, crops, grainy = flat_emoji()
    folder, faces = clip_art_folder(pixels, crops)
    familiarity = familiarity_fitted_on(folder, faces)
    faceless, style = familiarity(pixels, crops, 0.0)
    np.testing.assert_allclose(faceless, style, atol=1e-6)
    assert familiarity(pixels, crops, 1.0)[0].max() == 0
    assert familiarity(pixels, crops, 0.0, found=1.0)[0].max() == 0
    np.testing.assert_allclose(familiarity(pixels, grainy, 1.0)[0], style, atol=1e-6)
    np.testing.assert_allclose(familiarity(pixels, grainy, 0.0, found=1.0)[0], style, atol=1e-6)


def test_once_a_person_reviewed_enough_drawn_faces_the_style_decides_again():
    """The review loop: reviewed drawn faces taught the image part, so a flat drawn face is as
    familiar as its style statistics say (they are fitted on the folder alone); a few reviews
    do not switch that on."""
    from trainer.model import RECIPES

    pixels, crops, _ = flat_emoji()
    folder, faces = clip_art_folder(pixels, crops)
    enough = RECIPES["pretrained-faces"].reviewed_drawings_learned
    taught, style = familiarity_fitted_on(folder, faces, enough)(pixels, crops, 1.0)
    np.testing.assert_allclose(taught, style, atol=1e-6)
    assert familiarity_fitted_on(folder, faces, enough - 1)(pixels, crops, 1.0)[0].max() == 0


def test_flat_drawn_faces_are_familiar_where_drawn_faces_are_most_of_the_training_folder():
    """A folder of emoji (the sample data's kind): its image part learned them, so the style
    statistics alone say how familiar an emoji is, and they find these familiar."""
    pixels, crops, _ = flat_emoji()
    faces = {FACE_INPUT: crops, DRAWN_INPUT: np.ones((len(pixels), 1), np.float32)}
    familiar, style = familiarity_fitted_on(pixels, faces)(pixels, crops, 1.0)
    np.testing.assert_allclose(familiar, style, atol=1e-6)
    assert np.median(familiar) > 0.9


def test_a_line_drawn_smiley_is_found_as_one_figure():
    """A black outline on white: its inside is the background's colour, but it is enclosed, so
    the figure is the whole face, not its outline or its eyes."""
    import cv2

    from trainer.faces import figure_on_plain_background

    image = np.full((256, 256, 3), 255, np.uint8)
    cv2.circle(image, (128, 128), 90, (0, 0, 0), 5, cv2.LINE_AA)
    for side in (-1, 1):
        cv2.circle(image, (128 + side * 30, 105), 8, (0, 0, 0), -1)
    cv2.ellipse(image, (128, 145), (45, 25), 0, 10, 170, (0, 0, 0), 5)
    x, y, width, height = figure_on_plain_background(image)
    assert abs(width - 185) < 15 and abs(height - 185) < 15


def test_a_photo_like_image_has_no_figure_on_a_plain_background():
    from trainer.faces import figure_on_plain_background

    image = np.clip(np.random.default_rng(8).normal(120, 40, (256, 256, 3)), 0, 255).astype(
        np.uint8)
    assert not figure_on_plain_background(image).any()


def test_a_textured_round_thing_is_no_drawn_face():
    """A circle whose inside is photo-like texture is not taken for a drawn face."""
    import cv2

    from trainer.faces import flat_round_outline

    image = np.random.default_rng(4).integers(0, 256, (260, 260, 3), dtype=np.uint8)
    cv2.circle(image, (130, 130), 90, (0, 0, 0), 6)
    assert not flat_round_outline(image).any()
    cv2.circle(image, (130, 130), 87, (200, 180, 40), -1)  # filled flat: now it is one
    assert flat_round_outline(image).any()


def test_reviewed_drawings_teach_the_face_part_and_unreviewed_ones_do_not():
    """The face part is fitted on photo faces; a drawn face counts only in an image a person
    reviewed (a training folder's drawn finds are often whole figures, not heads), so reviews
    of a folder of drawings are what teaches it to read them."""
    from trainer.dataset import Split
    from trainer.model import FACE_LOGITS_LAYER, build_pretrained_faces
    from trainer.train import TrainingParams
    from trainer.transfer import fit_faces

    data = drawn_faces_data()
    assert face_inputs(data.images)[DRAWN_INPUT].all()
    params = TrainingParams(architecture="pretrained-faces").resolved()
    everything, nothing = np.arange(len(data.labels)), np.zeros(0, np.int64)
    model = build_pretrained_faces(SIZE, 2)
    fit_faces(model, data, Split(everything, everything, nothing, reviewed=nothing), params)
    assert not np.any(model.get_layer(FACE_LOGITS_LAYER).get_weights()[0])  # no photo faces
    fit_faces(model, data, Split(everything, everything, nothing, reviewed=everything), params)
    assert np.any(model.get_layer(FACE_LOGITS_LAYER).get_weights()[0])
