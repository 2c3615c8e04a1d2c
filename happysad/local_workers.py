"""On the embedded queue, a command that waits for work starts local workers if none runs,
shares them with every other waiter on this machine, and starts them again if they vanish, so
a wait never outlives its workers and no waiter strands another.

Each waiter holds a lease (a file with its pid under HAPPYSAD_HOME/run/); the workers started
for waiters are named in one pid file; joining, restarting and leaving happen under one file
lock, and the last waiter to leave stops those workers (never a worker someone else started).
Three `submit --wait` at once used to strand two: the first stopped the workers it had started
when its own job ended, and the others gave up with their jobs half done.
"""

import contextlib
import fcntl
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from db.errors import Unavailable
from db.settings import get_settings
from happysad import output

MAX_RESTARTS = 3  # workers that keep dying are a fault to report, not to retry forever


class WorkersGone(Unavailable):
    """Nobody is left to do the work a command waits for; the message says what to do."""


@dataclass
class SharedWorkers:
    """The local workers of one queue, shared by the waiters of this machine."""

    queue: str
    concurrency: int
    log_path: Path
    process: subprocess.Popen | None = field(default=None, repr=False)  # if this one started it

    def _path(self, name: str) -> Path:
        """A file of HAPPYSAD_HOME/run/ for this queue: waiters-Q.lock, started-Q.pid,
        waiter-Q-PID.lease."""
        folder = get_settings().home_folder("run")
        folder.mkdir(parents=True, exist_ok=True)
        return folder / name.replace("Q", self.queue, 1)

    @property
    def _lease(self) -> Path:
        return self._path(f"waiter-Q-{os.getpid()}.lease")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self._path("waiters-Q.lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _started_pid(self) -> int | None:
        try:
            return int(self._path("started-Q.pid").read_text())
        except (OSError, ValueError):
            return None

    def _pid_alive(self, pid: int | None) -> bool:
        from worker.identity import process_alive

        if pid is None:
            return False
        if self.process is not None and self.process.pid == pid:
            return self.process.poll() is None  # our own child: reaped, not a zombie
        return process_alive(pid)

    def alive(self) -> bool:
        from scheduler import workers

        ours_gone = self.process is not None and self.process.poll() is not None
        others = [pid for pid in workers.running_workers(self.queue)
                  if not (ours_gone and pid == self.process.pid)]  # a zombie still "runs"
        return bool(others) or self._pid_alive(self._started_pid())

    def _leases(self) -> list[Path]:
        return list(self._lease.parent.glob(f"waiter-{self.queue}-*.lease"))

    def _ensure_running(self) -> bool:
        """Start workers unless some consume the queue (or are starting); under the lock."""
        from scheduler import workers

        if self.alive():
            return False
        self.process = workers.start_local_workers(self.concurrency, self.log_path, self.queue)
        self._path("started-Q.pid").write_text(str(self.process.pid))
        return True

    def join(self) -> bool:
        """Take a lease and make sure workers run; True if this call started them."""
        with self._locked():
            self._lease.write_text(str(os.getpid()))
            return self._ensure_running()

    def restart(self) -> bool:
        with self._locked():
            return self._ensure_running()

    def leave(self) -> None:
        """Give the lease back; the last waiter out stops the workers started for waiters."""
        from worker.identity import process_alive

        with self._locked():
            self._lease.unlink(missing_ok=True)
            for lease in self._leases():  # a waiter killed without leaving
                with contextlib.suppress(OSError, ValueError):
                    if not process_alive(int(lease.read_text())):
                        lease.unlink(missing_ok=True)
            if self._leases():
                return  # others still wait on these workers
            pid = self._started_pid()
            self._path("started-Q.pid").unlink(missing_ok=True)
            if self._pid_alive(pid):
                self._stop(pid)

    def _stop(self, pid: int, timeout: float = 30) -> None:
        """Warm shutdown (finish the current batch), then force if it does not stop in time."""
        from scheduler.workers import stop_local_workers

        if self.process is not None and self.process.pid == pid:
            return stop_local_workers(self.process, timeout)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self._pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if self._pid_alive(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


@dataclass
class WorkerWatch:
    """What a waiting command checks between polls: workers still consume its queue."""

    queue: str
    shared: SharedWorkers | None = None  # None: a broker server, whose workers are elsewhere
    restarts: int = 0

    def check(self) -> None:
        if self.shared is None or self.shared.alive():
            return
        if self.restarts >= MAX_RESTARTS:
            raise WorkersGone(f"the local workers on {self.queue} exited {self.restarts + 1} "
                              f"times (log: {self.shared.log_path}); the job is kept: start a "
                              f"worker (`happysad worker --queues {self.queue}`) or "
                              "`happysad jobs resume`")
        self.restarts += 1
        if self.shared.restart():
            output.say(f"the local workers on {self.queue} exited: started them again (log: "
                       f"{self.shared.log_path})", to_stderr=True)


@contextlib.contextmanager
def local_workers_for(queues: str) -> Iterator[WorkerWatch]:
    """On the embedded queue, share local workers on `queues` with the other waiters for the
    duration, starting them if nobody consumes it; with a broker server, the operator's
    workers do the work."""
    from worker.task_names import TRAINING_QUEUE

    settings = get_settings()
    if not settings.embedded_broker:
        yield WorkerWatch(queues)
        return
    concurrency = 1 if queues == TRAINING_QUEUE else settings.concurrency()
    shared = SharedWorkers(queues, concurrency, settings.home_folder("logs") / "local-worker.log")
    if shared.join():
        output.say(f"no worker running on {queues}: starting {concurrency} local worker "
                   f"process(es) (log: {shared.log_path})", to_stderr=True)
    try:
        yield WorkerWatch(queues, shared)
    finally:
        shared.leave()
