"""Submit a source for batch labelling: scan it (streamed), make a job pinned to a model
version, record each batch in SQL and then enqueue its task, carrying only ids and URIs.

Nothing here imports TensorFlow: tasks are sent by name. The caller (the CLI, the web app)
passes its settings and a session factory: each step commits on its own (the outbox).
"""

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from db import queries
from db.errors import InvalidInput, Unavailable, is_disk_full
from db.locks import job_listing_lock
from db.session import Sessions, try_lock
from db.settings import MAX_BATCH_SIZE, Settings, mask_url
from scheduler.listing import iter_batches
from scheduler.outbox import out_of_space, seal_and_maybe_finish, send_batches
from trainer.storage import StorageError, is_bucket_uri, open_storage


class SubmitError(InvalidInput):
    """A submission that cannot be made; the message says why."""


class BrokerUnavailable(Unavailable):
    """The message broker cannot be reached."""


@dataclass
class Submission:
    job_id: int
    model_version: int
    total_images: int
    batches: int
    skipped_files: int
    source: str


def check_broker(app, settings: Settings) -> None:
    """Raise BrokerUnavailable if the broker server of `settings` does not answer."""
    if settings.embedded_broker:
        return
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=5)
    except Exception as error:  # kombu raises several types for a refused connection
        raise BrokerUnavailable(
            f"cannot reach the broker at {mask_url(settings.broker_url)}: {error}") from None


def resolve_model_version(session, model_version: int | None, cache_folder: Path) -> int:
    """The version to pin the job to, once its file is found intact (fetched into
    `cache_folder` from a bucket): a missing, corrupt or tampered model is refused here, before
    any job exists, not by every worker later."""
    from trainer.model_store import verified_model_path

    if model_version is not None:
        row = queries.get_model_version(session, model_version)
    else:
        row = queries.production_model_version(session)
        if row is None:
            raise SubmitError("no production model yet: train one first (`happysad train FOLDER`)")
    verified_model_path(row, cache_folder)
    return row.version


def checked_batch_size(batch_size: int | None, default: int) -> int:
    """The flag if given, else `default` (HAPPYSAD_BATCH_SIZE, validated with the settings),
    in range."""
    if batch_size is None:
        return default
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise SubmitError(f"--batch-size must be between 1 and {MAX_BATCH_SIZE} (got {batch_size})")
    return batch_size


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
                  batch_size: int | None = None, allowed_roots: list[str] | None = None, *,
                  settings: Settings, sessions: Sessions) -> Submission:
    """Make the job, then list the source and record and send each batch (the outbox), holding
    the job's listing lock: if this process dies, `jobs resume` or the reconciler goes on.
    `allowed_roots` (the web app passes them) confines where a caller may send the workers."""
    from scheduler.celery_app import sender_app

    batch_size = checked_batch_size(batch_size, settings.batch_size)
    storage = open_storage(source)
    if allowed_roots is not None:
        check_allowed_source(storage.root, allowed_roots)
    if not storage.exists():
        if not is_bucket_uri(storage.root) and os.path.exists(storage.root):
            raise SubmitError(f"not a folder: {source} (give the folder that holds the images)")
        raise SubmitError(f"source not found: {source}")
    with sessions() as session:
        version = resolve_model_version(session, model_version, settings.home_folder("cache"))
    app = sender_app()
    check_broker(app, settings)

    skipped = [0]
    batches = iter_batches(storage, batch_size, skipped)
    first = next(batches, None)
    if first is None:
        raise SubmitError(f"no images found in {source} ({skipped[0]} other "
                          f"file{'' if skipped[0] == 1 else 's'})")
    with sessions() as session:
        job_id = queries.create_job(session, storage.root, version, batch_size).id
    with try_lock(job_listing_lock(job_id)):
        try:
            count, total = send_batches(app, sessions, job_id, _chain(first, batches), 0)
            seal_and_maybe_finish(app, sessions, job_id, total, count, skipped[0])
        except Exception as error:
            if is_disk_full(error):  # the job exists: say which, and how it goes on
                raise out_of_space(sessions, job_id, error) from None
            raise
    return Submission(job_id=job_id, model_version=version, total_images=total,
                      batches=count, skipped_files=skipped[0], source=storage.root)


def _chain(first: list[str], rest: Iterator[list[str]]) -> Iterator[list[str]]:
    yield first
    yield from rest


__all__ = ["BrokerUnavailable", "StorageError", "SubmitError", "Submission", "iter_batches",
           "submit_source"]
