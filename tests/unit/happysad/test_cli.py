"""The `happysad` command as a user runs it: JSON contracts and one-line errors."""

import json
import os

import pytest

from tests.helpers.commands import (TENSORFLOW_STARTUP_LINES, assert_one_line_error,
                                    happysad)

pytestmark = pytest.mark.slow


def assert_usage_error(result, *fragments: str) -> None:
    """Click's usage error: exit status 2, the option named, no traceback."""
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    for fragment in fragments:
        assert fragment in " ".join(result.stderr.replace("│", " ").split()), result.stderr


def test_train_models_and_promotion_commands(sample_folder):
    # 30 head epochs (about a second): one leaves the head at chance, and a model no better
    # than the majority class is not promoted, the first version included.
    result = happysad("train", str(sample_folder), "--epochs", "30", "--image-size", "32",
                      "--json")
    trained = json.loads(result.stdout)
    assert trained["version"] == 1 and trained["promoted"] is True
    assert {"accuracy", "precision", "recall"} <= set(trained["metrics"])
    assert os.path.exists(trained["path"])
    for line in TENSORFLOW_STARTUP_LINES + ("retracing",):  # TensorFlow's start-up stays quiet
        assert line not in result.stderr, result.stderr
    # the second version only has to exist: the tutorial's CNN trains in a fraction of the time
    happysad("train", str(sample_folder), "--architecture", "baseline", "--epochs", "1",
             "--image-size", "32", "--promote", "never")
    listed = json.loads(happysad("models", "list", "--json").stdout)
    assert [(m["version"], m["production"]) for m in listed] == [(1, True), (2, False)]
    assert json.loads(happysad("models", "show", "production", "--json").stdout)["version"] == 1
    happysad("models", "promote", "2")
    happysad("models", "promote", "1", "--reason", "rollback test")
    history = json.loads(happysad("models", "history", "--json").stdout)
    assert [(h["version"], h["kind"]) for h in history] == [(1, "auto"), (2, "manual"),
                                                             (1, "rollback")]
    assert history[-1]["reason"] == "rollback test"


def test_user_mistakes_get_one_line_errors(tmp_path, sample_folder):
    assert_one_line_error(happysad("train", str(tmp_path / "nope"), check=False), "not found")
    (tmp_path / "one" / "happy").mkdir(parents=True)
    assert_one_line_error(happysad("train", str(tmp_path / "one"), check=False), "two class")
    assert_usage_error(happysad("train", str(sample_folder), "--architecture", "huge",
                                check=False), "--architecture", "'huge' is not one of",
                       "'baseline'", "'improved'")
    assert_one_line_error(happysad("submit", str(sample_folder), check=False),
                          "no production model")
    assert_one_line_error(happysad("submit", str(sample_folder), "--model", "7", check=False),
                          "model version 7 does not exist")
    assert_one_line_error(happysad("jobs", "show", "12", check=False), "job 12 does not exist")
    assert_one_line_error(happysad("models", "show", "production", check=False),
                          "no production model")
    env = dict(os.environ, HAPPYSAD_DATABASE_URL="postgresql://u:hunter2@127.0.0.1:1/x")
    result = happysad("models", "list", env=env, check=False)
    assert_one_line_error(result, "cannot reach the database")
    assert "hunter2" not in result.stderr
    env = dict(os.environ, HAPPYSAD_BATCH_SIZE="lots")
    assert_one_line_error(happysad("jobs", env=env, check=False),
                          "invalid HAPPYSAD_BATCH_SIZE='lots'")


def test_sample_data_says_it_is_synthetic(tmp_path):
    result = happysad("sample-data", str(tmp_path / "d"), "--per-class", "3", "--image-size", "32")
    assert "SYNTHETIC" in result.stdout
    assert len(list((tmp_path / "d" / "happy").glob("*.jpg"))) == 3
    assert "SYNTHETIC" in (tmp_path / "d" / "SYNTHETIC_DATA.txt").read_text()
