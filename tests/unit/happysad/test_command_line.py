"""The command line as a newcomer meets it: tables that fit 80 columns with whole headers,
the prediction id in every `results` format, a quiet end when the reader of a pipe goes,
"not a folder" for a file, help without `<bool>` after flags, honest rates and status lines."""

import csv
import io
import json
import os
import subprocess
import sys

import pytest

from tests.helpers.commands import assert_one_line_error, happysad
from tests.helpers.records import make_job

pytestmark = pytest.mark.slow
LONG = "/home/someone/Pictures/a-rather-long-folder-name/another-level"


def narrow() -> dict:
    return dict(os.environ, COLUMNS="80")


def assert_fits(printed: str, *headers: str) -> None:
    lines = printed.splitlines()
    assert all(len(line) <= 80 for line in lines), printed
    header = next(line for line in lines if headers[0] in line.split())
    assert header.split() == list(headers), printed  # every header whole, on one line


def test_tables_fit_80_columns_and_show_the_prediction_id(registered_model):
    job_id, ids = make_job(["happy", "sad"], [("a-long-file-name-of-a-photo.jpg",
                                               {"happy": 0.8, "sad": 0.2}), ("b.jpg", None)],
                           source=LONG, version=registered_model)
    results = happysad("results", str(job_id), env=narrow()).stdout
    assert_fits(results, "id", "uri", "label", "confidence", "probabilities", "error",
                "reviewed_label")  # no familiarity column: these rows have none
    assert str(ids["b.jpg"]) in results.split()
    assert_fits(happysad("models", "list", env=narrow()).stdout, "version", "created",
                "architecture", "size", "accuracy", "precision", "recall", "class")
    assert_fits(happysad("jobs", env=narrow()).stdout, "job", "status", "model", "done", "failed",
                "total", "submitted", "report")
    shown = happysad("jobs", "show", str(job_id), env=narrow()).stdout
    assert all(len(line) <= 80 for line in shown.splitlines())
    assert f"job {job_id} (done, 1 of 2 images failed)" in shown  # not a plain "done"
    assert "non-image files skipped" in shown  # a key column keeps its words on one line
    rows = json.loads(happysad("results", str(job_id), "--format", "json").stdout)
    assert [row["id"] for row in rows] == [ids["a-long-file-name-of-a-photo.jpg"], ids["b.jpg"]]
    table = csv.DictReader(io.StringIO(happysad("results", str(job_id), "--format", "csv").stdout))
    assert [int(row["id"]) for row in table] == [row["id"] for row in rows]
    lines = happysad("results", str(job_id), "--format", "jsonl").stdout.splitlines()
    assert [json.loads(line)["id"] for line in lines] == [row["id"] for row in rows]


def test_a_closed_pipe_ends_quietly_with_0(isolated_env):
    job_id, _ids = make_job(["happy", "sad"], [(f"{i:05d}.jpg", {"happy": 0.6, "sad": 0.4})
                                               for i in range(4000)])  # > a pipe's buffer
    reader = subprocess.Popen([sys.executable, "-m", "happysad.cli", "results", str(job_id),
                               "--format", "jsonl"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    assert json.loads(reader.stdout.readline())["uri"].endswith("00000.jpg")
    reader.stdout.close()  # what `| head -1` does once it has its line
    code, err = reader.wait(timeout=120), reader.stderr.read()
    reader.stderr.close()
    assert (code, err) == (0, b"")


def test_a_file_is_not_a_folder_and_help_has_no_bool(tmp_path):
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8\xff")
    assert_one_line_error(happysad("submit", str(photo), check=False),
                          f"not a folder: {photo}")
    assert photo.read_bytes() == b"\xff\xd8\xff"
    helped = happysad("submit", "--help", env=dict(os.environ, COLUMNS="120")).stdout
    assert "--wait" in helped and "<int>" in helped and "<bool>" not in helped


def test_the_rate_waits_for_a_second_batch_of_rows():
    from happysad.progress import JobProgress

    progress = JobProgress(1, enabled=False)
    assert progress.rate(0, 10.0) == ""
    assert progress.rate(64, 20.0) == ""  # one batch written: no rate yet, never "0.0 img/s"
    assert progress.rate(64, 21.0) == ""
    assert progress.rate(128, 22.0) == "32.0 img/s"
