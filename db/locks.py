"""The one lock helper: at most one holder per lock across every process of a deployment.

An advisory lock on PostgreSQL, a file lock beside the SQLite database. The database or the
operating system releases it when its holder dies, so a crashed holder never blocks the next.
"""

import contextlib
import fcntl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from db.queries.locks import release_advisory_lock, take_advisory_lock
from db.settings import get_settings


@dataclass(frozen=True)
class Lock:
    name: str  # the SQLite lock file's suffix
    key: int  # the PostgreSQL advisory lock id: unique per lock, the same in every release


MIGRATION_LOCK = Lock("migrate", 72417)  # one process migrates the schema at a time
# One training at a time, whoever asks (trainer.training). The name and key predate `train`
# and the demo taking it too, and stay: a process of the previous release must still agree.
TRAINING_LOCK = Lock("retrain", 72418)


def lock_file(engine: Engine, lock: Lock) -> Path:
    """Beside the SQLite file, so every process using that database shares it."""
    database = engine.url.database
    if database and database != ":memory:":
        return Path(f"{database}.{lock.name}.lock")
    return get_settings().home_folder("run") / f"{lock.name}.lock"


@contextlib.contextmanager
def held_lock(engine: Engine, lock: Lock, wait: bool = True) -> Iterator[bool]:
    """Hold `lock` for the block; yields whether it is held. With `wait`, block until it is
    free (always True); without, yield False at once if another process holds it."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            held = take_advisory_lock(connection, lock.key, wait)
            connection.commit()  # the lock is the session's: no transaction stays open
            try:
                yield held
            finally:
                if held:
                    release_advisory_lock(connection, lock.key)
                    connection.commit()
        return
    path = lock_file(engine, lock)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)


RECONCILE_LOCK = Lock("reconcile", 72419)  # one reconciler pass at a time (scheduler.reconcile)
_JOB_LISTING_KEYS = 1 << 40  # job N's listing lock is this + N: clear of the fixed ids above


def job_listing_lock(job_id: int) -> Lock:
    """Held by whoever lists a job's source: its submitter, or a resume."""
    return Lock(f"job-{job_id}-listing", _JOB_LISTING_KEYS + job_id)
