"""Training on corrections: reviewed images join the training split only (never the held-out
images, which stay HAPPYSAD_TRAIN_DATA's), the fingerprint includes them so a new review
triggers a retrain and none does not, and `happysad reviews export` writes copies."""

import hashlib
import json

import numpy as np
import pytest

from db import queries

from db.queries import reviews
from db.session import session_scope
from db.settings import reset_settings
from tests.helpers.commands import happysad
from tests.helpers.records import make_job
from trainer.corrections import Correction, read_corrections, training_fingerprint
from trainer.dataset import load_labelled_images, source_fingerprint, stratified_split
from trainer.sample_data import write_sample_dataset
from trainer.train import TrainingParams, train

PARAMS = TrainingParams(epochs=1, image_size=32, batch_size=16)


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_reviewed_images_join_training_only_and_the_held_out_images_stay(sample_folder,
                                                                         tmp_path):
    incoming = tmp_path / "incoming"
    write_sample_dataset(incoming, per_class=3, image_size=48, seed=9, labelled=False)
    plain = load_labelled_images(str(sample_folder), 32)
    held_out = stratified_split(plain.labels, PARAMS.seed)
    test_uri = plain.uris[held_out.test[0]]  # a held-out image, also reviewed in some job
    new = sorted(incoming.glob("*.jpg"))
    corrections = [
        Correction(str(incoming), str(new[0]), "sad", new[0].read_bytes()),
        Correction(str(incoming), str(new[1]), "happy", new[1].read_bytes()),
        Correction(str(sample_folder), test_uri, "happy", open(test_uri, "rb").read()),
        Correction(str(incoming), str(new[2]), "angry", new[2].read_bytes()),
    ]
    result = train(str(sample_folder), PARAMS, corrections=corrections)
    uris = result.data.uris
    trained = {uris[i] for i in result.split.train}
    evaluated = {uris[i] for i in np.concatenate([result.split.test, result.split.validation])}
    assert {str(new[0]), str(new[1])} <= trained and not trained & evaluated
    assert sorted(uris[i] for i in result.split.reviewed) == sorted([str(new[0]), str(new[1])])
    assert [uris[i] for i in result.split.test] == [plain.uris[i] for i in held_out.test]
    assert [uris[i] for i in result.split.validation] == [plain.uris[i]
                                                          for i in held_out.validation]
    assert result.data.labels[uris.index(str(new[0]))] == result.data.class_names.index("sad")
    assert uris.count(test_uri) == 1  # the held-out copy only: not added as training
    record = result.params_record()
    assert record["reviewed_images"] == 2
    assert record["train_images"] == len(held_out.train) + 2
    reasons = {item["uri"]: item["reason"] for item in result.data.skipped}
    assert "already in HAPPYSAD_TRAIN_DATA" in reasons[test_uri]
    assert "'angry' is not a class" in reasons[str(new[2])]
    assert result.data.fingerprint == training_fingerprint(plain.fingerprint, corrections)
    assert result.data.fingerprint != plain.fingerprint
    assert training_fingerprint(plain.fingerprint, []) == plain.fingerprint
    # Familiar stays "like the training folder": its statistics leave the reviewed images out.
    from trainer.inputs import IMAGE_INPUT
    from trainer.model import STYLE_LAYER
    from trainer.transfer import layer_runner

    style = layer_runner(result.model, [IMAGE_INPUT], STYLE_LAYER)(result.data.images)
    folder = np.setdiff1d(result.split.train, result.split.reviewed)
    mean = result.model.get_layer("style_standardisation").get_weights()[0]
    np.testing.assert_allclose(mean, style[folder].mean(axis=0), rtol=1e-4, atol=1e-4)
    assert not np.allclose(mean, style[result.split.train].mean(axis=0), rtol=1e-4, atol=1e-4)


def test_the_latest_verdict_on_an_image_wins_and_a_lost_file_is_left_out(tmp_path):
    class Reviewed:
        def __init__(self, uri, label):
            self.source, self.uri, self.label = str(tmp_path), str(uri), label

    (tmp_path / "a.jpg").write_bytes(b"same bytes")
    (tmp_path / "copy-of-a.jpg").write_bytes(b"same bytes")
    corrections, skipped = read_corrections([Reviewed(tmp_path / "a.jpg", "sad"),
                                             Reviewed(tmp_path / "gone.jpg", "sad"),
                                             Reviewed(tmp_path / "copy-of-a.jpg", "happy")])
    assert [(c.uri.rsplit("/", 1)[-1], c.label) for c in corrections] == [("copy-of-a.jpg",
                                                                           "happy")]
    assert [s["uri"].rsplit("/", 1)[-1] for s in skipped] == ["gone.jpg"]


