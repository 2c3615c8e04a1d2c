"""Resume a job whose listing stopped (its submitter was killed, its disk filled): list the
source again and send only what is not yet recorded, then send again any recorded batch that
is still unwritten. `happysad jobs resume N` and the reconciler (after
HAPPYSAD_LISTING_DEADLINE without progress) both call `resume_job`; the job's listing lock,
held by whoever lists it, keeps a live submitter's job from being listed twice."""

from dataclasses import dataclass

from db import queries
from db.errors import InvalidInput, is_disk_full
from db.locks import job_listing_lock
from db.queries import outbox
from db.session import Sessions, try_lock
from db.tables import JOB_ACTIVE, JOB_DONE, JOB_FAILED, JOB_SCANNING, utc_now
from scheduler.listing import iter_batches
from scheduler.outbox import (out_of_space, queued_messages, resend_batch, seal_and_maybe_finish,
                              send_batches)
from trainer.storage import StorageError, open_storage
from worker.task_names import CLASSIFY_BATCH_TASK


class ResumeError(InvalidInput):
    """A job that cannot be resumed; the message says why."""


@dataclass
class Resumed:
    job_id: int
    listed_again: bool
    new_images: int
    new_batches: int
    already_recorded: int  # images recorded before the resume
    resent_batches: int
    total_images: int | None


def resume_job(app, sessions: Sessions, job_id: int, reason: str) -> Resumed:
    """`reason` is recorded on the job (who resumed it, and why). Each step is a transaction of
    its own from `sessions`, committed before the next, as a submitter's are."""
    started = utc_now()
    with sessions() as session:
        job = queries.get_job(session, job_id)
        status, source, batch_size = job.status, job.source, job.batch_size
    if status not in JOB_ACTIVE:
        raise ResumeError(f"job {job_id} is {status}: nothing to resume")
    with try_lock(job_listing_lock(job_id)) as held:
        if not held:
            raise ResumeError(f"job {job_id} is being listed right now (by its submitter or "
                              "another resume): nothing to do")
        with sessions() as session:
            status = queries.get_job(session, job_id).status  # it may have changed meanwhile
            outbox.note_listing(session, job_id, reason)
        new_batches = new_images = recorded_images = 0
        try:
            if status == JOB_SCANNING:
                new_batches, new_images, recorded_images = _list_again(app, sessions, job_id,
                                                                       source, batch_size)
            resent = resend_unwritten(app, sessions, job_id, started)
        except Exception as error:
            if is_disk_full(error):  # still no space: noted again, tried again later
                raise out_of_space(sessions, job_id, error) from None
            raise
    with sessions() as session:
        total = queries.get_job(session, job_id).total_images
    return Resumed(job_id=job_id, listed_again=status == JOB_SCANNING, new_images=new_images,
                   new_batches=new_batches, already_recorded=recorded_images,
                   resent_batches=resent, total_images=total)


def _list_again(app, sessions: Sessions, job_id: int, source: str,
                batch_size: int) -> tuple[int, int, int]:
    storage = open_storage(source)
    if not storage.exists():
        raise StorageError(f"source not found: {source}")
    with sessions() as session:
        # Held in memory while listing (~100 bytes a URI): a resume is rare, and correctness
        # must not depend on the source listing in the same order twice.
        recorded = set(outbox.iter_recorded_uris(session, job_id))
        recorded_batches, recorded_images, next_index = outbox.recorded_totals(session, job_id)
    skipped = [0]
    batches = iter_batches(storage, batch_size, skipped, exclude=recorded)
    new_batches, new_images = send_batches(app, sessions, job_id, batches, next_index)
    seal_and_maybe_finish(app, sessions, job_id, recorded_images + new_images,
                          recorded_batches + new_batches, skipped[0])
    return new_batches, new_images, recorded_images


def resend_unwritten(app, sessions: Sessions, job_id: int, sent_before) -> int:
    """Send every batch of the job recorded but never sent, whatever the queue holds (no
    message of theirs exists); then again every unwritten batch sent before `sent_before`,
    unless messages are waiting in the queue (they may be those batches; the reconciler looks
    again later)."""
    with sessions() as session:
        unsent = outbox.unsent_batches(session, job_id)
    for batch_index, uris in unsent:
        resend_batch(app, sessions, job_id, batch_index, uris)
    if queued_messages(app):
        return len(unsent)
    resent = len(unsent)
    while True:
        with sessions() as session:
            lost = outbox.batches_to_resend(session, sent_before, 500, job_id=job_id)
        for _, batch_index, uris in lost:
            resend_batch(app, sessions, job_id, batch_index, uris)
        resent += len(lost)
        if len(lost) < 500:
            return resent


@dataclass
class Retried:
    job_id: int
    images: int
    batches: int


def retry_failed(app, sessions: Sessions, job_id: int) -> Retried:
    """A new attempt for the images of a finished job that got error rows (say, after a model
    file came back): their rows are taken away and they are sent again as new batches."""
    with sessions() as session:
        job = queries.get_job(session, job_id)
        # done, or failed because every image failed (not a listing that stopped)
        every_batch_written = (job.batches_total is not None
                               and job.batches_done == job.batches_total)
        if job.status not in (JOB_DONE, JOB_FAILED) or not every_batch_written:
            raise ResumeError(f"job {job_id} is {job.status}: only the failed images of a job "
                              "that ran to its end can be retried")
        uris = outbox.failed_uris(session, job_id)
        if not uris:
            raise ResumeError(f"job {job_id} has no failed images")
        batches = outbox.reopen_for_retry(session, job_id, uris, job.batch_size,
                                          f"retrying {len(uris)} failed images")
    for batch_index, batch in batches:  # recorded and committed first: a lost send is resent
        app.send_task(CLASSIFY_BATCH_TASK, args=[job_id, batch_index, batch])
        with sessions() as session:
            outbox.count_send(session, job_id, batch_index)
    return Retried(job_id=job_id, images=len(uris), batches=len(batches))
