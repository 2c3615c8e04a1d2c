"""The linear parts of the pretrained architectures, fitted on frozen networks' outputs."""

from types import SimpleNamespace

import numpy as np
import pytest

from tests.helpers.models import drawn_faces_data
from trainer.transfer import fit_converged, fit_linear


@pytest.mark.parametrize("class_count", [2, 3])
def test_the_converged_fit_is_the_optimum_keras_reaches_at_its_end(class_count):
    """fit_converged solves fit_linear's objective (balanced class weights, the recipe's L2 on
    the kernel): Keras's full-batch steps, run long enough, end at the same probabilities."""
    from trainer.model import RECIPES

    rng = np.random.default_rng(class_count)
    inputs = rng.normal(size=(120, 4)).astype(np.float32)
    labels = (np.digitize(inputs[:, 0] + 0.7 * rng.normal(size=120), [-0.3, 0.6])
              if class_count == 3 else (inputs[:, 0] + 0.7 * rng.normal(size=120) > 0.4))
    labels = labels.astype(np.int64)
    params = SimpleNamespace(architecture="pretrained-faces", learning_rate=0.05, epochs=1500)
    _history, keras_weights = fit_linear(inputs, labels, inputs[:0], labels[:0], class_count,
                                         params)
    weights = fit_converged(inputs, labels, class_count, RECIPES["pretrained-faces"].head_l2)

    def probabilities(kernel, bias):
        scores = inputs @ kernel + bias
        if class_count == 2:
            return 1 / (1 + np.exp(-scores))
        scores = np.exp(scores - scores.max(axis=1, keepdims=True))
        return scores / scores.sum(axis=1, keepdims=True)

    np.testing.assert_allclose(probabilities(*weights), probabilities(*keras_weights), atol=2e-3)


def test_the_face_part_is_the_same_whatever_ran_before():
    """The face part depended on the random state it was fitted in: a retrain in a worker
    process that had built the face networks before got another one than `happysad train`
    from the same folder and seed. Fitted to its optimum, it is one model."""
    import keras

    from trainer.dataset import Split
    from trainer.model import FACE_LOGITS_LAYER, build_pretrained_faces
    from trainer.train import TrainingParams
    from trainer.transfer import fit_faces

    data = drawn_faces_data()
    params = TrainingParams(architecture="pretrained-faces").resolved()
    everything = np.arange(len(data.labels))
    split = Split(everything, everything, np.zeros(0, np.int64), reviewed=everything)
    fitted = []
    for history in (0, 1):  # two histories of the process's random state
        keras.utils.set_random_seed(history)
        keras.random.normal((history + 1,))
        model = build_pretrained_faces(32, 2)
        fit_faces(model, data, split, params)
        fitted.append(model.get_layer(FACE_LOGITS_LAYER).get_weights())
    assert np.any(fitted[0][0])  # the reviewed drawings taught it something
    for first, second in zip(*fitted):
        np.testing.assert_array_equal(first, second)
