"""The batch outbox: queries on a job's batches as recorded before sending, for the submitter,
the reconciler, `jobs resume` and `jobs retry`. Each takes the caller's session, never commits.

A batch is recorded (its URIs, `sent_at`) and committed before its message is sent, so a
message lost anywhere (a broker restarted without its data, a submitter killed between commit
and send, a retry that could not be written) leaves a row that says what to send again.
"""

from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from db.queries.dialect import dialect_insert
from db.tables import JOB_ACTIVE, JOB_FAILED, JOB_RUNNING, JOB_SCANNING
from db.tables import BatchAttempt, Job, JobBatch, Prediction, utc_now



def record_batch_to_send(session: Session, job_id: int, batch_index: int,
                         uris: list[str]) -> None:
    """Record a batch about to be sent (committed first; `count_send` once it is sent, so a
    batch its submitter died before sending is told apart: `sends` 0)."""
    session.execute(
        dialect_insert(session, JobBatch)
        .values(job_id=job_id, batch_index=batch_index, images=len(uris), uris=uris,
                sent_at=utc_now(), sends=0, worker_host=None, finished_at=None)
        .on_conflict_do_nothing()
    )
    # The listing's heartbeat: a job stuck in `scanning` is one whose submitter stopped.
    session.execute(update(Job).where(Job.id == job_id).values(listed_at=utc_now()))


def batch_state(session: Session, job_id: int, batch_index: int) -> tuple[str, bool]:
    """(the job's status, whether this batch is written): a worker's first, cheap look."""
    row = session.execute(
        select(Job.status, JobBatch.finished_at.is_not(None))
        .outerjoin(JobBatch, and_(JobBatch.job_id == Job.id, JobBatch.batch_index == batch_index))
        .where(Job.id == job_id)
    ).first()
    if row is None:
        return "missing", False
    return row[0], bool(row[1])


def recorded_totals(session: Session, job_id: int) -> tuple[int, int, int]:
    """(batches recorded, images in them, the next free batch index)."""
    count, images, last = session.execute(
        select(func.count(), func.coalesce(func.sum(JobBatch.images), 0),
               func.max(JobBatch.batch_index)).where(JobBatch.job_id == job_id)
    ).one()
    return count, images, (-1 if last is None else last) + 1


def iter_recorded_uris(session: Session, job_id: int, page_size: int = 500) -> Iterator[str]:
    """Every URI the job's recorded batches hold, a page of batches at a time."""
    after = -1
    while True:
        page = session.execute(
            select(JobBatch.batch_index, JobBatch.uris)
            .where(JobBatch.job_id == job_id, JobBatch.batch_index > after)
            .order_by(JobBatch.batch_index).limit(page_size)
        ).all()
        for _, uris in page:
            yield from uris or []
        if len(page) < page_size:
            return
        after = page[-1][0]


def batches_to_resend(session: Session, older_than: datetime, limit: int,
                      job_id: int | None = None,
                      unstarted_before: datetime | None = None) -> list[tuple[int, int, list[str]]]:
    """(job, batch, URIs) of unwritten batches of active jobs that are not plausibly in flight:
    sent before `older_than` and not started by a worker since; with `unstarted_before`, also
    those sent before it and not started since it was sent (no message waits reserved behind
    a running batch: see the reconciler)."""
    started_at = BatchAttempt.started_at
    lost = and_(JobBatch.sent_at < older_than,
                or_(started_at.is_(None), started_at < older_than))
    if unstarted_before is not None:
        lost = or_(lost, and_(JobBatch.sent_at < unstarted_before,
                              or_(started_at.is_(None), started_at < JobBatch.sent_at)))
    query = (
        select(JobBatch.job_id, JobBatch.batch_index, JobBatch.uris)
        .join(Job, Job.id == JobBatch.job_id)
        .outerjoin(BatchAttempt, and_(BatchAttempt.job_id == JobBatch.job_id,
                                      BatchAttempt.batch_index == JobBatch.batch_index))
        .where(Job.status.in_(JOB_ACTIVE), JobBatch.finished_at.is_(None),
               JobBatch.uris.is_not(None), lost)
        .order_by(JobBatch.job_id, JobBatch.batch_index).limit(limit)
    )
    if job_id is not None:
        query = query.where(JobBatch.job_id == job_id)
    return [tuple(row) for row in session.execute(query).all()]


