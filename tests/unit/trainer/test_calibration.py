"""Calibration: the temperature that undoes a known over-confidence (of the scores it scales),
and the calibration error
of predictions whose confidence matches their accuracy (near zero) or does not."""

import numpy as np

from trainer.calibration import (expected_calibration_error, fit_temperature,
                                 probabilities_from_logits, reliability_bins)


def sampled(logits: np.ndarray, seed: int) -> np.ndarray:
    """Labels drawn with the probabilities the logits give: a perfectly calibrated model."""
    rng = np.random.default_rng(seed)
    probabilities = probabilities_from_logits(logits)
    return np.array([rng.choice(len(row), p=row) for row in probabilities])


def test_a_known_over_confidence_is_undone():
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 2, (4000, 1))
    labels = sampled(true_logits, 1)
    assert abs(fit_temperature(3 * true_logits, labels) - 3) < 0.3
    three_classes = rng.normal(0, 2, (4000, 3))
    assert abs(fit_temperature(0.5 * three_classes, sampled(three_classes, 2)) - 0.5) < 0.06


def test_a_temperature_kept_to_softening_never_sharpens():
    """An under-confident model asks for a temperature below 1; kept at 1 or above (what the
    default model's fitting does), it gets exactly 1, and an over-confident one is still undone."""
    rng = np.random.default_rng(5)
    true_logits = rng.normal(0, 2, (4000, 1))
    labels = sampled(true_logits, 6)
    assert fit_temperature(0.5 * true_logits, labels, lowest=1.0) == 1.0
    assert abs(fit_temperature(3 * true_logits, labels, lowest=1.0) - 3) < 0.3


def test_scores_added_after_the_temperature_are_not_scaled():
    """Half the images' scores come after the temperature (an unfamiliar image's face, read
    within its own bound): the temperature undoes the over-confidence of the rest alone."""
    rng = np.random.default_rng(7)
    true_logits = rng.normal(0, 2, (4000, 1))
    labels = sampled(true_logits, 8)
    after = np.where(np.arange(4000)[:, None] % 2 == 0, true_logits, 0.0)
    scaled = np.where(after == 0, 3 * true_logits, 0.0)
    assert abs(fit_temperature(scaled, labels, offset=after) - 3) < 0.3
    # Scaled with the rest, the sure half's scores would have asked for less softening.
    assert fit_temperature(scaled + after, labels) < 2.5


def test_calibration_error_is_near_zero_when_confidence_matches_accuracy():
    logits = np.random.default_rng(3).normal(0, 2, (5000, 1))
    labels = sampled(logits, 4)
    assert expected_calibration_error(probabilities_from_logits(logits), labels) < 0.03
    assert expected_calibration_error(probabilities_from_logits(4 * logits), labels) > 0.1


def test_reliability_bins_cover_every_prediction():
    probabilities = np.array([[0.55, 0.45], [0.05, 0.95], [0.02, 0.98], [0.7, 0.3]])
    bins = reliability_bins(probabilities, np.array([0, 1, 0, 1]))
    assert sum(row["count"] for row in bins) == 4
    top = bins[-1]
    assert top["count"] == 2 and top["accuracy"] == 0.5 and abs(top["confidence"] - 0.965) < 1e-9
