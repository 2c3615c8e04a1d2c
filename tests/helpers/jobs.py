"""A job's rows as the tests check them: every image exactly once, batches and attempts."""

import time

from sqlalchemy import select

from db import queries
from db.session import session_scope
from db.tables import BatchAttempt, JobBatch


def wait_for_job_done(job_id: int, timeout: float = 300, status: str = "done") -> dict:
    """Poll SQL until the job is done (or ends with `status`); returns its row as a dict."""
    from db import queries
    from db.session import session_scope

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope() as session:
            job = queries.get_job(session, job_id)
            if job.status == status:
                return {"status": job.status, "reason": job.status_reason,
                        "total": job.total_images,
                        "report": job.report_path, **queries.job_counts(session, job_id)}
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} not {status} within {timeout}s")


def job_rows(job_id: int) -> dict:
    """The job's rows by URI, after checking that no URI has two."""
    with session_scope() as session:
        rows = list(queries.iter_predictions(session, job_id))
    by_uri = {row.uri: row for row in rows}
    assert len(by_uri) == len(rows), "an image has two rows"
    return by_uri


def assert_each_image_once(job_id: int, uris: list[str], timeout: float = 300,
                           status: str = "done") -> dict:
    """Wait for the job to end (`status`: "failed" where every image fails); every image must
    have exactly one row, none missing."""
    job = wait_for_job_done(job_id, timeout, status)
    rows = job_rows(job_id)
    assert sorted(rows) == sorted(uris)
    assert job["total"] == len(uris) == job["classified"] + job["failed"]
    return rows


def batch_attempts(job_id: int) -> dict[int, int]:
    with session_scope() as session:
        return dict(session.execute(select(BatchAttempt.batch_index, BatchAttempt.attempts)
                                    .where(BatchAttempt.job_id == job_id)).all())


def batches_written(job_id: int) -> dict[int, str]:
    """Batch index -> the worker that wrote it (the outbox also holds batches not written)."""
    with session_scope() as session:
        return dict(session.execute(select(JobBatch.batch_index, JobBatch.worker_host)
                                    .where(JobBatch.job_id == job_id,
                                           JobBatch.finished_at.is_not(None))).all())


def in_flight_batches(job_id: int) -> set[int]:
    """Batches a worker has started (the attempt is committed first) but not yet written."""
    return set(batch_attempts(job_id)) - set(batches_written(job_id))


def submit(source: str, model_version: int | None = None, batch_size: int | None = None):
    """scheduler.submit.submit_source as `happysad submit` calls it: with the settings in force
    now (tests change them) and the process's transactions."""
    from db.settings import get_settings
    from scheduler.submit import submit_source

    return submit_source(source, model_version, batch_size, settings=get_settings(),
                         sessions=session_scope)