def held_batches(session: Session, limit: int) -> list[tuple[int, int, list[str], str]]:
    """(job, batch, URIs, holder) of unwritten batches of active jobs that a worker took and
    that were not sent again since: the caller sends again those whose holder is gone."""
    return [tuple(row) for row in session.execute(
        select(JobBatch.job_id, JobBatch.batch_index, JobBatch.uris, JobBatch.worker_host)
        .join(Job, Job.id == JobBatch.job_id)
        .join(BatchAttempt, and_(BatchAttempt.job_id == JobBatch.job_id,
                                 BatchAttempt.batch_index == JobBatch.batch_index))
        .where(Job.status.in_(JOB_ACTIVE), JobBatch.finished_at.is_(None),
               JobBatch.uris.is_not(None), JobBatch.worker_host.is_not(None),
               JobBatch.sent_at < BatchAttempt.started_at)
        .order_by(JobBatch.job_id, JobBatch.batch_index).limit(limit)).all()]


def count_send(session: Session, job_id: int, batch_index: int) -> None:
    """The first send of a recorded batch went out."""
    session.execute(update(JobBatch)
                    .where(JobBatch.job_id == job_id, JobBatch.batch_index == batch_index)
                    .values(sends=JobBatch.sends + 1))


def unsent_batches(session: Session, job_id: int) -> list[tuple[int, list[str]]]:
    """(batch, URIs) of the job's batches recorded but never sent (their submitter died or
    its send failed between the commit and the message): no message of theirs can exist."""
    return [tuple(row) for row in session.execute(
        select(JobBatch.batch_index, JobBatch.uris)
        .where(JobBatch.job_id == job_id, JobBatch.sends == 0, JobBatch.finished_at.is_(None),
               JobBatch.uris.is_not(None))
        .order_by(JobBatch.batch_index)).all()]


def count_resend(session: Session, job_id: int, batch_index: int) -> None:
    session.execute(
        update(JobBatch)
        .where(JobBatch.job_id == job_id, JobBatch.batch_index == batch_index)
        .values(sent_at=utc_now(), sends=JobBatch.sends + 1)
    )


# A job's status_reason while its listing waits for disk space: the reconciler resumes such a
# job at once (resuming it fails again, harmlessly, while the disk is still full).
LISTING_OUT_OF_SPACE = "listing stopped: no space left on device (resumed once space is back)"


def stalled_listings(session: Session, older_than: datetime) -> list[int]:
    """Jobs still `scanning` whose listing made no progress since `older_than`, or stopped
    for lack of space (no deadline to wait for: its submitter has given up)."""
    return list(session.scalars(
        select(Job.id).where(Job.status == JOB_SCANNING,
                             or_(func.coalesce(Job.listed_at, Job.submitted_at) < older_than,
                                 Job.status_reason == LISTING_OUT_OF_SPACE))
        .order_by(Job.id)
    ))


def complete_but_unfinished(session: Session) -> list[int]:
    """Running jobs whose every batch is written but that nobody marked done."""
    return list(session.scalars(
        select(Job.id).where(Job.status == JOB_RUNNING, Job.batches_total.is_not(None),
                             Job.batches_done == Job.batches_total)
    ))


def note_listing(session: Session, job_id: int, reason: str) -> None:
    session.execute(update(Job).where(Job.id == job_id)
                    .values(status_reason=reason, listed_at=utc_now()))


def fail_job(session: Session, job_id: int, reason: str) -> bool:
    """End an active job as failed, with why; True if this call made the change."""
    return bool(session.execute(
        update(Job).where(Job.id == job_id, Job.status.in_(JOB_ACTIVE))
        .values(status=JOB_FAILED, status_reason=reason, finished_at=utc_now())
    ).rowcount)


def failed_uris(session: Session, job_id: int) -> list[str]:
    return list(session.scalars(
        select(Prediction.uri).where(Prediction.job_id == job_id, Prediction.error.is_not(None))
        .order_by(Prediction.id)
    ))


def reopen_for_retry(session: Session, job_id: int, uris: list[str], batch_size: int,
                     reason: str) -> list[tuple[int, list[str]]]:
    """Take the error rows of `uris` away and record them as new batches of the job, which
    runs again; returns the (batch index, URIs) to send. One transaction: all or nothing."""
    job = session.get(Job, job_id, with_for_update=True)
    _, _, next_index = recorded_totals(session, job_id)
    batches = [(next_index + offset, uris[start:start + batch_size])
               for offset, start in enumerate(range(0, len(uris), batch_size))]
    for start in range(0, len(uris), 1000):
        session.execute(delete(Prediction).where(Prediction.job_id == job_id,
                                                 Prediction.uri.in_(uris[start:start + 1000])))
    for index, batch in batches:
        record_batch_to_send(session, job_id, index, batch)
    job.batches_total = (job.batches_total or 0) + len(batches)
    job.status, job.status_reason, job.finished_at = JOB_RUNNING, reason, None
    session.flush()
    return batches
