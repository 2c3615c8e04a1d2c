import numpy as np

from trainer.evaluate import classification_metrics
from trainer.model import class_probabilities


def test_binary_metrics_follow_the_positive_second_class():
    true = np.array([0, 0, 1, 1, 1])
    sigmoid = np.array([0.1, 0.7, 0.9, 0.8, 0.2])  # one false positive, one false negative
    metrics = classification_metrics(true, class_probabilities(sigmoid, 2), ["happy", "sad"])
    assert metrics["accuracy"] == 3 / 5
    assert metrics["precision"] == 2 / 3 and metrics["recall"] == 2 / 3
    assert metrics["confusion_matrix"] == [[1, 1], [1, 2]]
    assert metrics["per_class"]["happy"]["support"] == 2


def test_multiclass_macro_average():
    probabilities = np.eye(3)[[0, 1, 2, 2]]
    metrics = classification_metrics(np.array([0, 1, 2, 1]), probabilities, ["a", "b", "c"])
    assert metrics["accuracy"] == 0.75
    assert np.isclose(metrics["recall"], (1 + 0.5 + 1) / 3)
