"""The registry's majority gate: a model no better than always answering the majority class on
its own test split is registered but never promoted automatically, the first version included,
and `happysad train` says so (in its text and its JSON)."""

import dataclasses
import json

import numpy as np

from tests.helpers.commands import happysad
from tests.helpers.images import encode, solid_rgb
from tests.helpers.records import rows


def test_a_majority_class_model_is_registered_not_promoted(tiny_baseline_training):
    """On the tiny baseline model: the gate reads the metrics, whatever the architecture."""
    from db import queries
    from db.session import session_scope
    from db.settings import get_settings
    from trainer.registry import majority_warning, register

    trained = tiny_baseline_training
    test_labels = trained.data.labels[trained.split.test]
    majority_share = np.bincount(test_labels).max() / len(test_labels)
    constant = dataclasses.replace(trained, metrics=dict(trained.metrics,
                                                         accuracy=float(majority_share)))
    assert "no better than always answering" in majority_warning(constant)
    registration = register(constant, promote="auto", settings=get_settings(),
                            sessions=session_scope)
    assert not registration.promoted and "no better than always answering" in registration.reason
    assert registration.warning
    with session_scope() as session:
        assert queries.get_model_version(session, registration.version) is not None
        assert queries.production_model_version(session) is None  # even as the first version

    better = dataclasses.replace(trained, metrics=dict(trained.metrics,
                                                       accuracy=float(majority_share) + 0.1))
    assert majority_warning(better) is None
    assert register(better, promote="auto", settings=get_settings(),
                    sessions=session_scope).promoted
    forced = register(constant, promote="always", settings=get_settings(),
                      sessions=session_scope)  # by hand it is the user's call, still warned
    assert forced.promoted and forced.warning


def test_train_says_plainly_when_the_model_only_knows_the_majority(tmp_path):
    """Both classes hold the very same image, so any model answers one class for all of them."""
    for class_name in ("happy", "sad"):
        folder = tmp_path / "same" / class_name
        folder.mkdir(parents=True)
        for index in range(10):
            (folder / f"{index}.png").write_bytes(encode(solid_rgb(20, 20, (120, 90, 60))))
    common = [str(tmp_path / "same"), "--architecture", "baseline", "--epochs", "1",
              "--image-size", "32"]
    trained = json.loads(happysad("train", *common, "--json").stdout)
    assert trained["promoted"] is False
    assert "no better than always answering" in trained["warning"]
    assert "no better than always answering" in trained["promotion_reason"]
    text = happysad("train", *common).stdout
    assert "warning: this model is no better than always answering" in " ".join(text.split())
    listed = json.loads(happysad("models", "list", "--json").stdout)
    assert [(m["version"], m["production"]) for m in listed] == [(1, False), (2, False)]


def test_a_second_connection_writes_while_production_is_evaluated(tiny_training,
                                                                  registered_model, monkeypatch):
    """On SQLite (one writer at a time) the registry used to insert the new version's row and
    then evaluate production inside that write transaction: every worker's writes waited for
    the model. Now the evaluation runs with no transaction open."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from db import queries
    from db.session import session_scope
    from db.settings import get_settings
    from trainer import promotion
    from trainer.registry import register

    url = get_settings().effective_database_url
    assert url.startswith("sqlite")
    # A writer that waits one second at most for the lock (a worker waits 30, then fails).
    other = create_engine(url, connect_args={"timeout": 1})
    written = []
    real_evaluation = promotion.evaluate_version_on

    def evaluate_while_another_writes(row, result, cache_folder):
        with Session(other) as session:  # a job and its rows, as a worker would write them
            job_id = queries.create_job(session, "/photos", registered_model, batch_size=1).id
            queries.record_batch(session, job_id, 0, rows(job_id, ["/photos/a.jpg"]), "w")
            session.commit()
        written.append(job_id)
        return real_evaluation(row, result, cache_folder)

    monkeypatch.setattr(promotion, "evaluate_version_on", evaluate_while_another_writes)
    registration = register(tiny_training, promote="auto", settings=get_settings(),
                            sessions=session_scope)
    other.dispose()
    assert written and "vs production v1" in registration.reason
    with session_scope() as session:
        assert queries.job_counts(session, written[0])["classified"] == 1
        assert queries.get_model_version(session, registration.version) is not None


def test_a_version_carries_its_calibration_and_reliability_diagram(tiny_training):
    """The default model's temperature, its test split's calibration error and reliability bins
    and mean familiarity are in the version's metadata, and the diagram among its plots."""
    from pathlib import Path

    from db.session import session_scope
    from db.settings import get_settings
    from trainer.registry import register

    registration = register(tiny_training, promote="never", settings=get_settings(),
                            sessions=session_scope)
    folder = Path(registration.path).parent
    calibration = json.loads((folder / "metadata.json").read_text())["metrics"]["calibration"]
    assert 0 <= calibration["ece"] <= 1 and calibration["temperature"] > 0
    assert 0 <= calibration["mean_familiarity"] <= 1
    assert sum(row["count"] for row in calibration["reliability"]) == len(
        tiny_training.split.test)
    assert (folder / "plots" / "reliability.png").read_bytes().startswith(b"\x89PNG")


def test_a_model_registered_twice_is_converted_once(tiny_baseline_training, monkeypatch):
    """Registering the same trained model again (in another store, or promoted otherwise)
    reuses its OpenVINO conversion: Keras stamps the time of saving into model.keras, and the
    cache keyed on those bytes missed every time, converting again."""
    import dataclasses

    from db import queries
    from db.session import session_scope
    from db.settings import get_settings
    from trainer import registry

    conversions = []
    real_convert = registry._convert
    monkeypatch.setattr(registry, "_convert",
                        lambda result: conversions.append(result) or real_convert(result))
    monkeypatch.setattr(registry, "_CONVERTED", {})
    first = registry.register(tiny_baseline_training, promote="always", settings=get_settings(),
                              sessions=session_scope)
    second = registry.register(dataclasses.replace(tiny_baseline_training), promote="never",
                               settings=get_settings(), sessions=session_scope)
    assert len(conversions) == 1
    with session_scope() as session:
        engines = [queries.get_model_version(session, registration.version).params["engines"]
                   for registration in (first, second)]
    assert engines[0] == engines[1]
