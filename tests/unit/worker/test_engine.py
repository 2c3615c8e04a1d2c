"""The inference engine: parity really compares, a broken candidate really falls back to fp32,
and the worker's chunked, overlapped path gives the same answers as one model call."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from trainer.images import UNIT_SCALE, model_input
from worker import engine as engine_module
from worker.engine import (PROBABILITY_TOLERANCE, PROBE_COUNT, check_parity, load_engine,
                           probe_images)

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


def test_fp32_engine_is_the_model_for_any_batch_size(decisive_model):
    engine = load_engine(decisive_model, SIZE, 2, choice="fp32")
    assert engine.name == "fp32"
    for count in (1, 5, 16):
        images = probe_images(SIZE)[:count]
        np.testing.assert_allclose(engine(images), reference_outputs(decisive_model, images),
                                   atol=1e-6)


@pytest.mark.parametrize("preprocessing_version", [1, 2])
def test_the_graph_feeds_pixels_exactly_as_training_does(preprocessing_version):
    """The engine takes uint8 and makes the float32 input in its graph: bit for bit what
    trainer.images.model_input gives a model of that preprocessing version in training, for
    every pixel value (version 1: scaled by 1/255 outside the model; 2: the model scales)."""
    import keras

    from trainer.images import input_scale

    identity = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Identity()])
    pixels = np.arange(16 * 16 * 3, dtype=np.int64).reshape(1, 16, 16, 3) % 256
    pixels = pixels.astype(np.uint8)
    scale = input_scale(preprocessing_version)
    fed = engine_module.compile_graph(identity, 16, scale)(pixels)
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
    engine = load_engine(old_style, SIZE, 2, "fp32", input_scale=UNIT_SCALE)
    np.testing.assert_allclose(engine(pixels), reference_outputs(decisive_model, pixels),
                               atol=1e-6)


def test_parity_counts_label_flips_and_allows_near_ties():
    reference = np.array([[0.9], [0.1], [0.505]])
    assert check_parity(reference, reference + 0.01, 2).passed
    near_tie = check_parity(reference, np.array([[0.9], [0.1], [0.495]]), 2)
    assert near_tie.passed and near_tie.label_mismatches == 0
    flipped = check_parity(reference, 1 - reference, 2)
    assert not flipped.passed and flipped.label_mismatches == 2
    assert not check_parity(reference, reference + PROBABILITY_TOLERANCE + 0.01, 2).passed
    assert not check_parity(reference, np.full_like(reference, np.nan), 2).passed


@pytest.mark.parametrize("broken", ["flipped", "shifted", "crashes"])
def test_a_broken_candidate_falls_back_to_fp32(decisive_model, broken):
    def build(model, size, scale):
        fp32 = engine_module.compile_graph(model, size, scale)
        if broken == "crashes":
            raise RuntimeError("no such kernel")
        if broken == "flipped":
            return lambda images: 1 - fp32(images)
        return lambda images: np.clip(fp32(images) + 3 * PROBABILITY_TOLERANCE, 0, 1)

    for choice in ("auto", "candidate"):
        engine = load_engine(decisive_model, SIZE, 2, choice, candidates=[("candidate", build)])
        assert engine.name == "fp32"
        assert ("failed parity" if broken != "crashes" else "failed to build") in engine.note


def test_real_bfloat16_candidate_passes_parity(decisive_model):
    candidates = engine_module.default_candidates({"avx512_bf16"})
    engine = load_engine(decisive_model, SIZE, 2, "bf16", candidates=candidates)
    assert engine.name == "bf16", engine.note
    images = probe_images(SIZE)
    difference = np.abs(engine(images) - reference_outputs(decisive_model, images)).max()
    assert 0 < difference <= PROBABILITY_TOLERANCE  # really bfloat16, and within tolerance


def test_auto_takes_a_faster_candidate_and_refuses_a_slower_one(decisive_model):
    import time

    answers = reference_outputs(decisive_model, probe_images(SIZE))
    instant = ("instant", lambda model, size, scale: lambda images: answers)

    def slow_build(model, size, scale):
        fp32 = engine_module.compile_graph(model, size, scale)
        return lambda images: (time.sleep(0.05), fp32(images))[1]

    assert load_engine(decisive_model, SIZE, 2, candidates=[instant]).name == "instant"
    refused = load_engine(decisive_model, SIZE, 2, candidates=[("slow", slow_build)])
    assert refused.name == "fp32" and "slow not faster" in refused.note


def test_engine_choice_is_checked_and_hardware_decides_the_candidates(decisive_model, tmp_path):
    with pytest.raises(ValueError, match="auto, fp32, bf16"):
        load_engine(decisive_model, SIZE, 2, "tflite")
    unavailable = load_engine(decisive_model, SIZE, 2, "bf16", candidates=[])
    assert unavailable.name == "fp32" and "not available" in unavailable.note
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2\n")
    assert engine_module.default_candidates(engine_module.cpu_flags(cpuinfo)) == []
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 amx_bf16 amx_tile\n")
    assert [name for name, _ in engine_module.default_candidates(
        engine_module.cpu_flags(cpuinfo))] == ["bf16"]


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
                                 infer=load_engine(decisive_model, SIZE, 2, "fp32"))
    with ThreadPoolExecutor(2) as pool:
        probabilities, errors, familiarity = classify.classify_images(
            open_storage(str(tmp_path)), uris, model, 10**8, pool)
    assert familiarity == [None] * 11  # a model without the output
    assert [error is not None for error in errors] == [index == 5 for index in range(11)]
    assert probabilities[5] is None
    good = [index for index in range(11) if index != 5]
    pixels = np.stack([decode_pixels(Path(uris[index]).read_bytes(), SIZE) for index in good])
    expected = model.probabilities(pixels)
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


def test_fp32_engine_is_the_pretrained_model(decisive_pretrained):
    engine = load_engine(decisive_pretrained, SIZE, 2, "fp32")
    images = probe_images(SIZE)
    np.testing.assert_allclose(engine(images), reference_outputs(decisive_pretrained, images),
                               atol=1e-5)


def test_bfloat16_on_the_pretrained_model_is_used_only_if_it_really_matches(decisive_pretrained):
    """The parity check's verdict on the backbone in bfloat16 agrees with the difference the
    test measures itself: chosen only within tolerance and with the same labels."""
    candidates = engine_module.default_candidates({"avx512_bf16"})
    engine = load_engine(decisive_pretrained, SIZE, 2, "bf16", candidates=candidates)
    images = probe_images(SIZE)
    reference = reference_outputs(decisive_pretrained, images)
    bf16 = engine_module.compile_graph(engine_module.bfloat16_model(decisive_pretrained), SIZE)
    measured = check_parity(reference, bf16(images), 2)
    assert engine.name == ("bf16" if measured.passed else "fp32"), engine.note
    if engine.name == "fp32":
        assert "failed parity" in engine.note


@pytest.fixture(scope="module")
def decisive_faces():
    """The face-reading default architecture (packaged backbone and expression network, at
    32 px), standardised on the probes and sharpened like `decisive_pretrained`."""
    import keras

    from trainer.faces import model_inputs
    from trainer.model import FACE_FEATURES_LAYER, FEATURES_LAYER, build_pretrained_faces

    keras.utils.set_random_seed(5)
    model = build_pretrained_faces(SIZE, 2)
    inputs = model_inputs(model, model_input(probe_images(SIZE)))
    for layer, features in (("feature_standardisation", FEATURES_LAYER),
                            ("face_standardisation", FACE_FEATURES_LAYER)):
        model.get_layer(layer).adapt(
            keras.Model(model.inputs, model.get_layer(features).output)(inputs))
    head = model.get_layer("class_probabilities")
    kernel, bias = head.get_weights()
    outputs = np.asarray(model(inputs)).astype(np.float64).ravel()
    logits = np.log(outputs / (1 - outputs))
    head.set_weights([kernel * 20, np.full_like(bias, bias - np.mean(logits))])
    return model


def face_model_outputs(model, pixels):
    """The face model itself, given the face crops trainer.faces makes (as training does)."""
    from trainer.faces import model_inputs

    return np.asarray(model(model_inputs(model, model_input(pixels)), training=False))


def test_fp32_engine_is_the_face_model(decisive_faces):
    """The engine finds the faces itself and feeds them beside the pixels. (The traced graph
    fuses operations differently from eager calls; the sharpened head turns that rounding into
    up to ~1e-4 of probability, far inside the parity tolerance.)"""
    engine = load_engine(decisive_faces, SIZE, 2, "fp32")
    images = probe_images(SIZE)
    np.testing.assert_allclose(engine(images), face_model_outputs(decisive_faces, images),
                               atol=5e-4)


def test_bfloat16_on_the_face_model_is_used_only_if_it_really_matches(decisive_faces):
    candidates = engine_module.default_candidates({"avx512_bf16"})
    engine = load_engine(decisive_faces, SIZE, 2, "bf16", candidates=candidates)
    images = probe_images(SIZE)
    reference = face_model_outputs(decisive_faces, images)
    assert engine.name in ("bf16", "fp32"), engine.note
    if engine.name == "bf16":
        assert check_parity(reference, engine(images), 2).passed
    else:
        assert "parity" in engine.note or "failed to build" in engine.note
