"""Thin Celery tasks: ids and URIs in, a plain function called, the outcome recorded.

Nothing heavy is imported here at module level: TensorFlow loads in a worker's child process
on its first batch, never in the parent before the fork.
"""

import logging

from sqlalchemy.exc import OperationalError

from db.session import DatabaseUnavailable
from worker.celery_app import app

logger = logging.getLogger(__name__)

_model_cache = None


def model_cache():
    global _model_cache
    if _model_cache is None:
        from worker.classify import ModelCache

        _model_cache = ModelCache()
    return _model_cache


@app.task(name="happysad.classify_batch", bind=True, autoretry_for=(OperationalError,
          DatabaseUnavailable), retry_backoff=2, retry_backoff_max=60, max_retries=8)
def classify_batch(self, job_id: int, batch_index: int, uris: list[str]) -> None:
    from db import queries
    from db.session import session_scope
    from db.settings import get_settings
    from worker import classify

    worker_host = self.request.hostname or classify.default_worker_host()
    with session_scope() as session:  # committed before work starts: a crash still counts
        attempts = queries.count_attempt(session, job_id, batch_index)
    allowed = get_settings().task_max_retries + 1
    if attempts > allowed:
        # A batch that killed its worker on every attempt: give its images error rows and move
        # on, rather than redelivering it forever.
        logger.error("job %s batch %s abandoned after %s attempts", job_id, batch_index, allowed)
        with session_scope() as session:
            version = queries.get_job(session, job_id).model_version
        rows = classify.error_rows(job_id, version, uris,
                                   f"batch abandoned: its worker died on all {allowed} attempts",
                                   worker_host)
        finished = classify.write_batch(job_id, batch_index, rows, worker_host)
    else:
        finished = classify.classify_batch(job_id, batch_index, uris, model_cache(), worker_host)
    if finished:
        complete_job(job_id)


@app.task(name="happysad.finish_job", bind=True, autoretry_for=(OperationalError,
          DatabaseUnavailable), retry_backoff=2, max_retries=8)
def finish_job(self, job_id: int) -> None:
    """Used when the submitter sees the job complete (every batch done before it sealed it)."""
    complete_job(job_id)


def complete_job(job_id: int) -> None:
    from db import queries
    from db.session import session_scope
    from worker.report import build_report

    with session_scope() as session:
        if not queries.finish_job(session, job_id):
            return
    try:
        path = build_report(job_id)
    except Exception:  # the job's rows are safe; `happysad report JOB` can rebuild
        logger.exception("job %s: report could not be built", job_id)
        return
    with session_scope() as session:
        queries.set_report_path(session, job_id, path)


@app.task(name="happysad.retrain", bind=True)
def retrain(self, slot: str | None = None, force: bool = False) -> None:
    """The nightly retrain (slot None: the cron slot due now) or a forced one (`happysad retrain`).

    Runs on the `training` queue; the slot's row in SQL makes a duplicate delivery a no-op.
    """
    from trainer.retrain import run_retrain

    run_retrain(slot=slot, force=force)
