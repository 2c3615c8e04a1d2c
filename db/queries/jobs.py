"""Jobs and their batches: created, sealed, written idempotently, counted, finished, cancelled."""

from collections.abc import Sequence

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from db.errors import InvalidInput, NotFound
from db.queries.dialect import dialect_insert
from db.tables import JOB_CANCELLED, JOB_DONE, JOB_FAILED, JOB_FINISHED, JOB_RUNNING, JOB_SCANNING
from db.tables import BatchAttempt, Job, JobBatch, Prediction, utc_now


class JobFinished(InvalidInput):
    """A change asked of a job that has already ended (done or cancelled)."""


def storable_text(text: str | None) -> str | None:
    """Text the database can hold: a file name that is not UTF-8 comes from the file system with
    lone surrogates (PEP 383), which neither driver can encode; its bytes are shown as \\xNN."""
    if text is None:
        return None
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def create_job(session: Session, source: str, model_version: int, batch_size: int) -> Job:
    job = Job(source=source, model_version=model_version, batch_size=batch_size,
              status=JOB_SCANNING)
    session.add(job)
    session.flush()
    return job


def get_job(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"job {job_id} does not exist (see `happysad jobs`)")
    return job


def list_jobs(session: Session, limit: int = 50) -> Sequence[Job]:
    return session.scalars(select(Job).order_by(Job.id.desc()).limit(limit)).all()


def seal_job(session: Session, job_id: int, total_images: int, batches_total: int,
             skipped_files: int) -> bool:
    """Record the job's size once its source is fully listed. True if every batch is done.
    A job cancelled while it was being listed stays cancelled."""
    done = session.execute(
        update(Job).where(Job.id == job_id)
        .values(total_images=total_images, batches_total=batches_total,
                skipped_files=skipped_files,
                status=case((Job.status == JOB_SCANNING, JOB_RUNNING), else_=Job.status))
        .returning(Job.batches_done)
    ).scalar_one()
    return done == batches_total


def record_batch(session: Session, job_id: int, batch_index: int, rows: list[dict],
                 worker_host: str) -> bool | None:
    """Write a batch's rows and count it, idempotently (RETURNING, not rowcount: drivers
    disagree on rowcount for ON CONFLICT DO NOTHING).

    Returns None if this batch was written before (a redelivery), else whether it was the job's
    last batch. The UPDATE on the job row serialises concurrent workers, so exactly one of them
    sees the final count.
    """
    # The batch's outbox row is marked written, once: the conditional upsert returns nothing
    # when it was written before (and makes the row for a batch sent without the outbox).
    insert = dialect_insert(session, JobBatch).values(
        job_id=job_id, batch_index=batch_index, images=len(rows), worker_host=worker_host,
        finished_at=utc_now(), sends=0)
    claimed = session.execute(
        insert.on_conflict_do_update(
            index_elements=["job_id", "batch_index"],
            set_={"worker_host": insert.excluded.worker_host,
                  "finished_at": insert.excluded.finished_at},
            where=JobBatch.finished_at.is_(None))
        .returning(JobBatch.batch_index)
    ).first()
    if claimed is None:
        return None
    if rows:
        rows = [row | {"uri": storable_text(row["uri"]), "error": storable_text(row["error"])}
                for row in rows]
        session.execute(
            dialect_insert(session, Prediction).on_conflict_do_nothing(
                index_elements=["job_id", "uri"]),
            rows,
        )
    done, total = session.execute(
        update(Job).where(Job.id == job_id).values(batches_done=Job.batches_done + 1)
        .returning(Job.batches_done, Job.batches_total)
    ).one()
    return total is not None and done == total


def all_batches_done(session: Session, job_id: int) -> bool:
    """Whether every batch of a sealed job is written (the job may not be marked done yet)."""
    job = get_job(session, job_id)
    return job.batches_total is not None and job.batches_done == job.batches_total


