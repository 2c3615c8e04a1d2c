"""Batch labelling end to end with real worker processes: Redis + PostgreSQL with two workers
sharing one job (the default model and engine choice, as a user gets them), and the embedded
queue with zero servers (the tiny baseline model: these are about the queue)."""

import json
import os
from pathlib import Path

import pytest

from db import queries
from db.session import session_scope
from tests.helpers.commands import happysad
from tests.helpers.jobs import submit, wait_for_job_done
from trainer.sample_data import write_sample_dataset

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def incoming_folder(tmp_path: Path, per_class: int = 20) -> Path:
    folder = tmp_path / "incoming"
    write_sample_dataset(folder, per_class=per_class, image_size=64, seed=7, labelled=False)
    (folder / "broken.jpg").write_text("this is not a jpeg")  # an error row, not a lost image
    return folder


def test_two_workers_share_a_job_on_redis_and_postgres(tmp_path, postgres, redis_url,
                                                       registered_model, start_worker,
                                                       monkeypatch):
    monkeypatch.setenv("HAPPYSAD_ENGINE", "auto")  # the default, end to end (tests pick one)
    folder = incoming_folder(tmp_path)
    first = start_worker("one")
    second = start_worker("two")
    first.wait_ready()
    second.wait_ready()
    submission = submit(str(folder), batch_size=3)
    assert submission.total_images == 41 and submission.skipped_files == 1  # the notice .txt
    job = wait_for_job_done(submission.job_id)
    assert job["classified"] == 40 and job["failed"] == 1
    with session_scope() as session:
        predictions = list(queries.iter_predictions(session, submission.job_id))
    uris = [p.uri for p in predictions]
    assert len(uris) == len(set(uris)) == 41  # every image exactly once
    assert {p.worker_host.split("@")[0] for p in predictions} == {"one", "two"}
    broken = next(p for p in predictions if p.uri.endswith("broken.jpg"))
    assert broken.label is None and "not a recognised image" in broken.error
    good = next(p for p in predictions if p.label)
    assert set(good.probabilities) == {"happy", "sad"}
    assert abs(sum(good.probabilities.values()) - 1) < 1e-6
    assert good.model_version == registered_model
    report = Path(wait_for_report(submission.job_id))
    assert report.name == "report.html"
    for plot in ("labels.png", "probabilities.png", "contact_sheet.png"):
        assert (report.parent / plot).stat().st_size > 1000

    results = json.loads(happysad("results", str(submission.job_id), "--format", "json").stdout)
    assert len(results) == 41
    assert {"uri", "label", "probabilities", "error", "model_version"} <= set(results[0])
    errors = json.loads(happysad("results", str(submission.job_id), "--errors", "--format",
                                 "json").stdout)
    assert [r["uri"] for r in errors] == [broken.uri]
    csv_lines = happysad("results", str(submission.job_id), "--format", "csv", "--limit",
                         "5").stdout.strip().splitlines()
    assert len(csv_lines) == 6 and csv_lines[0].endswith("p_happy,p_sad")
    errors_csv = happysad("results", str(submission.job_id), "--errors", "--format",
                          "csv").stdout.strip().splitlines()
    assert errors_csv[0].endswith("p_happy,p_sad") and len(errors_csv) == 2  # header though no p
    shown = json.loads(happysad("jobs", "show", str(submission.job_id), "--json").stdout)
    assert shown["status"] == "done" and shown["classified"] == 40


def wait_for_report(job_id: int, timeout: float = 60) -> str:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope() as session:
            path = queries.get_job(session, job_id).report_path
        if path:
            return path
        time.sleep(0.3)
    raise AssertionError("no report")


def test_embedded_submit_wait_starts_local_workers(tmp_path, registered_baseline_model):
    folder = incoming_folder(tmp_path, per_class=6)
    result = happysad("submit", str(folder), "--wait", "--json", "--batch-size", "4")
    record = json.loads(result.stdout)
    assert record["status"] == "done" and record["total"] == 13
    assert record["classified"] == 12 and record["failed"] == 1
    assert record["model_version"] == registered_baseline_model
    assert record["report"] and os.path.exists(record["report"])
    assert "starting" in result.stderr  # it said it started local workers


def test_embedded_queue_is_shared_by_two_worker_commands(tmp_path, registered_baseline_model,
                                                         start_worker):
    folder = incoming_folder(tmp_path, per_class=10)
    workers = [start_worker("a"), start_worker("b")]
    for worker in workers:
        worker.wait_ready()
    submission = submit(str(folder), batch_size=2)
    wait_for_job_done(submission.job_id)
    with session_scope() as session:
        predictions = list(queries.iter_predictions(session, submission.job_id))
    assert len({p.uri for p in predictions}) == len(predictions) == 21
    assert {p.worker_host.split("@")[0] for p in predictions} == {"a", "b"}
