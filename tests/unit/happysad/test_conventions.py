"""Command-line conventions, as a new user meets them: choices listed and checked, JSON that
is what --help says, --version and -h, results filtered, sorted and streamed, time zones, plain
values, which class a score is for, progress without a terminal, file names printed literally.

In-process (happysad.cli.main) on SQLite: no model is trained or loaded here.
"""

import json
import sys

import pytest

from db import queries
from db.session import session_scope
from db.tables import ModelVersion
from happysad.cli import main

MARKUP_NAME = "[bold red]x.jpg"


def run(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `happysad ARGS`."""
    monkeypatch.setattr(sys, "argv", ["happysad", *args])
    try:
        main()
        code = 0
    except SystemExit as exit:
        code = exit.code or 0
    captured = capsys.readouterr()
    return code, captured.out, " ".join(captured.err.replace("│", " ").split())


def squashed(text: str) -> str:
    """Help text without Rich's box and line wrapping, to look for a phrase in it."""
    return "".join(text.replace("│", "").split())


@pytest.fixture
def job() -> int:
    """A done job of six rows: five labelled with distinct confidences, one error, one file
    named with Rich markup."""
    with session_scope() as session:
        session.add(ModelVersion(
            version=1, path="/m/1/model.keras", model_sha256="0" * 64, architecture="baseline",
            class_names=["happy", "sad"], image_size=32, preprocessing_version=1,
            dataset_source="/d", dataset_fingerprint="f" * 64, is_production=True,
            metrics={"accuracy": 0.75, "precision": 0.5, "recall": 1.0, "f1": 0.667,
                     "count": 4, "confusion_matrix": [[2, 1], [0, 1]]},
            params={"epochs": 2, "augment": True}))
        session.flush()
        job_id = queries.create_job(session, "/photos", 1, 6).id
    confidences = [0.9, 0.55, 0.99, 0.7, 0.6]
    rows = [{"job_id": job_id, "uri": f"/photos/{index}.jpg", "label": "sad",
             "confidence": confidence, "probabilities": {"happy": 1 - confidence,
                                                         "sad": confidence},
             "error": None, "model_version": 1, "worker_host": "test"}
            for index, confidence in enumerate(confidences)]
    rows[0]["uri"] = f"/photos/{MARKUP_NAME}"
    rows.append(rows[1] | {"uri": "/photos/broken.jpg", "label": None, "confidence": None,
                           "probabilities": None, "error": "not a recognised image format"})
    with session_scope() as session:
        queries.seal_job(session, job_id, len(rows), 1, 0)
        queries.record_batch(session, job_id, 0, rows, "test")
        queries.finish_job(session, job_id)
        queries.set_report_path(session, job_id, "/reports/1/report.html")
    return job_id


def test_choices_are_listed_and_a_bad_one_is_a_usage_error(monkeypatch, capsys, job):
    code, out, _ = run(monkeypatch, capsys, "results", "-h")
    assert code == 0 and "<table|csv|json|jsonl>" in squashed(out)
    assert all(choice in out for choice in ("listing", "uncertain"))
    code, _, err = run(monkeypatch, capsys, "results", str(job), "--sort", "random")
    assert code == 2 and "Invalid value for '--sort'" in err
    code, _, err = run(monkeypatch, capsys, "results", str(job), "--format", "xml")
    assert code == 2 and "Invalid value for '--format'" in err and "Traceback" not in err
    code, out, _ = run(monkeypatch, capsys, "train", "-h")
    assert code == 0 and "auto|always|never" in squashed(out)


def test_results_are_checked_against_the_job(monkeypatch, capsys, job):
    code, _, err = run(monkeypatch, capsys, "results", str(job), "--label", "angry")
    assert code == 2 and "'angry' is not a class of job" in err and "happy, sad" in err
    for option, value in (("--min-confidence", "1.5"), ("--max-confidence", "-0.1")):
        code, _, err = run(monkeypatch, capsys, "results", str(job), option, value)
        assert code == 2 and f"Invalid value for '{option}'" in err
    code, out, _ = run(monkeypatch, capsys, "results", str(job), "--label", "sad",
                       "--min-confidence", "0.6", "--max-confidence", "0.9", "--format", "json")
    assert code == 0
    assert sorted(row["confidence"] for row in json.loads(out)) == [0.6, 0.7, 0.9]


def test_sorting_pulls_out_the_uncertain_images_page_by_page(monkeypatch, capsys, job):
    code, out, _ = run(monkeypatch, capsys, "results", str(job), "--sort", "uncertain",
                       "--format", "jsonl")
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [row["confidence"] for row in lines] == [0.55, 0.6, 0.7, 0.9, 0.99]
    with session_scope() as session:  # keyset paging across pages of two
        paged = [p.confidence for p in queries.iter_predictions(session, job, page_size=2,
                                                                order="uncertain")]
        assert paged == sorted([0.9, 0.55, 0.99, 0.7, 0.6])
    code, _, err = run(monkeypatch, capsys, "results", str(job), "--sort", "uncertain",
                       "--errors")
    assert code == 2 and "no confidence to sort by" in err


def test_json_lines_stream_one_object_per_row(monkeypatch, capsys, job):
    code, out, _ = run(monkeypatch, capsys, "results", str(job), "--format", "jsonl")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(rows) == 6
    assert {row["error"] for row in rows} == {None, "not a recognised image format"}


def test_list_commands_say_they_print_an_array(monkeypatch, capsys, job):
    for command in (["jobs"], ["models", "list"], ["models", "history"], ["retrain", "list"],
                    ["reviews", "list"]):
        code, out, _ = run(monkeypatch, capsys, *command, "-h")
        assert code == 0 and "JSONarray" in squashed(out)
        code, out, _ = run(monkeypatch, capsys, *command, "--json")
        assert code == 0 and isinstance(json.loads(out), list)
    code, out, _ = run(monkeypatch, capsys, "jobs", "show", str(job), "--json")
    assert isinstance(json.loads(out), dict)


def test_version_and_short_help(monkeypatch, capsys):
    from importlib.metadata import version

    code, out, _ = run(monkeypatch, capsys, "--version")
    assert code == 0 and out.strip() == f"happysad {version('happysad')}"
    code, out, _ = run(monkeypatch, capsys, "-h")
    assert code == 0 and "Usage" in out
    code, out, _ = run(monkeypatch, capsys, "models", "show", "-h")
    assert code == 0 and "Usage" in out


def test_timestamps_carry_their_time_zone_on_sqlite(monkeypatch, capsys, job):
    code, out, _ = run(monkeypatch, capsys, "jobs", "show", str(job), "--json")
    record = json.loads(out)
    assert code == 0
    assert record["submitted_at"].endswith("+00:00") and record["finished_at"].endswith("+00:00")


def test_models_show_prints_plain_values_and_says_which_class(monkeypatch, capsys, job):
    code, out, _ = run(monkeypatch, capsys, "models", "show", "production")
    assert code == 0
    for repr_ in ("None", "True", "False", "['", "{'"):
        assert repr_ not in out
    assert "class_names: happy, sad" in out and "production: yes" in out
    assert "params: epochs=2, augment=yes" in out
    assert "precision 0.500, recall 1.000 (for 'sad')" in out
    assert "true happy: 2 1; true sad: 0 1" in out
    code, out, _ = run(monkeypatch, capsys, "models", "list")
    assert "class" in out and "sad" in out  # the class the precision and recall are for


def test_file_names_with_markup_are_printed_as_named(monkeypatch, capsys, job, tmp_path):
    from happysad import output

    monkeypatch.setattr(output.console, "width", 200)  # the name in one piece, not folded
    code, out, _ = run(monkeypatch, capsys, "results", str(job), "--limit", "1")
    assert code == 0 and MARKUP_NAME in out
    code, _, err = run(monkeypatch, capsys, "submit", str(tmp_path / "[bold]missing"))
    assert code == 1 and "[bold]missing" in err


def test_waiting_without_a_terminal_prints_what_it_waits_for_and_progress(capsys, job):
    from happysad.commands.jobs import wait_for_job

    record = wait_for_job(job)
    err = capsys.readouterr().err
    assert record["status"] == "done"
    lines = err.strip().splitlines()
    assert lines[0] == (f"job {job}: waiting for a worker to start on it (workers load "
                        "TensorFlow and the model first)")
    assert lines[-1].startswith(f"job {job}: 6/6 images done, 1 failed") and "(done)" in lines[-1]
