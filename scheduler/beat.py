"""The retrain schedule for Celery beat: HAPPYSAD_RETRAIN_CRON in HAPPYSAD_TIMEZONE.

With Redis, beat uses celery-redbeat, whose lock lets exactly one of several beat processes
send; on the embedded queue, beat keeps its state in a file under HAPPYSAD_HOME.
"""

from db.settings import get_settings
from worker.celery_app import app


def retrain_schedule() -> dict:
    from celery.schedules import crontab

    settings = get_settings()
    minute, hour, day_of_month, month, day_of_week = settings.retrain_cron.split()
    return {
        "nightly-retrain": {
            "task": "happysad.retrain",
            "schedule": crontab(minute=minute, hour=hour, day_of_month=day_of_month,
                                month_of_year=month, day_of_week=day_of_week),
            "options": {"queue": "training"},
        }
    }


def configure_beat() -> None:
    app.conf.beat_schedule = retrain_schedule()


def beat_command(loglevel: str = "INFO") -> list[str]:
    import sys

    settings = get_settings()
    command = [sys.executable, "-m", "celery", "-A", "scheduler.beat_app", "beat",
               f"--loglevel={loglevel}"]
    if settings.embedded_broker:
        (settings.home / "run").mkdir(parents=True, exist_ok=True)
        command.append(f"--schedule={settings.home / 'run' / 'beat-schedule'}")
    return command
