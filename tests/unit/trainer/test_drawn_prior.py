"""trainer.drawn_prior: the shipped reading of drawn happy and sad faces loads and fits the default
model; its fit is the standardised logistic regression folded into one layer, and its likeness
familiarity's measure; a model of happy and sad classes reads a drawing unlike its training
photos with it, as far as the image is like its emoji, and nothing else changes: not a photo's
face, not an image far from the emoji, not a model of other classes."""

import numpy as np
import pytest

from tests.unit.trainer.test_faces import SIZE, face_model_inputs, fitted_face_model
from trainer.inputs import DRAWN_INPUT, FACE_INPUT, FOUND_INPUT


def test_the_shipped_prior_fits_the_default_model():
    from trainer import drawn_prior
    from trainer.backbones.efficientnet_lite import FEATURE_WIDTH
    from trainer.model import PRETRAINED_BACKBONE, RECIPES

    prior = drawn_prior.load()
    assert prior.backbone == PRETRAINED_BACKBONE
    assert prior.image_size == RECIPES["pretrained-faces"].image_size
    assert prior.kernel.shape == (FEATURE_WIDTH, 1) and prior.bias.shape == (1,)
    assert np.all(np.isfinite(prior.kernel)) and np.abs(prior.kernel).max() > 0
    components = RECIPES["pretrained-faces"].familiarity_components
    assert prior.projection.shape == (FEATURE_WIDTH, components)
    assert prior.projection_bias.shape == (components,) and prior.likely_within > 0
    assert len(prior.sources) == 5


