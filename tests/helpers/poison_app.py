"""A test-only Celery app: the real one, plus a poison pill. Started as
`celery -A tests.helpers.poison_app worker` by tests/integration/test_reliability.py.

In each pool process, a batch holding a file whose name contains HAPPYSAD_TEST_POISON_MARKER
kills that process during classification (after its attempt is counted), as a native decoder
crash would. Production code knows nothing of it.
"""

import os
import signal

from celery.signals import worker_process_init

from scheduler.worker_app import app

MARKER_VARIABLE = "HAPPYSAD_TEST_POISON_MARKER"


@worker_process_init.connect
def _swallow_the_pill(**_kwargs) -> None:
    from worker import classify

    marker = os.environ.get(MARKER_VARIABLE)
    classify_batch = classify.classify_batch

    def poisoned(job_id, batch_index, uris, *args, **kwargs):
        if marker and any(marker in uri.rsplit("/", 1)[-1] for uri in uris):
            os.kill(os.getpid(), signal.SIGKILL)
        return classify_batch(job_id, batch_index, uris, *args, **kwargs)

    classify.classify_batch = poisoned


__all__ = ["app"]
