"""Keep a worker parent's own threads (the reconciler's passes, the heartbeat's beats) and
billiard's forks of pool processes apart.

A fork copies the whole process, its locks included, but only the thread that forks: a lock
that another thread held at that moment stays held in the child, by a thread that is not
there. What hung a replacement pool process (docs/benchmarks.md, "Recovery from faults") was
CPython's per-module import lock: the reconciler's first pass imports psycopg and alembic in
the parent; a pool process forked meanwhile found psycopg half imported and its lock taken,
and waited for ever at its first batch's `import psycopg` (py-spy: `_ModuleLock.acquire` under
`PGDialect_psycopg.import_dbapi`). A pass also takes the locks of connection pools and of
logging. So every pass and every beat holds the guard, and a fork of this process waits for
it (os.register_at_fork): no child starts in the middle of one.
"""

import contextlib
import logging
import os
import threading
from collections.abc import Iterator

# Longest a fork waits for a pass (usually well under a second; a database that does not
# answer costs its 10 s connect timeout a try). A pass stuck longer must not stop the worker
# from replacing its pool processes: the fork goes ahead, as it did before the guard.
FORK_WAIT = 60.0

logger = logging.getLogger(__name__)

_guard = threading.Lock()
_held_by_fork = False
_installed = False


@contextlib.contextmanager
def no_fork() -> Iterator[None]:
    """Around a reconciler pass or a heartbeat: a fork of this process waits until it ends."""
    with _guard:
        yield


def install() -> None:
    """Make this process's forks wait for the guard; once per process (hooks cannot be
    removed), from the thread that starts the reconciler."""
    global _installed
    if not _installed:
        os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                            after_in_child=_after_fork_in_child)
        _installed = True


def _before_fork() -> None:
    global _held_by_fork
    _held_by_fork = _guard.acquire(timeout=FORK_WAIT)
    if not _held_by_fork:
        logger.warning("forking during a reconciler pass or heartbeat that has run for more "
                       "than %s s", FORK_WAIT)


def _after_fork_in_parent() -> None:
    if _held_by_fork:
        _guard.release()


def _after_fork_in_child() -> None:
    """The child's copy of the guard is taken (by the fork, or by a pass that is not there):
    a new one."""
    global _guard
    _guard = threading.Lock()
