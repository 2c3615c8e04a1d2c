"""Cancelling a job with real worker processes on Redis + PostgreSQL: the workers skip its
remaining batches, the rows written so far stay, the job is finished and its progress stops."""

import time

import pytest
import redis
from sqlalchemy import func, select

from db import queries
from db.session import session_scope
from db.tables import JOB_CANCELLED, Prediction
from tests.helpers.commands import happysad
from tests.helpers.jobs import submit
from trainer.sample_data import write_sample_dataset

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def rows_written(job_id: int) -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).where(Prediction.job_id == job_id))


def wait_until(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} within {timeout:.0f}s")


def queue_drained(redis_url: str) -> bool:
    """Every message taken and acknowledged: nothing waiting, nothing held by a worker."""
    client = redis.Redis.from_url(redis_url)
    return client.llen("labelling") == 0 and client.hlen("unacked") == 0


def test_workers_skip_a_cancelled_jobs_remaining_batches(tmp_path, postgres, redis_url,
                                                        registered_baseline_model, start_worker):
    folder = tmp_path / "incoming"
    write_sample_dataset(folder, per_class=150, image_size=32, seed=3, labelled=False)
    submission = submit(str(folder), batch_size=1)  # queued before any worker runs
    assert submission.batches == 300
    worker = start_worker("canceller")
    worker.wait_ready()
    wait_until(lambda: rows_written(submission.job_id) >= 3, 300, "a first few batches")
    with session_scope() as session:
        job = queries.cancel_job(session, submission.job_id, "test", "enough of these")
    assert job.status == JOB_CANCELLED and job.cancelled_at and job.finished_at

    wait_until(lambda: queue_drained(redis_url), 300, "the cancelled job's messages consumed")
    kept = rows_written(submission.job_id)
    assert 3 <= kept < 300  # the rows so far stay; the rest were skipped, not classified
    time.sleep(2)
    assert rows_written(submission.job_id) == kept  # progress has stopped
    with session_scope() as session:
        job = queries.get_job(session, submission.job_id)
        assert job.status == JOB_CANCELLED  # never turned into "done" by a late batch
        assert (job.cancelled_by, job.cancel_reason) == ("test", "enough of these")
        assert job.batches_done == kept < job.batches_total
        assert not queries.finish_job(session, submission.job_id)  # a finished job stays so


def test_cli_cancels_once_then_says_why_not(tmp_path, postgres, redis_url,
                                           registered_baseline_model):
    folder = tmp_path / "incoming"
    write_sample_dataset(folder, per_class=3, image_size=32, seed=4, labelled=False)
    submission = submit(str(folder), batch_size=2)  # no worker: it stays running

    out = happysad("jobs", "cancel", str(submission.job_id), "--reason", "wrong folder")
    assert f"job {submission.job_id} cancelled" in out.stdout
    shown = happysad("jobs", "show", str(submission.job_id), "--json").stdout
    assert '"status": "cancelled"' in shown and '"cancel_reason": "wrong folder"' in shown
    assert '"cancelled_by": "cli:' in shown

    again = happysad("jobs", "cancel", str(submission.job_id), check=False)
    assert again.returncode == 1
    assert again.stderr.strip() == (f"error: job {submission.job_id} is already cancelled: "
                                    "nothing to cancel")
    missing = happysad("jobs", "cancel", "999999", check=False)
    assert missing.returncode == 1 and "job 999999 does not exist" in missing.stderr
    assert "Traceback" not in again.stderr + missing.stderr
