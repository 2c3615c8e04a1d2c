"""The inference engines: TensorFlow and OpenVINO give the model's own outputs (every output,
by name) on the tutorial's CNN and the default model, parity really compares, a broken or
slower candidate falls back to TensorFlow, and the worker's chunked, overlapped path gives the
same answers as one model call."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from trainer.conversion import CLASS_OUTPUT, convert_openvino, tensorflow_runner
from trainer.images import UNIT_SCALE, model_input
from worker.engine import (PROBABILITY_TOLERANCE, PROBE_COUNT, check_parity, input_preparer,
                           load_engine, median_speedup, openvino_candidates, probe_images)

SIZE = 32


@pytest.fixture(scope="module")
def decisive_model():
    """The tutorial's CNN at 32 px with a sharpened head, so probes get confident labels on both
    sides of 0.5 (an untrained model says ~0.5 to everything, which would test nothing)."""
    import keras

    from trainer.model import build_model

    keras.utils.set_random_seed(3)
    model = build_model("baseline", SIZE, 2)
    head = model.get_layer("class_probabilities")
    kernel, bias = head.get_weights()
    head.set_weights([kernel * 40, np.zeros_like(bias)])
    outputs = np.asarray(model(model_input(probe_images(SIZE)), training=False),
                         np.float64).ravel()
    logits = np.log(outputs / (1 - outputs))
    head.set_weights([kernel * 40, np.full_like(bias, -np.median(logits))])  # half each side
    outputs = np.asarray(model(model_input(probe_images(SIZE)), training=False)).ravel()
    assert outputs.min() < 0.2 and outputs.max() > 0.8, outputs
    return model


def reference_outputs(model, pixels):
    """The Keras model itself, on the float input training gives it."""
    return np.asarray(model(model_input(pixels), training=False), dtype=np.float32)


def test_probes_are_fixed_and_varied():
    first, second = probe_images(SIZE), probe_images(SIZE)
    assert first.shape == (PROBE_COUNT, SIZE, SIZE, 3) and first.dtype == np.uint8
    assert np.array_equal(first, second)
    assert first.min() < 30 and first.max() > 225  # the whole range, not a grey band
    assert len({image.tobytes() for image in first}) == PROBE_COUNT


def test_tensorflow_engine_is_the_model_for_any_batch_size(decisive_model):
    engine = load_engine(decisive_model, 2, "tensorflow")
    assert engine.name == "tensorflow"
    for count in (1, 5, 16):
        images = probe_images(SIZE)[:count]
        outputs = engine(images)
        assert list(outputs) == [CLASS_OUTPUT]
        np.testing.assert_allclose(outputs[CLASS_OUTPUT], reference_outputs(decisive_model, images),
                                   atol=1e-6)


@pytest.mark.parametrize("preprocessing_version", [1, 2])
def test_the_graph_feeds_pixels_exactly_as_training_does(preprocessing_version):
    """The engine takes uint8 and makes the float32 input in its graph: bit for bit what
    trainer.images.model_input gives a model of that preprocessing version in training, for
    every pixel value (version 1: scaled by 1/255 outside the model; 2: the model scales)."""
    import keras

    from trainer.images import input_scale

    identity = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Identity(name="same")])
    pixels = np.arange(16 * 16 * 3, dtype=np.int64).reshape(1, 16, 16, 3) % 256
    pixels = pixels.astype(np.uint8)
    scale = input_scale(preprocessing_version)
    fed = tensorflow_runner(identity, scale)({identity.inputs[0].name: pixels})["same"]
    assert fed.dtype == np.float32
    assert np.array_equal(fed, model_input(pixels, preprocessing_version))
    assert fed.max() == (255 if preprocessing_version == 2 else np.float32(255) * UNIT_SCALE)


def test_a_version_1_model_still_gets_its_scaling_from_the_engine(decisive_model):
    """A model saved before the scaling moved inside (preprocessing version 1: no Rescaling
    layer, [0, 1] input) gives the same answers served as when it was trained."""
    import keras

    layers = [layer for layer in decisive_model.layers if layer.name not in ("image", "unit_range")]
    inputs = keras.Input((SIZE, SIZE, 3))
    x = inputs
    for layer in layers:
        x = layer(x)
    old_style = keras.Model(inputs, x)  # the same weights, fed [0, 1] from outside
    pixels = probe_images(SIZE)
    engine = load_engine(old_style, 2, "tensorflow", input_scale=UNIT_SCALE)
    np.testing.assert_allclose(engine(pixels)[CLASS_OUTPUT],
                               reference_outputs(decisive_model, pixels), atol=1e-6)


def test_parity_compares_every_output_counts_label_flips_and_allows_near_ties():
    reference = {CLASS_OUTPUT: np.array([[0.9], [0.1], [0.5004]]),
                 "familiarity": np.array([[0.3], [0.6], [0.9]])}

    def changed(**outputs):
        return reference | {name: np.asarray(value) for name, value in outputs.items()}

    assert check_parity(reference, changed(class_probabilities=reference[CLASS_OUTPUT] + 1e-4),
                        2).passed
    near_tie = check_parity(reference, changed(class_probabilities=[[0.9], [0.1], [0.4996]]), 2)
    assert near_tie.passed and near_tie.label_mismatches == 0
    flipped = check_parity(reference, changed(class_probabilities=1 - reference[CLASS_OUTPUT]), 2)
    assert not flipped.passed and flipped.label_mismatches == 2
    assert check_parity(reference, changed(familiarity=reference["familiarity"] + 0.01),
                        2).passed  # familiarity has its own, wider tolerance
    assert not check_parity(reference, changed(familiarity=reference["familiarity"] + 0.1),
                            2).passed  # the labels hold, another output does not
    assert not check_parity(reference, {CLASS_OUTPUT: reference[CLASS_OUTPUT]}, 2).passed
    assert not check_parity(reference, changed(familiarity=[[np.nan]] * 3), 2).passed


@pytest.mark.parametrize("broken", ["flipped", "shifted", "crashes"])
def test_a_broken_candidate_falls_back_to_tensorflow(decisive_model, broken):
    def build():
        tensorflow = tensorflow_runner(decisive_model)
        if broken == "crashes":
            raise RuntimeError("no such kernel")
        if broken == "flipped":
            return lambda inputs: {CLASS_OUTPUT: 1 - tensorflow(inputs)[CLASS_OUTPUT]}
        return lambda inputs: {CLASS_OUTPUT: np.clip(
            tensorflow(inputs)[CLASS_OUTPUT] + 3 * PROBABILITY_TOLERANCE, 0, 1)}

    for choice in ("auto", "openvino"):
        engine = load_engine(decisive_model, 2, choice, [("openvino", build)])
        assert engine.name == "tensorflow"
        assert ("failed parity" if broken != "crashes" else "failed to build") in engine.note


def test_auto_takes_the_fastest_candidate_and_refuses_a_slower_one(decisive_model):
    probes = input_preparer(decisive_model)(probe_images(SIZE)).inputs
    answers = tensorflow_runner(decisive_model)(probes)

    def slow_build():  # twice TensorFlow's CPU (speed is judged by CPU time, not by waiting)
        tensorflow = tensorflow_runner(decisive_model)
        return lambda inputs: (tensorflow(inputs), tensorflow(inputs))[1]

    def instant_build():
        return lambda inputs: answers

    assert load_engine(decisive_model, 2, "auto", [("openvino", slow_build),
                                                   ("openvino-bf16", instant_build)]
                       ).name == "openvino-bf16"
    refused = load_engine(decisive_model, 2, "auto", [("openvino", slow_build)])
    assert refused.name == "tensorflow" and "none faster" in refused.note
    forced = load_engine(decisive_model, 2, "openvino", [("openvino", slow_build)])
    assert forced.name == "openvino"  # asked for: used though slower, as it matches


def test_engine_choice_is_checked_and_an_unknown_setting_is_one_line(decisive_model,
                                                                     monkeypatch):
    from db.errors import SettingsError
    from db.settings import get_settings, reset_settings

    with pytest.raises(ValueError, match="auto, tensorflow, openvino"):
        load_engine(decisive_model, 2, "fp32")
    monkeypatch.setenv("HAPPYSAD_ENGINE", "tflite")
    reset_settings()
    with pytest.raises(SettingsError) as raised:
        get_settings()
    message = str(raised.value)
    assert "\n" not in message and "HAPPYSAD_ENGINE='tflite'" in message
    assert all(value in message for value in ("auto", "tensorflow", "openvino"))
    monkeypatch.setenv("HAPPYSAD_ENGINE", "openvino")
    reset_settings()
    assert get_settings().engine == "openvino"


def test_reduced_precision_is_offered_only_where_registration_allowed_it_and_hardware_runs_it():
    allowed = {"openvino": {"reduced_precision": {"bf16": {"passed": True}}}}
    refused = {"openvino": {"reduced_precision": {"bf16": {"passed": False}}}}

    def names(record, flags):
        return [name for name, _ in openvino_candidates({}, record, flags=flags)]

    assert names(allowed, {"avx512_bf16"}) == ["openvino", "openvino-bf16"]
    assert names(allowed, {"avx2"}) == names(refused, {"amx_bf16"}) == ["openvino"]
    assert openvino_candidates(None, allowed, flags={"avx512_bf16"}) == []


def test_chunked_overlapped_classification_matches_one_model_call(decisive_model, tmp_path,
                                                                  monkeypatch):
    import cv2

    from trainer.images import decode_pixels
    from trainer.storage import open_storage
    from worker import classify

    rng = np.random.default_rng(0)
    for index in range(11):
        pixels = rng.integers(0, 256, (40 + index, 48, 3), dtype=np.uint8)
        cv2.imwrite(str(tmp_path / f"{index:02d}.jpg"), pixels)
    (tmp_path / "05.jpg").write_bytes(b"not a jpeg")
    uris = [str(path) for path in sorted(tmp_path.glob("*.jpg"))]
    monkeypatch.setattr(classify, "INFERENCE_CHUNK", 4)  # 11 images: chunks of 4, 4, 3
    model = classify.LoadedModel(version=1, class_names=["happy", "sad"], image_size=SIZE,
                                 infer=load_engine(decisive_model, 2, "tensorflow"))
    with ThreadPoolExecutor(2) as pool:
        probabilities, errors, familiarity = classify.classify_images(
            open_storage(str(tmp_path)), uris, model, 10**8, pool)
    assert familiarity == [None] * 11  # a model without the output
    assert [error is not None for error in errors] == [index == 5 for index in range(11)]
    assert probabilities[5] is None
    good = [index for index in range(11) if index != 5]
    pixels = np.stack([decode_pixels(Path(uris[index]).read_bytes(), SIZE) for index in good])
    expected = model.probabilities(pixels)
    assert expected.shape == (10, 2)
    np.testing.assert_allclose(np.stack([probabilities[index] for index in good]), expected,
                               atol=1e-6)
    rows = classify.prediction_rows(7, model, uris, probabilities, errors, "host")
    assert rows[5]["label"] is None and rows[5]["error"]
    assert rows[0]["label"] == ["happy", "sad"][int(expected[0].argmax())]


@pytest.fixture(scope="module")
def decisive_pretrained():
    """The pretrained architecture (its packaged ImageNet backbone, at 32 px) with its features
    standardised on the probes and a sharpened head, so probes fall on both sides. (A random
    backbone saturates its ReLU6s: every probe gets the same features.)"""
    import keras

    from trainer.model import FEATURES_LAYER, build_pretrained

    keras.utils.set_random_seed(5)
    model = build_pretrained(SIZE, 2)
    features = keras.Model(model.input, model.get_layer(FEATURES_LAYER).output)
    model.get_layer("feature_standardisation").adapt(features(model_input(probe_images(SIZE))))
    head = model.get_layer("class_probabilities")
    kernel, bias = head.get_weights()
    head.set_weights([kernel * 20, bias])
    outputs = reference_outputs(model, probe_images(SIZE)).astype(np.float64).ravel()
    logits = np.log(outputs / (1 - outputs))
    head.set_weights([kernel * 20, np.full_like(bias, bias - np.mean(logits))])
    outputs = reference_outputs(model, probe_images(SIZE)).ravel()
    assert outputs.min() < 0.2 and outputs.max() > 0.8, outputs
    return model


def test_every_engine_matches_on_the_tutorial_cnn_and_the_pretrained_model(decisive_model,
                                                                          decisive_pretrained):
    for model in (decisive_model, decisive_pretrained):
        assert_every_engine_matches(model, {CLASS_OUTPUT: reference_outputs(model,
                                                                     probe_images(SIZE))})


@pytest.fixture(scope="module")
def decisive_faces():
    """The face-reading default architecture (packaged backbone and expression network, at
    32 px), its standardisations and familiarity fitted on the probes, its image part
    sharpened like `decisive_pretrained`'s head."""
    import keras

    from trainer.faces import model_batch
    from trainer.inputs import IMAGE_INPUT
    from trainer.model import FEATURES_LAYER, IMAGE_LOGITS_LAYER, build_pretrained_faces
    from trainer.transfer import fit_familiarity, layer_runner

    keras.utils.set_random_seed(5)
    model = build_pretrained_faces(SIZE, 2)
    pixels = model_input(probe_images(SIZE))
    model.get_layer("feature_standardisation").adapt(
        layer_runner(model, [IMAGE_INPUT], FEATURES_LAYER)(pixels))
    fit_familiarity(model, pixels[::2], pixels[1::2])
    head = model.get_layer(IMAGE_LOGITS_LAYER)
    kernel, bias = head.get_weights()
    head.set_weights([kernel * 20, bias])
    logits = np.asarray(model(model_batch(model, pixels).inputs)["class_probabilities"]).ravel()
    logits = np.log(logits / (1 - logits))
    head.set_weights([kernel * 20, np.full_like(bias, bias - np.median(logits))])
    return model


