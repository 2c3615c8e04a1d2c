"""The registry's majority gate: a model no better than always answering the majority class on
its own test split is registered but never promoted automatically, the first version included,
and `happysad train` says so (in its text and its JSON)."""

import dataclasses
import json

import numpy as np

from tests.helpers.commands import happysad
from tests.helpers.images import encode, solid_rgb


def test_a_majority_class_model_is_registered_not_promoted(tiny_training):
    from db import queries
    from db.session import session_scope
    from trainer.registry import majority_warning, register

    test_labels = tiny_training.data.labels[tiny_training.split.test]
    majority_share = np.bincount(test_labels).max() / len(test_labels)
    constant = dataclasses.replace(tiny_training, metrics=dict(tiny_training.metrics,
                                                               accuracy=float(majority_share)))
    assert "no better than always answering" in majority_warning(constant)
    registration = register(constant, promote="auto")
    assert not registration.promoted and "no better than always answering" in registration.reason
    assert registration.warning
    with session_scope() as session:
        assert queries.get_model_version(session, registration.version) is not None
        assert queries.production_model_version(session) is None  # even as the first version

    better = dataclasses.replace(tiny_training, metrics=dict(tiny_training.metrics,
                                                             accuracy=float(majority_share) + 0.1))
    assert majority_warning(better) is None
    assert register(better, promote="auto").promoted
    forced = register(constant, promote="always")  # by hand it is the user's call, still warned
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
