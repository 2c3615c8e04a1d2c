"""Keras models in tests: saved and reloaded the way workers load a version."""

import numpy as np


def reloaded_identical(model, inputs, folder, class_count: int):
    """Save `model` as a .keras file in `folder`, reload it in safe mode (as workers do), check
    that it gives exactly the same outputs on `inputs`, of the shape the classes call for, and
    return the reloaded model."""
    import keras

    path = folder / "model.keras"
    model.save(path)
    reloaded = keras.models.load_model(path, compile=False, safe_mode=True)
    before, after = model(inputs), reloaded(inputs)
    if not isinstance(before, dict):  # one output: the class probabilities
        before, after = {"class_probabilities": before}, {"class_probabilities": after}
    count = len(next(iter(inputs.values())) if isinstance(inputs, dict) else inputs)
    assert np.asarray(before["class_probabilities"]).shape == (
        count, 1 if class_count == 2 else class_count)
    assert set(before) == set(after)
    for name in before:
        np.testing.assert_array_equal(np.asarray(before[name]), np.asarray(after[name]))
    return reloaded
