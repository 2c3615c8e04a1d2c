"""A test-only Celery app: the real one, with every batch held for HAPPYSAD_TEST_BATCH_SECONDS
before it is classified. Started as `celery -A tests.helpers.paced_app worker` by the fault
tests that need batches still queued, or still being worked on, when the fault strikes: the
tiny baseline model classifies a batch in milliseconds, and a sleep costs no CPU where the
default model's face search would cost seconds of it a batch. Production code knows nothing
of it.
"""

import os
import time

from celery.signals import worker_process_init

from scheduler.worker_app import app

BATCH_SECONDS = "HAPPYSAD_TEST_BATCH_SECONDS"  # the environment variable
APP = "tests.helpers.paced_app"


@worker_process_init.connect
def _hold_each_batch(**_kwargs) -> None:
    from worker import classify

    seconds = float(os.environ.get(BATCH_SECONDS, "0"))
    classify_batch = classify.classify_batch

    def held(*args, **kwargs):
        time.sleep(seconds)
        return classify_batch(*args, **kwargs)

    classify.classify_batch = held


__all__ = ["app"]