def test_likeness_is_familiaritys_distance_in_whitened_components():
    """Along each of the kept components the emoji spread by 1; an image far out along one is
    far; the chosen share of the emoji is within the distance returned."""
    from benchmarks.drawn_prior import likeness

    rng = np.random.default_rng(4)
    features = rng.gamma(2.0, 1.0, (200, 6)) * np.float64([1, 2, 3, 4, 5, 6])
    kernel, bias, within = likeness(features, 3, 0.9)
    projected = features @ kernel + bias
    np.testing.assert_allclose(projected.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(projected.std(0), 1, atol=1e-3)
    distances = np.mean(projected ** 2, axis=1)
    assert np.mean(distances <= within) == pytest.approx(0.9, abs=0.01)
    far = features.mean(0) + 50 * features.std(0)
    assert np.mean((far @ kernel + bias) ** 2) > 10 * within


@pytest.mark.parametrize("names, expected", [
    (["happy", "sad"], True), (["Happy", "SAD"], True), (["cats", "dogs"], False),
    (["angry", "happy", "sad"], False), (["sad", "happy"], False)])
def test_it_reads_only_the_classes_happy_and_sad(names, expected):
    from trainer.drawn_prior import applies

    assert applies(names) is expected


def test_the_fit_is_the_standardised_logistic_regression_in_one_layer():
    from benchmarks.drawn_prior import VARIANCE_FLOOR, fit
    from trainer.transfer import fit_converged

    rng = np.random.default_rng(3)
    features = rng.gamma(2.0, 1.5, (60, 12))
    labels = (features[:, 0] + rng.normal(0, 1, 60) > 3).astype(np.int32)
    kernel, bias = fit(features, labels, l2=0.5)
    mean, scale = features.mean(0), np.sqrt(features.var(0) + VARIANCE_FLOOR)
    standard_kernel, standard_bias = fit_converged((features - mean) / scale, labels, 2, 0.5)
    np.testing.assert_allclose(features @ kernel + bias,
                               (features - mean) / scale @ standard_kernel + standard_bias,
                               rtol=1e-4, atol=1e-4)


def prior_for(model, far: bool = False):
    """A DrawnPrior with random weights that fits `model` (its size and feature width), to
    which every image is as like as can be (a zero projection), or, `far`, none is."""
    from trainer.drawn_prior import DrawnPrior
    from trainer.model import DRAWN_PRIOR_LAYER

    kernel = model.get_layer(DRAWN_PRIOR_LAYER).get_weights()[0]
    projection = model.get_layer("emoji_projection").get_weights()[0]
    rng = np.random.default_rng(0)
    return DrawnPrior("lite2", SIZE, rng.normal(0, 0.5, kernel.shape).astype(np.float32),
                      np.float32([0.3]), np.zeros_like(projection),
                      np.full(projection.shape[1], 100.0 if far else 0.0, np.float32), 1.0,
                      ("test",))


def test_a_model_gets_the_prior_only_for_happy_and_sad_at_its_size():
    from trainer.drawn_prior import DrawnPrior
    from trainer.model import DRAWN_PRIOR_LAYER
    from trainer.transfer import set_drawn_prior
    from worker.engine import probe_images

    model = fitted_face_model(2, probe_images(SIZE).astype(np.float32))
    layer = model.get_layer(DRAWN_PRIOR_LAYER)
    assert not any(np.any(weight) for weight in layer.get_weights())  # zero until set
    prior = prior_for(model)
    assert set_drawn_prior(model, ["happy", "sad"], prior)
    np.testing.assert_array_equal(layer.get_weights()[0], prior.kernel)
    assert not set_drawn_prior(model, ["cats", "dogs"], prior)
    assert not any(np.any(weight) for weight in layer.get_weights())
    other_size = DrawnPrior("lite2", SIZE * 2, prior.kernel, prior.bias, prior.projection,
                            prior.projection_bias, 1.0, ("test",))
    assert not set_drawn_prior(model, ["happy", "sad"], other_size)
    assert not any(np.any(weight) for weight in layer.get_weights())


def test_a_drawing_is_read_with_the_prior_and_a_photo_face_without_it():
    """Where the prior is set, an unfamiliar drawn face like its emoji is read by its face
    reading plus the recipe's weight times the prior's score, within the recipe's
    emoji_confidence (not the unfamiliar one), and is that familiar; a photo's face (a noisy
    crop, not flat) and an image without a face keep exactly the outputs they had without it."""
    import keras

    from trainer.model import DRAWN_PRIOR_LAYER, FACE_LOGITS_LAYER, RECIPES, score_limit
    from trainer.transfer import set_drawn_prior
    from worker.engine import probe_images

    def unfamiliar_model():
        model = fitted_face_model(2, pixels)
        ramp = model.get_layer("familiarity_ramp")  # every image unlike the training images
        ramp.set_weights([np.zeros_like(weight) for weight in ramp.get_weights()])
        return model

    pixels = probe_images(SIZE).astype(np.float32)
    model = unfamiliar_model()
    inputs = face_model_inputs(pixels)
    part = keras.Model(model.inputs, [model.get_layer("logits").output,
                                      model.get_layer(FACE_LOGITS_LAYER).output,
                                      model.get_layer(DRAWN_PRIOR_LAYER).output,
                                      model.get_layer("photo_familiarity").output,
                                      model.output["familiarity"]])
    before = [np.asarray(value) for value in part(inputs)]
    assert set_drawn_prior(model, ["happy", "sad"], prior_for(model))
    logits, face, prior, photo_familiarity, familiarity = [np.asarray(value)
                                                          for value in part(inputs)]
    assert np.abs(prior).min() > 0 and photo_familiarity.max() == 0

    drawn = inputs[DRAWN_INPUT][:, 0] > 0
    np.testing.assert_allclose(logits[~drawn], before[0][~drawn], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(familiarity[~drawn], before[4][~drawn])
    np.testing.assert_array_equal(familiarity[drawn], 1.0)  # as like the emoji as can be
    recipe = RECIPES["pretrained-faces"]
    limit = score_limit(recipe.unfamiliar_confidence, 2)
    emoji_limit = score_limit(recipe.emoji_confidence, 2)
    assert emoji_limit > limit
    photo_part = before[0] - np.clip(face, -limit, limit) * (1 - photo_familiarity)
    expected = photo_part + np.clip(face + recipe.drawn_prior_weight * prior,
                                    -emoji_limit, emoji_limit) * (1 - photo_familiarity)
    np.testing.assert_allclose(logits[drawn], expected[drawn], rtol=1e-4, atol=1e-5)
    assert np.abs(logits[drawn] - before[0][drawn]).max() > 1e-3
    assert set_drawn_prior(model, ["happy", "sad"], prior_for(model, far=True))
    np.testing.assert_allclose(np.asarray(part(inputs)[0]), before[0], rtol=1e-5, atol=1e-6)
    blank = dict(inputs, **{FOUND_INPUT: np.zeros_like(inputs[FOUND_INPUT]),
                            DRAWN_INPUT: np.zeros_like(inputs[DRAWN_INPUT]),
                            FACE_INPUT: np.zeros_like(inputs[FACE_INPUT])})
    without_prior = unfamiliar_model()
    np.testing.assert_allclose(np.asarray(model(blank)["class_probabilities"]),
                               np.asarray(without_prior(blank)["class_probabilities"]),
                               rtol=1e-5, atol=1e-6)