def assert_every_engine_matches(model, expected, class_count: int = 2, atol: float = 1e-4):
    """TensorFlow and OpenVINO (converted as registration converts) give the model's own
    outputs on the probes, every output, and OpenVINO really is chosen when asked for. (Against
    the eager Keras call: graphs fuse operations in another order, ~1e-5 of probability.)"""
    files = convert_openvino(model)
    images = probe_images(SIZE)
    for choice in ("tensorflow", "openvino"):
        engine = load_engine(model, class_count, choice, openvino_candidates(files, {}))
        assert engine.name == choice, engine.note
        outputs = engine(images)
        assert set(outputs) == set(expected)
        for name, values in expected.items():
            np.testing.assert_allclose(outputs[name], values, atol=atol, err_msg=f"{choice}/{name}")


def test_every_engine_matches_on_the_default_face_model(decisive_faces):
    """The engine finds the faces itself and feeds them beside the pixels. (The traced graph
    fuses operations differently from eager calls; the sharpened head turns that rounding into
    up to ~1e-4 of probability, far inside the parity tolerance.)"""
    outputs = face_model_outputs(decisive_faces, probe_images(SIZE))
    expected = dict(zip(decisive_faces.output_names, outputs))
    assert set(expected) == {CLASS_OUTPUT, "familiarity"}
    assert_every_engine_matches(decisive_faces, expected, atol=5e-4)


