"""The retrain schedule for Celery beat: HAPPYSAD_RETRAIN_CRON in HAPPYSAD_TIMEZONE.

With Redis, beat uses celery-redbeat (configured in scheduler.celery_app): the schedule below is
stored in Redis, and a lock lets exactly one of several beat processes send; the others wait
for the lock and take over if its holder dies. On the embedded queue, beat keeps its state in
a file under HAPPYSAD_HOME.

Every retrain message beat sends names its slot (the fire time), so the worker's one-run-per-
slot claim holds even for a message that waits in the queue past the next fire time.
"""

from celery.signals import beat_init, before_task_publish

from db.settings import get_settings
from scheduler.celery_app import app
from worker.retrain import cron_slot, retrain_crontab
from worker.task_names import RETRAIN_TASK, TRAINING_QUEUE

# Beat wakes at least this often. redbeat renews its lock on every wake-up, so the lock's
# timeout (redbeat_lock_timeout, 300 s) must be well above it, or a standby beat could take
# the lock while the active one sleeps (https://github.com/sibson/redbeat#configuration).
MAX_LOOP_SECONDS = 60


def retrain_schedule() -> dict:
    return {
        "nightly-retrain": {
            "task": RETRAIN_TASK,
            "schedule": retrain_crontab(get_settings().retrain_cron),
            "options": {"queue": TRAINING_QUEUE},
        }
    }


def stamp_slot(body=None, headers=None, **_kwargs) -> None:
    """Before beat publishes a retrain, write the slot it is due for into its kwargs."""
    if (headers or {}).get("task") != RETRAIN_TASK or not isinstance(body, tuple | list):
        return
    kwargs = body[1]  # message protocol 2: (args, kwargs, embed)
    if kwargs.get("slot") is None:
        settings = get_settings()
        kwargs["slot"] = cron_slot(settings.retrain_cron, settings.timezone)


def configure_beat() -> None:
    """Called once by the beat process (scheduler.beat_app), never by workers."""
    app.conf.beat_schedule = retrain_schedule()
    app.conf.beat_max_loop_interval = MAX_LOOP_SECONDS
    # No result backend: without this, beat would also schedule Celery's daily result cleanup.
    app.conf.result_expires = None
    before_task_publish.connect(stamp_slot, weak=False)
    beat_init.connect(_start_reconciler, weak=False)


def _start_reconciler(**_kwargs) -> None:
    """Beat runs the reconciler too (scheduler.reconcile), so lost batches are sent again even
    while every worker is between restarts; the lock keeps passes one at a time."""
    from db.session import session_scope
    from scheduler.reconcile import start_reconciler

    start_reconciler(app, get_settings(), session_scope)


def beat_command(loglevel: str = "INFO") -> list[str]:
    import sys

    settings = get_settings()
    command = [sys.executable, "-m", "celery", "-A", "scheduler.beat_app", "beat",
               f"--loglevel={loglevel}"]
    if settings.embedded_broker:
        run_folder = settings.home_folder("run")
        run_folder.mkdir(parents=True, exist_ok=True)
        command.append(f"--schedule={run_folder / 'beat-schedule'}")
    return command
