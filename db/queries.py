"""Query functions. Each takes the caller's session and never commits: the caller owns the
transaction (a task, a CLI command), so several calls can share one atomic unit of work."""

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import Select, case, func, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from db.tables import JOB_CANCELLED, JOB_DONE, JOB_FINISHED, JOB_RUNNING, JOB_SCANNING
from db.tables import BatchAttempt, Job, JobBatch, ModelVersion, ModelVersionClaim, Prediction
from db.tables import Promotion, RetrainRun, utc_now


class NotFound(LookupError):
    """A job, model version or run that does not exist."""


class JobFinished(ValueError):
    """A change asked of a job that has already ended (done or cancelled)."""


class NothingToRollBack(ValueError):
    """A rollback asked when no earlier production version exists."""


def _insert(session: Session, table):
    """An INSERT that can say ON CONFLICT DO NOTHING on both SQLite and PostgreSQL."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


# --- model versions -----------------------------------------------------------------------

def claim_model_version(session: Session, claimed_by: str) -> int | None:
    """Take the next version number for a new model (None if another trainer took it first:
    try again). Commit before writing the version's files; a number is never given twice."""
    latest = max(session.scalar(select(func.max(ModelVersionClaim.version))) or 0,
                 session.scalar(select(func.max(ModelVersion.version))) or 0)
    return session.execute(
        _insert(session, ModelVersionClaim)
        .values(version=latest + 1, claimed_at=utc_now(), claimed_by=claimed_by)
        .on_conflict_do_nothing().returning(ModelVersionClaim.version)
    ).scalar()


def next_model_version(session: Session) -> int:
    return (session.scalar(select(func.max(ModelVersion.version))) or 0) + 1


def get_model_version(session: Session, version: int) -> ModelVersion:
    row = session.get(ModelVersion, version)
    if row is None:
        raise NotFound(f"model version {version} does not exist (see `happysad models list`)")
    return row


def production_model_version(session: Session) -> ModelVersion | None:
    return session.scalar(select(ModelVersion).where(ModelVersion.is_production))


def list_model_versions(session: Session) -> Sequence[ModelVersion]:
    return session.scalars(select(ModelVersion).order_by(ModelVersion.version)).all()


def set_production(session: Session, version: int, kind: str, reason: str) -> Promotion:
    """Make `version` the one production model and record why; locks out concurrent promoters."""
    get_model_version(session, version)
    current = session.scalar(
        select(ModelVersion).where(ModelVersion.is_production).with_for_update()
    )
    previous = current.version if current else None
    session.execute(update(ModelVersion).where(ModelVersion.is_production).values(is_production=False))
    session.flush()
    session.execute(
        update(ModelVersion).where(ModelVersion.version == version).values(is_production=True)
    )
    promotion = Promotion(version=version, previous_version=previous, kind=kind, reason=reason)
    session.add(promotion)
    session.flush()
    return promotion


def promotion_history(session: Session) -> Sequence[Promotion]:
    return session.scalars(select(Promotion).order_by(Promotion.id)).all()


def rollback_production(session: Session, reason: str) -> Promotion:
    """Make the version that was production before the latest change production again."""
    latest = session.scalar(select(Promotion).order_by(Promotion.id.desc()).limit(1))
    if latest is None or latest.previous_version is None:
        raise NothingToRollBack("nothing to roll back to: there was no production model "
                                "before the current one")
    return set_production(session, latest.previous_version, "rollback", reason)