def test_every_output_of_a_two_output_face_model_comes_out_by_name():
    """Whatever inputs and outputs a model has (here the default's face inputs and a second
    output, "familiarity", as the default model gains), every engine feeds them by name and
    gives all outputs back by name."""
    import keras

    from trainer.inputs import FACE_INPUT, FACE_SIZE, FOUND_INPUT, IMAGE_INPUT

    keras.utils.set_random_seed(7)
    image = keras.Input((SIZE, SIZE, 3), name=IMAGE_INPUT)
    face = keras.Input((FACE_SIZE, FACE_SIZE, 1), name=FACE_INPUT)
    found = keras.Input((1,), name=FOUND_INPUT)
    features = keras.layers.Concatenate()([
        keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(image)),
        keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(face)), found])
    model = keras.Model([image, face, found], {
        CLASS_OUTPUT: keras.layers.Dense(3, "softmax", name=CLASS_OUTPUT)(features),
        "familiarity": keras.layers.Dense(1, "sigmoid", name="familiarity")(features)})
    expected = dict(zip(model.output_names, face_model_outputs(model, probe_images(SIZE))))
    assert set(expected) == {CLASS_OUTPUT, "familiarity"}
    assert_every_engine_matches(model, expected, class_count=3)


def face_model_outputs(model, pixels):
    """The model itself, given the face crops trainer.faces makes (as training does)."""
    from trainer.faces import model_batch

    outputs = model(model_batch(model, model_input(pixels)).inputs, training=False)
    if isinstance(outputs, dict):
        return [np.asarray(outputs[name]) for name in model.output_names]
    return np.asarray(outputs)


def test_speed_is_judged_by_the_cpu_an_image_costs_not_by_the_wall_clock():
    """A worker's processes race at once on shared cores: time spent waiting for the other
    is not the candidate's cost, and CPU burnt is."""
    import time

    def work(_inputs):  # one thread's CPU, a few ms
        sum(range(100_000))
        return {}

    def twice(inputs):
        return work(inputs) | work(inputs)

    def waiting(inputs):
        time.sleep(0.02)  # another process had the core
        return work(inputs)

    assert median_speedup(work, twice, {}, repeats=9) < 0.7
    assert 0.7 < median_speedup(work, waiting, {}, repeats=9) < 1.4
