"""What `celery -A scheduler.beat_app beat` loads: the shared app with the retrain schedule."""

from scheduler.beat import configure_beat
from scheduler.celery_app import app

configure_beat()

__all__ = ["app"]
