"""Keras models in tests: saved and reloaded the way workers load a version, and a small
labelled folder of drawn faces to fit their parts on."""

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


def drawn_faces_data(pairs: int = 5):
    """`pairs` happy and sad drawn faces (trainer.sample_data's, 260 px) as a labelled folder
    (trainer.dataset.LabelledImages), the same every call."""
    from trainer.dataset import LabelledImages
    from trainer.sample_data import draw_face

    rng = np.random.default_rng(4)
    class_names = ["happy", "sad"]
    moods = class_names * pairs
    drawings = np.stack([draw_face(mood, 260, rng) for mood in moods]).astype(np.float32)
    return LabelledImages(source="drawings", class_names=class_names,
                          uris=[f"{index}.png" for index in range(len(moods))],
                          images=drawings, labels=np.array([class_names.index(m) for m in moods]),
                          fingerprint="")
