"""Is any worker consuming a queue? So a job that nothing reads says "waiting for a worker"
(`submit`, `jobs show`, the API and the pages) instead of sitting at 0% in silence.

On the embedded queue the answer is the pid files of this machine's workers (scheduler.workers):
cheap, exact. With a broker server it is Celery's `inspect().active_queues()` broadcast,
which costs up to a second when nobody answers, so its answer is kept for a few seconds.
"""

import time

from db.settings import get_settings
from scheduler import workers

INSPECT_TIMEOUT = 1.0  # seconds a broadcast waits for workers' replies
KEEP_ANSWER = 10.0  # seconds a broker's answer is reused (a page polls once a second)
_answers: dict[tuple[str, str], tuple[float, bool | None]] = {}


WAITING_FOR_WORKER = "waiting for a worker"


def no_worker_message(queue: str, program: str = "happysad") -> str:
    """Why a job waits and what to run so that `queue` gets a worker."""
    return (f"{WAITING_FOR_WORKER}: no worker consumes the {queue} queue; start one "
            f"(`{program} worker`, in another terminal or on another machine)")


def job_waiting_reason(status: str, program: str = "happysad") -> str | None:
    """Why an active job makes no progress, when no worker consumes the labelling queue."""
    from db.tables import JOB_ACTIVE
    from worker.task_names import LABELLING_QUEUE

    if status in JOB_ACTIVE and workers_consuming(LABELLING_QUEUE) is False:
        return no_worker_message(LABELLING_QUEUE, program)
    return None


def workers_consuming(queue: str) -> bool | None:
    """True if a worker consumes `queue`, False if none does, None if it cannot be told (the
    broker did not answer): a caller then says nothing rather than something false."""
    settings = get_settings()
    if settings.embedded_broker:
        return bool(workers.running_workers(queue))
    key = (settings.broker_url or "", queue)
    now = time.monotonic()
    if key in _answers and now - _answers[key][0] < KEEP_ANSWER:
        return _answers[key][1]
    answer = _ask_broker(queue)
    _answers[key] = (now, answer)
    return answer


def _ask_broker(queue: str) -> bool | None:
    from scheduler.celery_app import sender_app

    try:
        replies = sender_app().control.inspect(timeout=INSPECT_TIMEOUT).active_queues() or {}
    except Exception:  # the broker is down: kombu's errors vary by transport
        return None
    return any(item.get("name") == queue for queues in replies.values() for item in queues or [])
