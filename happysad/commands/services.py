"""`happysad worker` and `happysad scheduler`: the long-running Celery processes, exec'd."""

import os
from typing import Annotated

import typer

from worker.task_names import ALL_QUEUES


def worker(concurrency: Annotated[int | None, typer.Option(help="Processes (default: cores).")] = None,
           autoscale: Annotated[str | None, typer.Option(help="MAX,MIN processes.")] = None,
           queues: Annotated[str, typer.Option(help=f"Comma-separated queues: {ALL_QUEUES}.")] = ALL_QUEUES,
           loglevel: Annotated[str | None, typer.Option(help="Celery log level (default: HAPPYSAD_LOG_LEVEL).")] = None) -> None:
    """Start a Celery worker (same as `celery -A scheduler.worker_app worker`)."""
    from db.settings import get_settings
    from scheduler.workers import worker_command

    settings = get_settings()
    command = worker_command(concurrency or settings.concurrency(), queues,
                             loglevel or settings.log_level, autoscale)
    os.execv(command[0], command)


def scheduler(loglevel: Annotated[str | None, typer.Option(help="Celery log level (default: HAPPYSAD_LOG_LEVEL).")] = None) -> None:
    """Run Celery beat with the retrain schedule (HAPPYSAD_RETRAIN_CRON)."""
    from db.settings import get_settings
    from scheduler.beat import beat_command

    command = beat_command(loglevel or get_settings().log_level)
    os.execv(command[0], command)
