"""A model's "familiarity" output travels from classify's path into the predictions table; a
model without it (every version before it) stores NULL."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from db import queries
from db.session import session_scope
from tests.helpers.records import add_version
from trainer.images import decode_pixels, model_input

SIZE = 32


def two_output_model():
    """A tiny functional model with the two named outputs the default model gives."""
    import keras

    keras.utils.set_random_seed(5)
    pixels = keras.Input((SIZE, SIZE, 3))
    scaled = keras.layers.Rescaling(1 / 255)(pixels)
    features = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(scaled))
    outputs = {"class_probabilities": keras.layers.Dense(1, activation="sigmoid",
                                                         name="class_probabilities")(features),
               "familiarity": keras.layers.Dense(1, activation="sigmoid",
                                                 name="familiarity")(features)}
    return keras.Model(pixels, outputs)


def write_images(folder: Path) -> list[str]:
    import cv2

    rng = np.random.default_rng(1)
    for index in range(5):
        cv2.imwrite(str(folder / f"{index}.png"),
                    rng.integers(0, 256 // (index + 1), (SIZE, SIZE, 3), dtype=np.uint8))
    (folder / "9.png").write_bytes(b"not a png")
    return [str(path) for path in sorted(folder.glob("*.png"))]


def classify_and_store(folder: Path, infer) -> tuple[list[str], dict[str, object]]:
    """classify's own path: decode, model, rows, one bulk insert; the stored rows by name."""
    from trainer.storage import open_storage
    from worker import classify

    uris = write_images(folder)
    with session_scope() as session:
        add_version(session, 1)
        session.flush()
        job_id = queries.create_job(session, str(folder), 1, batch_size=len(uris)).id
    model = classify.LoadedModel(version=1, class_names=["happy", "sad"], image_size=SIZE,
                                 infer=infer)
    with ThreadPoolExecutor(2) as pool:
        probabilities, errors, familiarity = classify.classify_images(
            open_storage(str(folder)), uris, model, 10**8, pool)
    rows = classify.prediction_rows(job_id, model, uris, probabilities, errors, "host",
                                    familiarity)
    classify.write_batch(session_scope, job_id, 0, rows, "host")
    with session_scope() as session:
        stored = {Path(p.uri).name: (p.label, p.confidence, p.familiarity)
                  for p in queries.iter_predictions(session, job_id)}
    return uris, stored


def test_a_two_output_model_stores_each_images_familiarity(database, tmp_path):
    model = two_output_model()
    uris, stored = classify_and_store(
        tmp_path, lambda pixels: {name: np.asarray(value) for name, value in
                                  model(model_input(pixels), training=False).items()})
    good = [uri for uri in uris if not uri.endswith("9.png")]
    pixels = np.stack([decode_pixels(Path(uri).read_bytes(), SIZE) for uri in good])
    expected = model(model_input(pixels), training=False)
    familiarity = np.asarray(expected["familiarity"]).ravel()
    sad = np.asarray(expected["class_probabilities"]).ravel()
    for uri, familiar, p_sad in zip(good, familiarity, sad):
        label, confidence, stored_familiarity = stored[Path(uri).name]
        assert stored_familiarity == pytest.approx(float(familiar), abs=1e-6)
        assert label == ("sad" if p_sad >= 0.5 else "happy")
        assert confidence == pytest.approx(max(p_sad, 1 - p_sad), abs=1e-6)
    assert len({round(value, 6) for value in familiarity}) > 1  # varied, not a constant
    assert stored["9.png"] == (None, None, None)  # unreadable: no label, no familiarity


def test_a_single_output_model_stores_no_familiarity(database, tmp_path):
    from trainer.model import build_model
    from worker.engine import load_engine

    model = build_model("baseline", SIZE, 2)
    _, stored = classify_and_store(tmp_path, load_engine(model, 2, "tensorflow"))
    assert {name: row[2] for name, row in stored.items()} == dict.fromkeys(stored, None)
    assert all(row[0] in ("happy", "sad") for name, row in stored.items() if name != "9.png")


def test_engine_outputs_are_normalised_whichever_shape_they_come_in():
    from worker.classify import model_outputs

    sigmoid = np.array([[0.2], [0.9]], np.float32)
    probabilities, familiarity = model_outputs(sigmoid, 2)
    np.testing.assert_allclose(probabilities, [[0.8, 0.2], [0.1, 0.9]], atol=1e-6)
    assert familiarity is None
    probabilities, familiarity = model_outputs(
        {"class_probabilities": sigmoid, "familiarity": np.array([[0.3], [1.2]])}, 2)
    np.testing.assert_allclose(probabilities, [[0.8, 0.2], [0.1, 0.9]], atol=1e-6)
    np.testing.assert_allclose(familiarity, [0.3, 1.0])  # kept within [0, 1]
    assert model_outputs({"class_probabilities": sigmoid}, 2)[1] is None
    with pytest.raises(ValueError, match="no 'class_probabilities'"):
        model_outputs({"familiarity": sigmoid}, 2)
