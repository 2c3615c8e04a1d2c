"""Classification metrics from true labels and per-class probabilities (pure NumPy)."""

import numpy as np


def predicted_labels(probabilities: np.ndarray) -> np.ndarray:
    """The most probable class; for two classes that is the tutorial's 0.5 threshold."""
    return np.argmax(probabilities, axis=1)


def confusion_matrix(true: np.ndarray, predicted: np.ndarray, class_count: int) -> np.ndarray:
    matrix = np.zeros((class_count, class_count), dtype=np.int64)
    np.add.at(matrix, (true, predicted), 1)
    return matrix


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator else 0.0


def classification_metrics(true: np.ndarray, probabilities: np.ndarray,
                           class_names: list[str]) -> dict:
    """Accuracy, precision, recall and F1, per class and overall.

    With two classes the headline precision and recall are those of the second class, which the
    sigmoid output scores (the tutorial's convention); with more they are macro averages.
    """
    predicted = predicted_labels(probabilities)
    matrix = confusion_matrix(true, predicted, len(class_names))
    per_class = {}
    for index, name in enumerate(class_names):
        true_positive = matrix[index, index]
        precision = _ratio(true_positive, matrix[:, index].sum())
        recall = _ratio(true_positive, matrix[index, :].sum())
        per_class[name] = {
            "precision": precision,
            "recall": recall,
            "f1": _ratio(2 * precision * recall, precision + recall),
            "support": int(matrix[index, :].sum()),
        }
    if len(class_names) == 2:
        headline = per_class[class_names[1]]
    else:
        headline = {key: float(np.mean([c[key] for c in per_class.values()]))
                    for key in ("precision", "recall", "f1")}
    return {
        "accuracy": _ratio(np.trace(matrix), matrix.sum()),
        "precision": headline["precision"],
        "recall": headline["recall"],
        "f1": headline["f1"],
        "count": int(matrix.sum()),
        "per_class": per_class,
        "confusion_matrix": matrix.tolist(),
    }
