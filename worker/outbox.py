"""Sending batches through the outbox: each batch is recorded in SQL and committed, then sent.
A message lost after that is found and sent again by the reconciler (worker.reconcile)."""

from collections.abc import Iterable

from db import queries

from db.queries import outbox
from db.session import session_scope
from db.tables import JOB_ACTIVE
from worker.task_names import CLASSIFY_BATCH_TASK, FINISH_JOB_TASK, LABELLING_QUEUE


def send_batch(app, job_id: int, batch_index: int, uris: list[str]) -> None:
    with session_scope() as session:
        outbox.record_batch_to_send(session, job_id, batch_index, uris)
    app.send_task(CLASSIFY_BATCH_TASK, args=[job_id, batch_index, uris])


def resend_batch(app, job_id: int, batch_index: int, uris: list[str]) -> None:
    with session_scope() as session:
        outbox.count_resend(session, job_id, batch_index)
    app.send_task(CLASSIFY_BATCH_TASK, args=[job_id, batch_index, uris])


# While a large source is listed, look this often whether its job was cancelled meanwhile.
CANCEL_CHECK_BATCHES = 50


def send_batches(app, job_id: int, batches: Iterable[list[str]],
                 first_index: int) -> tuple[int, int]:
    """Record and send each batch, numbered from `first_index`; (batches, images) sent. Stops
    early if the job is cancelled meanwhile: no more of it is queued."""
    count = images = 0
    for batch in batches:
        if count % CANCEL_CHECK_BATCHES == CANCEL_CHECK_BATCHES - 1 and _ended(job_id):
            break
        send_batch(app, job_id, first_index + count, batch)
        count += 1
        images += len(batch)
    return count, images


def _ended(job_id: int) -> bool:
    with session_scope() as session:
        return queries.job_status(session, job_id) not in JOB_ACTIVE


def seal_and_maybe_finish(app, job_id: int, total_images: int, batches_total: int,
                          skipped_files: int) -> None:
    """Record the job's size; if every batch finished while it was listed, finish it now."""
    with session_scope() as session:
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
