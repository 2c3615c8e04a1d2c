"""Confidence that means what it says: a temperature for a model's scores, fitted on its
validation split, and how far confidence and accuracy part (expected calibration error, and the
bins of a reliability diagram). Pure NumPy."""

import numpy as np

TEMPERATURES = np.exp(np.linspace(np.log(0.2), np.log(10.0), 241))  # searched, 1.6% apart
CALIBRATION_BINS = 10


def probabilities_from_logits(logits: np.ndarray, temperature: float = 1.0,
                              offset: np.ndarray | float = 0.0) -> np.ndarray:
    """(n, classes) probabilities of (n, 1) sigmoid or (n, k) softmax scores, divided by the
    temperature, plus `offset` (scores the temperature does not touch)."""
    scaled = np.asarray(logits, np.float64) / temperature + np.asarray(offset, np.float64)
    if scaled.shape[1] == 1:
        second = 1 / (1 + np.exp(-np.clip(scaled[:, 0], -50, 50)))
        return np.stack([1 - second, second], axis=1)
    shifted = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def fit_temperature(logits: np.ndarray, labels: np.ndarray, lowest: float = 0.0,
                    offset: np.ndarray | float = 0.0) -> float:
    """The temperature, at least `lowest`, that minimises the negative log-likelihood of
    `labels` (class indices) under softened or sharpened scores (plus `offset`, scores it does
    not touch); 1 when there is nothing to fit it on."""
    if len(labels) == 0:
        return 1.0
    labels = np.asarray(labels, np.int64)
    searched = np.unique(np.maximum(TEMPERATURES, lowest))
    losses = [-np.mean(np.log(np.clip(probabilities_from_logits(logits, temperature, offset)[
        np.arange(len(labels)), labels], 1e-12, 1))) for temperature in searched]
    return float(searched[int(np.argmin(losses))])


def reliability_bins(probabilities: np.ndarray, labels: np.ndarray,
                     bins: int = CALIBRATION_BINS) -> list[dict]:
    """Per bin of confidence (the top probability) from 1/classes to 1: how many predictions,
    their mean confidence and how many were right."""
    probabilities = np.asarray(probabilities, np.float64)
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == np.asarray(labels)
    edges = np.linspace(1 / probabilities.shape[1], 1, bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, bins - 1)
    return [{"low": float(edges[index]), "high": float(edges[index + 1]),
             "count": int(np.sum(which == index)),
             "confidence": float(confidence[which == index].mean()) if np.any(which == index)
             else None,
             "accuracy": float(correct[which == index].mean()) if np.any(which == index)
             else None}
            for index in range(bins)]


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray,
                               bins: int = CALIBRATION_BINS) -> float:
    """The mean gap between confidence and accuracy over the bins, weighted by their counts."""
    table = reliability_bins(probabilities, labels, bins)
    total = sum(row["count"] for row in table)
    if not total:
        return 0.0
    return float(sum(row["count"] * abs(row["confidence"] - row["accuracy"])
                     for row in table if row["count"]) / total)
