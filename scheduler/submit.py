"""Submit a source for batch labelling: scan it (streamed), make a job pinned to a model
version, enqueue one task per batch carrying only ids and URIs.

Nothing here imports TensorFlow: tasks are sent by name.
"""

import os
from collections.abc import Iterator
from dataclasses import dataclass

from db import queries
from db.session import session_scope
from db.settings import get_settings, mask_url
from trainer.formats import is_candidate_image
from trainer.storage import StorageError, is_bucket_uri, open_storage


# While a large source is listed, look this often whether its job was cancelled meanwhile.
CANCEL_CHECK_BATCHES = 50


class SubmitError(ValueError):
    """A submission that cannot be made; the message says why."""


class BrokerUnavailable(RuntimeError):
    """The message broker cannot be reached."""


@dataclass
class Submission:
    job_id: int
    model_version: int
    total_images: int
    batches: int
    skipped_files: int
    source: str


def iter_batches(storage, batch_size: int, skipped: list[int]) -> Iterator[list[str]]:
    """The source's images in batches, streamed: memory does not grow with the source."""
    batch = []
    for listing in storage.iter_files():
        if not is_candidate_image(storage, listing):
            skipped[0] += 1
            continue
        batch.append(listing.uri)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def check_broker(app) -> None:
    settings = get_settings()
    if settings.embedded_broker:
        return
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=5)
    except Exception as error:  # kombu raises several types for a refused connection
        raise BrokerUnavailable(
            f"cannot reach the broker at {mask_url(settings.broker_url)}: {error}") from None


def resolve_model_version(session, model_version: int | None) -> int:
    """The version to pin the job to, once its file is found intact: a missing, corrupt or
    tampered model is refused here, before any job exists, not by every worker later."""
    from trainer.model_store import verified_model_path

    if model_version is not None:
        row = queries.get_model_version(session, model_version)
    else:
        row = queries.production_model_version(session)
        if row is None:
            raise SubmitError("no production model yet: train one first (`happysad train FOLDER`)")
    verified_model_path(row)
    return row.version


def _under(path: str, root: str, separator: str) -> bool:
    return path == root or path.startswith(root.rstrip(separator) + separator)


def check_allowed_source(source: str, allowed_roots: list[str]) -> None:
    """Refuse a source outside every allowed root (folders: symbolic links and `..` resolved;
    buckets: a prefix of the same bucket, and no `..` at all, which S3 would not resolve)."""
    if is_bucket_uri(source):
        key = source.removeprefix("s3://").rstrip("/")
        if ".." in key.split("/"):
            raise SubmitError(f"source {source} contains '..': not allowed in a bucket prefix")
        allowed = any(_under(key, root.removeprefix("s3://").rstrip("/"), "/")
                      for root in allowed_roots if is_bucket_uri(root))
    else:
        path = os.path.realpath(os.path.expanduser(source.removeprefix("file://")))
        allowed = any(_under(path, os.path.realpath(os.path.expanduser(root)), os.sep)
                      for root in allowed_roots if not is_bucket_uri(root))
    if not allowed:
        raise SubmitError(f"source {source} is not under an allowed root "
                          f"(HAPPYSAD_ALLOWED_SOURCES: {', '.join(allowed_roots)})")


def submit_source(source: str, model_version: int | None = None,
                  batch_size: int | None = None,
                  allowed_roots: list[str] | None = None) -> Submission:
    """Scan, record and enqueue a source. `allowed_roots` (the web app passes them) confines
    where a caller may send the workers to read."""
    from worker.celery_app import sender_app

    settings = get_settings()
    batch_size = batch_size or settings.batch_size
    if batch_size < 1:
        raise SubmitError("--batch-size must be at least 1")
    storage = open_storage(source)
    if allowed_roots is not None:
        check_allowed_source(storage.root, allowed_roots)
    if not storage.exists():
        raise SubmitError(f"source not found: {source}")
    with session_scope() as session:
        version = resolve_model_version(session, model_version)
    app = sender_app()
    check_broker(app)

    skipped = [0]
    batches = iter_batches(storage, batch_size, skipped)
    first = next(batches, None)
    if first is None:
        raise SubmitError(f"no images found in {source} ({skipped[0]} other files)")
    with session_scope() as session:
        job_id = queries.create_job(session, storage.root, version, batch_size).id
    total, sent = 0, 0
    for batch in _chain(first, batches):
        if sent % CANCEL_CHECK_BATCHES == CANCEL_CHECK_BATCHES - 1 and _cancelled(job_id):
            break  # cancelled while still listing: queue no more of it
        app.send_task("happysad.classify_batch", args=[job_id, sent, batch])
        total += len(batch)
        sent += 1
    with session_scope() as session:
        complete = queries.seal_job(session, job_id, total, sent, skipped[0])
    if complete:  # every batch finished while we were still listing: finish it now
        app.send_task("happysad.finish_job", args=[job_id])
    return Submission(job_id=job_id, model_version=version, total_images=total,
                      batches=sent, skipped_files=skipped[0], source=storage.root)


def _cancelled(job_id: int) -> bool:
    from db.tables import JOB_CANCELLED

    with session_scope() as session:
        return queries.job_status(session, job_id) == JOB_CANCELLED


def _chain(first: list[str], rest: Iterator[list[str]]) -> Iterator[list[str]]:
    yield first
    yield from rest


__all__ = ["BrokerUnavailable", "StorageError", "SubmitError", "Submission", "submit_source"]
