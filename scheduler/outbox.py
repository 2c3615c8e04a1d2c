"""Sending batches through the outbox: each batch is recorded in SQL and committed, then sent.
A message lost after that is found and sent again by the reconciler (scheduler.reconcile).

Each step is a transaction of its own, from the `sessions` the entry point passes (a crash
between two loses nothing): they are never one transaction around a send."""

import logging
from collections.abc import Iterable

from db import queries
from db.errors import DiskFull, one_line
from db.queries import outbox
from db.session import Sessions
from db.tables import JOB_ACTIVE
from worker.task_names import CLASSIFY_BATCH_TASK, FINISH_JOB_TASK, LABELLING_QUEUE


def send_batch(app, sessions: Sessions, job_id: int, batch_index: int, uris: list[str]) -> None:
    with sessions() as session:
        outbox.record_batch_to_send(session, job_id, batch_index, uris)
    app.send_task(CLASSIFY_BATCH_TASK, args=[job_id, batch_index, uris])
    with sessions() as session:  # sent: `jobs resume` need not send it whatever happens
        outbox.count_send(session, job_id, batch_index)


def resend_batch(app, sessions: Sessions, job_id: int, batch_index: int,
                 uris: list[str]) -> None:
    with sessions() as session:
        outbox.count_resend(session, job_id, batch_index)
    app.send_task(CLASSIFY_BATCH_TASK, args=[job_id, batch_index, uris])


logger = logging.getLogger(__name__)


def out_of_space(sessions: Sessions, job_id: int, error: BaseException) -> DiskFull:
    """Note on the job that its listing waits for space (so the reconciler resumes it as soon
    as it can), and the error to raise: it names the job and what to run."""
    try:
        with sessions() as session:
            outbox.note_listing(session, job_id, outbox.LISTING_OUT_OF_SPACE)
    except Exception as note_error:  # the database may be on the full disk too
        logger.warning("job %s: cannot note the full disk: %s", job_id, one_line(note_error))
    return DiskFull(f"no space left on device ({one_line(error)}): job {job_id} is recorded; "
                    f"once space is back, run `happysad jobs resume {job_id}` (a running "
                    "worker resumes it by itself)")


# While a large source is listed, look this often whether its job was cancelled meanwhile.
CANCEL_CHECK_BATCHES = 50


def send_batches(app, sessions: Sessions, job_id: int, batches: Iterable[list[str]],
                 first_index: int) -> tuple[int, int]:
    """Record and send each batch, numbered from `first_index`; (batches, images) sent. Stops
    early if the job is cancelled meanwhile: no more of it is queued."""
    count = images = 0
    for batch in batches:
        if count % CANCEL_CHECK_BATCHES == CANCEL_CHECK_BATCHES - 1 and _ended(sessions, job_id):
            break
        send_batch(app, sessions, job_id, first_index + count, batch)
        count += 1
        images += len(batch)
    return count, images


def _ended(sessions: Sessions, job_id: int) -> bool:
    with sessions() as session:
        return queries.job_status(session, job_id) not in JOB_ACTIVE


def seal_and_maybe_finish(app, sessions: Sessions, job_id: int, total_images: int,
                          batches_total: int, skipped_files: int) -> None:
    """Record the job's size; if every batch finished while it was listed, finish it now."""
    with sessions() as session:
        complete = queries.seal_job(session, job_id, total_images, batches_total, skipped_files)
    if complete:
        app.send_task(FINISH_JOB_TASK, args=[job_id])


def queued_messages(app) -> int:
    """Messages waiting in the labelling queue (Redis lists or the queue folder's files):
    while any wait, an unwritten batch may be one of them and is not sent again."""
    with app.connection_for_read() as connection:
        channel = connection.default_channel
        return channel.queue_declare(queue=LABELLING_QUEUE, durable=True,
                                     auto_delete=False).message_count
