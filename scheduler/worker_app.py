"""What `celery -A scheduler.worker_app worker` loads: the app, and the worker process's
wiring: the cores shared among its children, its pid file, the reconciler's timer thread, and
fresh settings and engines in every forked child."""

import os

from celery.signals import worker_init, worker_process_init, worker_ready, worker_shutdown

from db.settings import get_settings
from scheduler import reconcile, workers
from scheduler.celery_app import app


@worker_init.connect
def _before_fork(sender=None, **_kwargs) -> None:
    """In the worker's parent: share the cores among the child processes, record the worker,
    and keep TensorFlow's start-up lines out of the children's logs."""
    from trainer.tensorflow_startup import quiet_tensorflow_startup

    settings = get_settings()
    quiet_tensorflow_startup(settings.log_level)
    concurrency = getattr(sender, "concurrency", None) or 1
    # The children read their settings afresh (_in_child): the share is set for them as the
    # setting itself, which they read through Settings like any other.
    os.environ["HAPPYSAD_INFERENCE_THREADS"] = str(settings.threads_per_process(concurrency))
    workers.register_worker()


@worker_ready.connect
def _start_reconciler(sender=None, **_kwargs) -> None:
    """In the worker's parent, once its pool runs: the reconciler's timer thread."""
    from db.session import session_scope

    workers.register_worker(sorted(app.amqp.queues.consume_from))  # now with its queues
    reconcile.start_reconciler(app, get_settings(), session_scope,
                               getattr(sender, "hostname", None))


@worker_shutdown.connect
def _on_shutdown(**_kwargs) -> None:
    reconcile.stop_reconciler()
    workers.unregister_worker()


@worker_process_init.connect
def _in_child(**_kwargs) -> None:
    """In each forked child: fresh settings and engines; TensorFlow is first imported here."""
    from db.session import forget_inherited_engines
    from db.settings import reset_settings

    reset_settings()
    forget_inherited_engines()


__all__ = ["app"]
