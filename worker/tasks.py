"""Thin Celery tasks: ids and URIs in, a plain function called, the outcome recorded.

Shared tasks: they import no app, so the app that loads them (scheduler.worker_app, by name)
may sit above this package. Nothing heavy is imported here at module level: TensorFlow loads
in a worker's child process on its first batch, never in the parent before the fork.
"""

import logging

from celery import shared_task
from sqlalchemy.exc import OperationalError

from db.session import DatabaseUnavailable
from db.tables import JOB_ACTIVE, JOB_DONE
from worker.task_names import CLASSIFY_BATCH_TASK, FINISH_JOB_TASK, RETRAIN_TASK

logger = logging.getLogger(__name__)

_model_cache = None


def model_cache():
    """The process's models and decode threads, made on its first batch with its settings."""
    global _model_cache
    if _model_cache is None:
        from db.settings import get_settings
        from worker.classify import ModelCache

        _model_cache = ModelCache(get_settings())
    return _model_cache


# The database away: tried again at most DATABASE_RETRY_MAX seconds apart (jittered), so a
# batch goes on within seconds of its return, for a few minutes of retries; after that the
# reconciler sends the batch again.
DATABASE_RETRY_MAX = 10


@shared_task(name=CLASSIFY_BATCH_TASK, bind=True, autoretry_for=(OperationalError,
             DatabaseUnavailable), retry_backoff=2, retry_backoff_max=DATABASE_RETRY_MAX,
             max_retries=30)
def classify_batch(self, job_id: int, batch_index: int, uris: list[str]) -> None:
    from db import queries
    from db.queries import outbox
    from db.session import session_scope
    from db.settings import get_settings
    from worker import classify
    from worker.identity import worker_identity

    worker_host = worker_identity(self.request.hostname)
    with session_scope() as session:  # committed before work starts: a crash still counts
        status, written = outbox.batch_state(session, job_id, batch_index)
        if status in JOB_ACTIVE and not written:
            attempts = queries.count_attempt(session, job_id, batch_index, worker_host)
    if status not in JOB_ACTIVE:
        logger.info("job %s is %s: batch %s skipped", job_id, status, batch_index)
        return
    if written:  # a copy sent again by the reconciler, or a redelivery: nothing to redo
        with session_scope() as session:
            if queries.all_batches_done(session, job_id):
                complete_job(job_id)
        return
    allowed = get_settings().task_max_retries + 1
    if attempts > allowed:
        # A batch that killed its worker on every attempt: give its images error rows and move
        # on, rather than redelivering it forever.
        logger.error("job %s batch %s abandoned after %s attempts", job_id, batch_index, allowed)
        finished = record_batch_error(job_id, batch_index, uris, worker_host,
                                      f"batch abandoned: its worker died on all {allowed} attempts")
    else:
        try:
            finished = classify.classify_batch(job_id, batch_index, uris, model_cache(),
                                               session_scope, worker_host)
        except (OperationalError, DatabaseUnavailable):
            raise  # the database is away: retried with backoff (autoretry_for)
        except Exception as error:
            # Anything else (a bucket briefly away, a model file that fails its hash, an
            # unexpected decoder error): try again later while attempts remain; then record why
            # for each image, since a failed task would be acknowledged and the batch lost.
            if attempts < allowed:
                logger.warning("job %s batch %s attempt %s failed: %s; retrying", job_id,
                               batch_index, attempts, error)
                raise self.retry(exc=error, countdown=2 ** attempts, max_retries=None)
            logger.exception("job %s batch %s failed", job_id, batch_index)
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
            finished = record_batch_error(job_id, batch_index, uris, worker_host,
                                          f"batch failed: {reason}")
    if finished is None:
        # A redelivery of a batch already written (its worker died before acknowledging, or
        # before finishing the job): the job may still need finishing.
        with session_scope() as session:
            finished = queries.all_batches_done(session, job_id)
    if finished:
        complete_job(job_id)


def record_batch_error(job_id: int, batch_index: int, uris: list[str], worker_host: str,
                       error: str) -> bool | None:
    from db import queries
    from db.session import session_scope
    from worker import classify

    with session_scope() as session:
        version = queries.get_job(session, job_id).model_version
    rows = classify.error_rows(job_id, version, uris, error, worker_host)
    return classify.write_batch(session_scope, job_id, batch_index, rows, worker_host)


@shared_task(name=FINISH_JOB_TASK, bind=True, autoretry_for=(OperationalError,
          DatabaseUnavailable), retry_backoff=2, max_retries=8)
def finish_job(self, job_id: int) -> None:
    """Used when the submitter sees the job complete (every batch done before it sealed it)."""
    complete_job(job_id)


def complete_job(job_id: int) -> None:
    from db import queries
    from db.session import session_scope
    from db.settings import get_settings
    from worker.report import build_report

    with session_scope() as session:
        if queries.finish_job(session, job_id) != JOB_DONE:
            return  # already ended elsewhere, or failed: no result to plot (status_reason says why)
    try:
        path = build_report(job_id, settings=get_settings(), sessions=session_scope)
    except Exception:  # the job's rows are safe; `happysad report JOB` can rebuild
        logger.exception("job %s: report could not be built", job_id)
        return
    with session_scope() as session:
        queries.set_report_path(session, job_id, path)


@shared_task(name=RETRAIN_TASK, bind=True, autoretry_for=(OperationalError,
          DatabaseUnavailable), retry_backoff=10, retry_backoff_max=300, max_retries=5)
def retrain(self, slot: str | None = None, force: bool = False) -> None:
    """The scheduled retrain (beat names its slot) or a forced one (`happysad retrain`).

    Runs on the `training` queue; the slot's row in SQL makes a duplicate delivery (a second
    beat, a redelivery after a crash, a retry) a no-op, and a lock keeps runs one at a time.
    """
    from db.session import session_scope
    from db.settings import get_settings
    from worker.retrain import run_retrain

    run_retrain(slot=slot, force=force, settings=get_settings(), sessions=session_scope)
