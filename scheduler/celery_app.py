"""The Celery app: its configuration, and an app per broker for senders. Workers load it
through scheduler.worker_app, beat through scheduler.beat_app; flower and `celery inspect`
point `-A` at this module.

Configuration is read from the settings lazily, when Celery first needs it, never at import.
With no HAPPYSAD_BROKER_URL the queue is a folder under HAPPYSAD_HOME (kombu's filesystem
transport): no server, and several worker processes on one machine share it.
"""

import os

from celery import Celery

from db.settings import Settings, get_settings
from worker.task_names import LABELLING_QUEUE, RETRAIN_TASK, TRAINING_QUEUE


def celery_config(settings: Settings) -> dict:
    config = {
        # JSON only: a pickle payload from the broker could run code in the worker.
        "task_serializer": "json", "result_serializer": "json", "accept_content": ["json"],
        "task_ignore_result": True,  # progress and results live in SQL, not in a result backend
        # Acknowledge after the batch is written, and requeue if the worker process dies, so a
        # crash loses no batch; the SQL writes are idempotent, so redelivery duplicates nothing.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # One batch waiting per process besides the one running, so a process never idles
        # between batches: with 1, the next batch is fetched only after the ack, and the file
        # transport then polls up to polling_interval later, a gap measured as idle time.
        # Two is still little to hoard (https://docs.celeryq.dev/en/stable/userguide/optimizing.html#prefetch-limits).
        "worker_prefetch_multiplier": 2,
        "task_default_queue": LABELLING_QUEUE,
        "task_routes": {RETRAIN_TASK: {"queue": TRAINING_QUEUE}},
        "broker_connection_retry_on_startup": True,
        "task_publish_retry_policy": {"max_retries": 3, "interval_start": 0.5,
                                      "interval_step": 0.5},
        "timezone": settings.timezone,
        "worker_hijack_root_logger": False,
        "worker_redirect_stdouts": False,
    }
    if settings.embedded_broker:
        folder = str(settings.queue_folder)
        os.makedirs(folder, exist_ok=True)
        config |= {
            "broker_url": "filesystem://",
            # kombu's filesystem transport, written then renamed, with bad files moved aside.
            "broker_transport": "scheduler.queue_files:Transport",
            "broker_transport_options": {"data_folder_in": folder, "data_folder_out": folder,
                                         "control_folder": os.path.join(folder, "control"),
                                         "polling_interval": 0.2},
            # The filesystem transport has no broadcast: no remote control, mingle or gossip.
            "worker_enable_remote_control": False,
        }
    else:
        config |= {
            "broker_url": settings.broker_url,
            # A batch not acknowledged within this time is handed to another worker: it must be
            # longer than the slowest batch (https://docs.celeryq.dev/en/stable/getting-started/backends-and-brokers/redis.html#visibility-timeout).
            "broker_transport_options": {
                "visibility_timeout": settings.visibility_timeout,
                # kombu sweeps for unacknowledged messages past their timeout only every
                # interval x throttle seconds (10 x 10 by default): sweep at most every 10 s so
                # a dead worker's batches come back soon after the visibility timeout.
                "unacked_restore_interval": max(1, min(10, settings.visibility_timeout // 2)),
                "unacked_restore_throttle": 1,
            },
            # On Redis the next batch arrives within a round trip of the ack (BRPOP, no polling
            # gap), so no batch waits reserved behind a running one: a worker killed then holds
            # only batches it started, each naming its process, which the reconciler sends
            # again at once (a reserved batch would wait out the visibility timeout).
            "worker_prefetch_multiplier": 1,
            "beat_scheduler": "redbeat.RedBeatScheduler",
            "redbeat_redis_url": settings.broker_url,
            # Empty, as redbeat 2.4 used: the broker's transport options above are kombu's,
            # not the Redis client's. Set, so redbeat stops warning at each start that it
            # falls back to broker_transport_options (it will stop in 2.5).
            "redbeat_redis_options": {},
            "redbeat_lock_timeout": 300,
            "broker_connection_timeout": 5,
        }
    return config


def create_celery_app(set_as_current: bool = True) -> Celery:
    # The tasks (worker.tasks, shared tasks: they import no app) are loaded by name, by a
    # worker only: a sender sends by name and never imports them.
    celery = Celery("happysad", include=["worker.tasks"], set_as_current=set_as_current)
    celery.add_defaults(lambda: celery_config(get_settings()))  # evaluated on first use
    return celery


app = create_celery_app()

_senders: dict[tuple, Celery] = {}


def sender_app() -> Celery:
    """An app for sending tasks by name with the settings in force now.

    `app` reads its configuration once per process, which suits a worker; a process that sends
    (the CLI, tests) may see its settings change, so it gets one app per broker and home.
    """
    settings = get_settings()
    key = (settings.broker_url, str(settings.home))
    if key not in _senders:
        _senders[key] = create_celery_app(set_as_current=False)
    return _senders[key]
