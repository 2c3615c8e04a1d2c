"""Engine and sessions: made lazily, once per process, with the schema migrated on first use.

A Celery worker forks its children; an engine made before the fork would share sockets with
them. So the engine is keyed by the process id and built on first use in each process.
"""

import contextlib
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from db.errors import Unavailable
from db.locks import MIGRATION_LOCK, Lock, held_lock
from db.settings import get_settings, mask_url

_engines: dict[tuple[int, str], Engine] = {}

# A way to open transactions, for library code that needs several (each step committed on its
# own, so a crash loses nothing): the entry point passes `session_scope`, tests may pass theirs.
Sessions = Callable[[], AbstractContextManager[Session]]


class DatabaseUnavailable(Unavailable):
    """The configured database cannot be reached or opened."""


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets readers (the CLI, reports) run while a worker writes; busy_timeout makes writers
    # from several worker processes wait for each other instead of failing with "locked".
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


# The server's side of our sessions, set per session (libpq `options`), whatever the server's
# own configuration: a client host that vanished without closing its connections (its network
# cut, powered off) is dropped within about a minute, and with it the locks its sessions held
# (the reconciler's advisory lock, the job row an unfinished batch write had updated). With the
# defaults the kernel's keepalive (2 h) keeps them, and every worker waits behind them
# (tests/integration/test_multi_host.py). Keepalives cover an idle connection; tcp_user_timeout
# one whose last reply was never acknowledged.
SERVER_SIDE_TIMEOUTS = ("-c tcp_keepalives_idle=30 -c tcp_keepalives_interval=10 "
                        "-c tcp_keepalives_count=3 -c tcp_user_timeout=60000")


def build_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        database = url.split("///", 1)[-1]
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    # pre_ping replaces connections that died while the pool held them (a restarted database).
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5,
                         connect_args={"connect_timeout": 10, "options": SERVER_SIDE_TIMEOUTS})


def get_engine() -> Engine:
    """The process's engine for the configured database, migrated to the newest schema."""
    url = get_settings().effective_database_url
    key = (os.getpid(), url)
    if key not in _engines:
        try:
            engine = build_engine(url)
        except (ArgumentError, ImportError) as error:  # unparseable, or a driver not installed
            raise DatabaseUnavailable(
                f"cannot use the database URL {mask_url(url)!r}: {error}") from None
        try:
            upgrade_schema(engine)
        except OperationalError as error:
            engine.dispose()
            raise DatabaseUnavailable(
                f"cannot reach the database at {mask_url(url)}: {error.orig}"
            ) from None
        _engines[key] = engine
    return _engines[key]


def forget_inherited_engines() -> None:
    """In a forked child: drop the parent's engines without closing their connections, which
    the parent still uses (closing them here would end the parent's sessions)."""
    for key in [key for key in _engines if key[0] != os.getpid()]:
        _engines.pop(key).dispose(close=False)


def dispose_engines() -> None:
    """Close every engine of this process (tests, and before a fork)."""
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()


@contextlib.contextmanager
def try_lock(lock: Lock) -> Iterator[bool]:
    """`held_lock` on the configured database, never waiting: yields whether it is held."""
    with held_lock(get_engine(), lock, wait=False) as held:
        yield held


@contextlib.contextmanager
def session_scope() -> Iterator[Session]:
    """One transaction: commit on success, roll back on error. Entry points own it."""
    session = sessionmaker(get_engine(), expire_on_commit=False)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _alembic_config(engine: Engine):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.attributes["engine"] = engine
    return config


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision(engine: Engine) -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config(engine)).get_current_head()


def upgrade_schema(engine: Engine) -> None:
    """Bring the schema to the newest migration; a no-op when it is there already."""
    head = head_revision(engine)
    if current_revision(engine) == head:
        return
    from alembic import command

    with held_lock(engine, MIGRATION_LOCK):  # one process migrates; the others then see head
        if current_revision(engine) != head:
            command.upgrade(_alembic_config(engine), "head")
