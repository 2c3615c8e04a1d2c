"""Ask for a retrain now (`happysad retrain`), the same task beat sends on schedule."""

import time
from datetime import UTC, datetime

from db import queries
from db.errors import WaitTimeout
from db.session import Sessions
from db.settings import Settings
from db.tables import RUN_RUNNING, RetrainRun


def request_retrain(settings: Settings, force: bool = False) -> str:
    """Send a retrain for a slot of its own; returns the slot name to follow."""
    from scheduler.celery_app import sender_app
    from scheduler.submit import check_broker
    from worker.task_names import RETRAIN_TASK, TRAINING_QUEUE

    app = sender_app()
    check_broker(app, settings)
    slot = f"manual-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S.%f')}"
    app.send_task(RETRAIN_TASK, kwargs={"slot": slot, "force": force}, queue=TRAINING_QUEUE)
    return slot


def wait_for_run(slot: str, sessions: Sessions, timeout: float | None = None, poll: float = 1.0,
                 check_workers=None) -> RetrainRun:
    """The slot's run once it ended (looked for in a short transaction each poll);
    `check_workers()` raises if nobody is left to run it."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        with sessions() as session:
            run = queries.retrain_run_for_slot(session, slot)
            if run is not None and run.status != RUN_RUNNING:
                return run
        if deadline is not None and time.monotonic() > deadline:
            raise WaitTimeout(f"retrain {slot} did not finish within {timeout:.0f}s")
        if check_workers is not None:
            check_workers()
        time.sleep(poll)