# --- jobs ---------------------------------------------------------------------------------

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
    insert = _insert(session, JobBatch).values(
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
            _insert(session, Prediction).on_conflict_do_nothing(
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


def count_attempt(session: Session, job_id: int, batch_index: int) -> int:
    """Count one more start of a batch and return the count (committed by the caller first,
    so a start that kills the worker still counts)."""
    session.execute(
        _insert(session, BatchAttempt).values(job_id=job_id, batch_index=batch_index, attempts=0)
        .on_conflict_do_nothing()
    )
    return session.execute(
        update(BatchAttempt)
        .where(BatchAttempt.job_id == job_id, BatchAttempt.batch_index == batch_index)
        .values(attempts=BatchAttempt.attempts + 1, started_at=utc_now())
        .returning(BatchAttempt.attempts)
    ).scalar_one()


def finish_job(session: Session, job_id: int, report_path: str | None = None) -> bool:
    """Mark the job done; True only for the one caller that made the change (a cancelled job
    stays cancelled)."""
    return bool(session.execute(
        update(Job).where(Job.id == job_id, Job.status.not_in(JOB_FINISHED))
        .values(status=JOB_DONE, finished_at=utc_now(), report_path=report_path)
    ).rowcount)


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


def predictions_query(job_id: int, label: str | None = None, min_confidence: float | None = None,
                      errors_only: bool = False, after_id: int = 0,
                      max_confidence: float | None = None) -> Select:
    """The filtered, id-ordered predictions of a job; page with `after_id` (keyset paging)."""
    query = select(Prediction).where(Prediction.job_id == job_id, Prediction.id > after_id)
    if label is not None:
        query = query.where(Prediction.label == label)
    if min_confidence is not None:
        query = query.where(Prediction.confidence >= min_confidence)
    if max_confidence is not None:
        query = query.where(Prediction.confidence <= max_confidence)
    if errors_only:
        query = query.where(Prediction.error.is_not(None))
    return query.order_by(Prediction.id)


def uncertain_first_query(job_id: int, label: str | None = None,
                          min_confidence: float | None = None,
                          max_confidence: float | None = None,
                          after: tuple[float, int] | None = None) -> Select:
    """A job's classified images, least confident first (ties by id); page with `after`, the
    last row's (confidence, id): keyset paging on ix_predictions_job_confidence_id."""
    query = select(Prediction).where(Prediction.job_id == job_id,
                                     Prediction.confidence.is_not(None))
    if label is not None:
        query = query.where(Prediction.label == label)
    if min_confidence is not None:
        query = query.where(Prediction.confidence >= min_confidence)
    if max_confidence is not None:
        query = query.where(Prediction.confidence <= max_confidence)
    if after is not None:
        query = query.where(tuple_(Prediction.confidence, Prediction.id) > tuple_(*after))
    return query.order_by(Prediction.confidence, Prediction.id)


def get_prediction(session: Session, prediction_id: int) -> Prediction:
    row = session.get(Prediction, prediction_id)
    if row is None:
        raise NotFound(f"prediction {prediction_id} does not exist")
    return row


def iter_predictions(session: Session, job_id: int, page_size: int = 1000,
                     limit: int | None = None, **filters) -> Iterable[Prediction]:
    """Stream a job's predictions a page at a time, so a million rows never sit in memory."""
    after_id, yielded = 0, 0
    while True:
        size = page_size if limit is None else min(page_size, limit - yielded)
        if size <= 0:
            return
        page = session.scalars(predictions_query(job_id, after_id=after_id, **filters)
                               .limit(size)).all()
        yield from page
        yielded += len(page)
        if len(page) < size:
            return
        after_id = page[-1].id


# --- retrain runs -------------------------------------------------------------------------

def claim_retrain_slot(session: Session, slot: str, source: str) -> RetrainRun | None:
    """Start the run for a slot, or None if that slot already has one (a duplicate delivery)."""
    claimed = session.execute(
        _insert(session, RetrainRun)
        .values(slot=slot, source=source, status="running", started_at=utc_now(), promoted=False)
        .on_conflict_do_nothing().returning(RetrainRun.id)
    ).scalar()
    if claimed is None:
        return None
    return session.get(RetrainRun, claimed)


def finish_retrain_run(session: Session, run_id: int, status: str, reason: str,
                       fingerprint: str | None = None, model_version: int | None = None,
                       promoted: bool = False, finished_at: datetime | None = None) -> None:
    session.execute(
        update(RetrainRun).where(RetrainRun.id == run_id)
        .values(status=status, reason=reason, dataset_fingerprint=fingerprint,
                model_version=model_version, promoted=promoted,
                finished_at=finished_at or utc_now())
    )


def list_retrain_runs(session: Session, limit: int = 50) -> Sequence[RetrainRun]:
    return session.scalars(select(RetrainRun).order_by(RetrainRun.id.desc()).limit(limit)).all()


def retrain_run_for_slot(session: Session, slot: str) -> RetrainRun | None:
    return session.scalar(select(RetrainRun).where(RetrainRun.slot == slot))


def fail_running_retrain_runs(session: Session, reason: str, slot: str | None = None,
                              before_id: int | None = None) -> Sequence[tuple[int, str]]:
    """Mark runs still "running" as failed (of one slot, or older than a run); returns the
    (id, slot) of each. Only for the holder of the retrain lock: no other run is in progress."""
    query = update(RetrainRun).where(RetrainRun.status == "running")
    if slot is not None:
        query = query.where(RetrainRun.slot == slot)
    if before_id is not None:
        query = query.where(RetrainRun.id < before_id)
    return session.execute(
        query.values(status="failed", reason=reason, finished_at=utc_now())
        .returning(RetrainRun.id, RetrainRun.slot)
    ).all()