def count_attempt(session: Session, job_id: int, batch_index: int,
                  worker_host: str | None = None) -> int:
    """Count one more start of a batch and return the count (committed by the caller first,
    so a start that kills the worker still counts). The unwritten batch's `worker_host` names
    who holds it now, so the reconciler can send it again at once if that process is gone."""
    if worker_host is not None:
        session.execute(update(JobBatch)
                        .where(JobBatch.job_id == job_id, JobBatch.batch_index == batch_index,
                               JobBatch.finished_at.is_(None))
                        .values(worker_host=worker_host))
    session.execute(
        dialect_insert(session, BatchAttempt).values(job_id=job_id, batch_index=batch_index, attempts=0)
        .on_conflict_do_nothing()
    )
    return session.execute(
        update(BatchAttempt)
        .where(BatchAttempt.job_id == job_id, BatchAttempt.batch_index == batch_index)
        .values(attempts=BatchAttempt.attempts + 1, started_at=utc_now())
        .returning(BatchAttempt.attempts)
    ).scalar_one()


def finish_job(session: Session, job_id: int) -> str | None:
    """End the job: `done`, or `failed` with the reason when every image failed (a job with
    no result is no success). Returns the status for the one caller that made the change,
    None for any other (a cancelled job stays cancelled). The report comes after, written outside
    any transaction (set_report_path)."""
    reason = every_image_failed(session, job_id)
    status = JOB_FAILED if reason else JOB_DONE
    changed = session.execute(
        update(Job).where(Job.id == job_id, Job.status.not_in(JOB_FINISHED))
        .values(status=status, finished_at=utc_now(),
                status_reason=reason if reason else Job.status_reason)
    ).rowcount
    return status if changed else None


def every_image_failed(session: Session, job_id: int) -> str | None:
    """Why the job failed if it has rows and none of them is labelled (the first question
    reads one entry of the (job_id, label, confidence) index), naming the commonest error."""
    labelled = session.scalar(select(Prediction.id).where(
        Prediction.job_id == job_id, Prediction.label.is_not(None)).limit(1))
    if labelled is not None:
        return None
    errors = session.execute(
        select(Prediction.error, func.count()).where(Prediction.job_id == job_id)
        .group_by(Prediction.error).order_by(func.count().desc())).all()
    failed = sum(count for _error, count in errors)
    if not failed:
        return None
    error, count = errors[0]
    return storable_text(f"every image failed ({failed}); the commonest reason ({count} of "
                         f"{failed}): {error}")


def job_status(session: Session, job_id: int) -> str:
    status = session.scalar(select(Job.status).where(Job.id == job_id))
    if status is None:
        raise NotFound(f"job {job_id} does not exist (see `happysad jobs`)")
    return status


def cancel_job(session: Session, job_id: int, cancelled_by: str, reason: str) -> Job:
    """End a job that is still scanning or running: workers skip its remaining batches, the
    rows written so far stay. The conditional UPDATE makes a race with the last batch safe:
    either the job finished first (JobFinished) or it is cancelled and finish_job leaves it."""
    changed = session.execute(
        update(Job).where(Job.id == job_id, Job.status.not_in(JOB_FINISHED))
        .values(status=JOB_CANCELLED, finished_at=utc_now(), cancelled_at=utc_now(),
                cancelled_by=cancelled_by, cancel_reason=reason)
    ).rowcount
    job = get_job(session, job_id)
    if not changed:
        raise JobFinished(f"job {job_id} is already {job.status}: nothing to cancel")
    session.refresh(job)
    return job


def set_report_path(session: Session, job_id: int, report_path: str) -> None:
    session.execute(update(Job).where(Job.id == job_id).values(report_path=report_path))


def job_counts(session: Session, job_id: int) -> dict[str, int]:
    """How many images of the job are classified and how many failed, from the rows written."""
    classified, failed = session.execute(
        select(func.count(Prediction.label), func.count(Prediction.error))
        .where(Prediction.job_id == job_id)
    ).one()
    return {"classified": classified, "failed": failed}


def label_and_failed_counts(session: Session, job_id: int) -> tuple[dict[str, int], int]:
    """Images per label and images that failed, in one pass over the job's rows (the
    (job_id, label, confidence) index covers it): a row has a label or an error, not both."""
    rows = session.execute(select(Prediction.label, func.count())
                           .where(Prediction.job_id == job_id).group_by(Prediction.label)).all()
    return ({label: count for label, count in rows if label is not None},
            sum(count for label, count in rows if label is None))


def label_counts(session: Session, job_id: int) -> dict[str, int]:
    rows = session.execute(
        select(Prediction.label, func.count()).where(Prediction.job_id == job_id,
                                                      Prediction.label.is_not(None))
        .group_by(Prediction.label)
    )
    return dict(rows.all())
