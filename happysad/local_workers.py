"""On the embedded queue, a command that waits for work starts local workers if none runs,
and notices when they are gone, so a wait never outlives its workers."""

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from db.errors import Unavailable
from db.settings import get_settings
from happysad import output


class WorkersGone(Unavailable):
    """Nobody is left to do the work a command waits for; the message says what to do."""


@dataclass
class WorkerWatch:
    """What a waiting command checks between polls: its local workers are still there."""

    queue: str
    process: object = None  # the worker this command started, if it started one
    log_path: Path | None = None

    def check(self) -> None:
        from worker import local

        if not get_settings().embedded_broker:
            return  # workers on other machines: nothing to look at from here
        if self.process is not None and self.process.poll() is not None:
            raise WorkersGone(f"the local worker exited (code {self.process.returncode}, "
                              f"log: {self.log_path}); the job is kept: `happysad jobs resume`")
        if self.process is None and not local.running_workers(self.queue):
            raise WorkersGone(f"no worker consumes the {self.queue} queue on this machine any "
                              f"more: start one (`happysad worker --queues {self.queue}`)")


@contextlib.contextmanager
def local_workers_for(queues: str) -> Iterator[WorkerWatch]:
    """Start a worker on `queues` for the duration, if the queue is embedded and nobody
    consumes it; with a broker server, the operator's workers do the work."""
    from worker import local
    from worker.celery_app import TRAINING_QUEUE

    settings = get_settings()
    if not settings.embedded_broker or local.running_workers(queues):
        yield WorkerWatch(queues)
        return
    concurrency = 1 if queues == TRAINING_QUEUE else settings.concurrency()
    log_path = settings.home_folder("logs") / "local-worker.log"
    output.say(f"no worker running on {queues}: starting {concurrency} local worker "
               f"process(es) (log: {log_path})", to_stderr=True)
    process = local.start_local_workers(concurrency, log_path, queues)
    try:
        yield WorkerWatch(queues, process, log_path)
    finally:
        local.stop_local_workers(process)