def review_files(folder, verdicts: dict[str, str], version: int | None = None) -> int:
    """A finished job over `folder`'s files, with these names reviewed; the job id."""
    names = sorted(path.name for path in folder.glob("*.jpg"))
    job_id, ids = make_job(["happy", "sad"],
                           [(name, {"happy": 0.6, "sad": 0.4}) for name in names],
                           source=str(folder), version=version)
    with session_scope() as session:
        for name, label in verdicts.items():
            reviews.review_prediction(session, ids[name], label, "ann")
    return job_id


def test_a_new_review_triggers_the_retrain_and_none_does_not(sample_folder, tmp_path,
                                                            registered_baseline_model,
                                                            monkeypatch):
    """On the tutorial's CNN: what triggers a retrain is the same for every recipe."""
    from db.settings import get_settings
    from worker.retrain import run_retrain as run_retrain_with

    monkeypatch.setenv("HAPPYSAD_TRAIN_DATA", str(sample_folder))
    reset_settings()

    def run_retrain(slot: str):  # as its task runs it
        return run_retrain_with(slot=slot, settings=get_settings(), sessions=session_scope)

    assert run_retrain(slot="before").status == "skipped"  # no review: the data is unchanged
    incoming = tmp_path / "incoming"
    write_sample_dataset(incoming, per_class=2, image_size=48, seed=4, labelled=False)
    job_id = review_files(incoming, {"happy_4_00000.jpg": "sad", "sad_4_00001.jpg": "sad"},
                          version=registered_baseline_model)
    run = run_retrain(slot="after")
    assert run.status == "done", run.reason
    assert run.dataset_fingerprint != source_fingerprint(str(sample_folder))
    with session_scope() as session:
        version = queries.get_model_version(session, run.model_version)
        assert version.params["reviewed_images"] == 2
        assert version.dataset_fingerprint == run.dataset_fingerprint
    again = run_retrain(slot="again")
    assert again.status == "skipped" and "unchanged" in again.reason
    with session_scope() as session:  # a changed verdict is new training data
        prediction = next(p for p in queries.iter_predictions(session, job_id)
                          if p.uri.endswith("sad_4_00001.jpg"))
        reviews.review_prediction(session, prediction.id, "happy", "bob")
    assert run_retrain(slot="changed").status == "done"


def test_export_writes_copies_per_class_and_refuses_a_used_folder(database, tmp_path):
    incoming = tmp_path / "incoming"
    write_sample_dataset(incoming, per_class=2, image_size=32, seed=3, labelled=False)
    before = {path.name: (digest(path), path.stat().st_mtime_ns) for path in incoming.iterdir()}
    assert "no reviewed images" in happysad("reviews", "export", str(tmp_path / "out"),
                                            check=False).stderr
    review_files(incoming, {"happy_3_00000.jpg": "sad", "happy_3_00001.jpg": "happy",
                            "sad_3_00000.jpg": "sad"})
    out = tmp_path / "out"
    summary = json.loads(happysad("reviews", "export", str(out), "--json").stdout)
    assert summary["images"] == 3 and summary["per_class"] == {"happy": 1, "sad": 2}
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.jpg")) == [
        "happy/happy_3_00001.jpg", "sad/happy_3_00000.jpg", "sad/sad_3_00000.jpg"]
    assert digest(out / "sad" / "happy_3_00000.jpg") == before["happy_3_00000.jpg"][0]
    after = {path.name: (digest(path), path.stat().st_mtime_ns) for path in incoming.iterdir()}
    assert after == before  # the user's files are neither moved nor changed
    for dest, message in ((out, "is not empty"), (incoming / "happy_3_00000.jpg", "is a file")):
        refused = happysad("reviews", "export", str(dest), check=False)
        assert refused.returncode == 1 and message in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr
    (tmp_path / "empty").mkdir()
    happysad("reviews", "export", str(tmp_path / "empty"))
    assert len(list((tmp_path / "empty").rglob("*.jpg"))) == 3


@pytest.mark.parametrize("name", ["a.jpg"])
def test_two_images_with_one_name_are_both_exported(tmp_path, name):
    from trainer.corrections import export_corrections

    first = Correction("/x", f"/x/one/{name}", "sad", b"first")
    second = Correction("/x", f"/x/two/{name}", "sad", b"second")
    export_corrections([first, second], tmp_path / "out")
    assert sorted(p.read_bytes() for p in (tmp_path / "out" / "sad").iterdir()) == [b"first",
                                                                                   b"second"]
