"""A retrain run: once per scheduled slot, skipped when the data has not changed, gated on
promotion by champion against challenger (see trainer.registry.promotion_decision)."""

import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from db import queries
from db.session import session_scope
from db.settings import get_settings
from db.tables import RetrainRun
from trainer.dataset import fingerprint_files, list_labelled_files
from trainer.registry import register
from trainer.storage import open_storage
from trainer.train import TrainingParams, train

logger = logging.getLogger(__name__)


def previous_fire_time(cron: str, timezone: str, now: datetime | None = None) -> datetime:
    """The latest time at or before `now` that the five-field cron expression names."""
    from celery.schedules import crontab

    minute, hour, day_of_month, month, day_of_week = cron.split()
    schedule = crontab(minute=minute, hour=hour, day_of_month=day_of_month,
                       month_of_year=month, day_of_week=day_of_week)
    zone = ZoneInfo(timezone)
    now = (now or datetime.now(zone)).astimezone(zone).replace(second=0, microsecond=0)
    for days_back in range(0, 366 * 4):
        day = (now - timedelta(days=days_back)).date()
        if (day.month not in schedule.month_of_year or day.day not in schedule.day_of_month
                or (day.isoweekday() % 7) not in schedule.day_of_week):
            continue
        for hour_value in sorted(schedule.hour, reverse=True):
            for minute_value in sorted(schedule.minute, reverse=True):
                candidate = datetime(day.year, day.month, day.day, hour_value, minute_value,
                                     tzinfo=zone)
                if candidate <= now:
                    return candidate
    raise ValueError(f"cron expression {cron!r} never fires")


def source_fingerprint(source: str) -> str:
    """The dataset fingerprint without decoding: the same hash training records."""
    storage = open_storage(source)
    _, files, _ = list_labelled_files(storage)
    return fingerprint_files([(uri[len(storage.root):].lstrip("/"), storage.read_bytes(uri))
                              for uri, _ in files])


def latest_fingerprint() -> str | None:
    with session_scope() as session:
        versions = queries.list_model_versions(session)
        return versions[-1].dataset_fingerprint if versions else None


def retrain_params() -> TrainingParams:
    """Retrain with the production model's recipe, so the gate compares like with like."""
    with session_scope() as session:
        production = queries.production_model_version(session)
        if production is None:
            return TrainingParams()
        params = production.params
    return TrainingParams(architecture=params.get("architecture", "baseline"),
                          epochs=params.get("epochs"), image_size=params.get("image_size"),
                          batch_size=params.get("batch_size", 32), seed=params.get("seed", 0))


def run_retrain(slot: str | None = None, force: bool = False) -> RetrainRun | None:
    """Run (or skip) the retrain for a slot; returns its row, or None for a duplicate."""
    settings = get_settings()
    if slot is None:
        slot = "cron-" + previous_fire_time(settings.retrain_cron, settings.timezone).isoformat()
    source = settings.train_data or ""
    with session_scope() as session:
        run = queries.claim_retrain_slot(session, slot, source)
        if run is None:
            logger.info("retrain slot %s already has a run: duplicate delivery ignored", slot)
            return None
        others = [r for r in queries.list_retrain_runs(session, limit=20)
                  if r.status == "running" and r.id != run.id]
        run_id = run.id

    def finish(status: str, reason: str, **fields) -> RetrainRun:
        with session_scope() as session:
            queries.finish_retrain_run(session, run_id, status, reason, **fields)
            return session.get(RetrainRun, run_id)

    if others:
        return finish("skipped", f"retrain run {others[0].id} is still running")
    if not source:
        return finish("failed", "HAPPYSAD_TRAIN_DATA is not set: nothing to train on")
    try:
        fingerprint = source_fingerprint(source)
        if not force and fingerprint == latest_fingerprint():
            return finish("skipped", "training data unchanged since the last version",
                          fingerprint=fingerprint)
        result = train(source, retrain_params())
        registration = register(result, promote="auto")
    except Exception as error:  # recorded on the run: the operator reads why in `retrain list`
        logger.exception("retrain %s failed", slot)
        return finish("failed", f"{type(error).__name__}: {error}")
    return finish("done", registration.reason, fingerprint=result.data.fingerprint,
                  model_version=registration.version, promoted=registration.promoted)
