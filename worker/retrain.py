"""The scheduled retrain run, a worker's job: once per scheduled slot, at most one at a time,
skipped when the data has not changed, gated on promotion by champion against challenger
(trainer.promotion.promotion_decision). The task in worker.tasks calls `run_retrain`.

Imports stay light (no NumPy, OpenCV or TensorFlow): beat imports the cron parser from here.
"""

import logging
from dataclasses import fields
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from db import queries
from db.errors import InvalidInput
from db.session import Sessions
from db.settings import Settings
from db.tables import RUN_DONE, RUN_FAILED, RUN_SKIPPED, RetrainRun
from trainer.training import Training, training_lock

logger = logging.getLogger(__name__)

ABANDONED_REASON = ("the run stopped without an outcome (its worker died); one run per slot: "
                    "not rerun")


def retrain_crontab(cron: str):
    """HAPPYSAD_RETRAIN_CRON's five fields as Celery's crontab: the one parse of the cron text,
    for beat's schedule (scheduler.beat) and for the slots below, so the two always agree
    (including Celery's AND of day-of-month and day-of-week)."""
    from celery.schedules import crontab

    minute, hour, day_of_month, month, day_of_week = cron.split()
    return crontab(minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month,
                   day_of_week=day_of_week)


def previous_fire_time(cron: str, timezone: str, now: datetime | None = None) -> datetime:
    """The latest time at or before `now` that the five-field cron expression names."""
    schedule = retrain_crontab(cron)
    zone = ZoneInfo(timezone)
    now = (now or datetime.now(zone)).astimezone(zone).replace(second=0, microsecond=0)
    for days_back in range(0, 366 * 4 + 1):  # 29 February recurs within four years
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
    raise InvalidInput(f"HAPPYSAD_RETRAIN_CRON {cron!r} never fires")


def cron_slot(cron: str, timezone: str, now: datetime | None = None) -> str:
    """The name of the scheduled slot due at `now`: every sender of that slot agrees on it."""
    return "cron-" + previous_fire_time(cron, timezone, now).isoformat()


def retrain_params(session):
    """Retrain with the production model's recipe, so the gate compares like with like."""
    from trainer.train import TrainingParams

    production = queries.production_model_version(session)
    if production is None:
        return TrainingParams()
    known = {field.name for field in fields(TrainingParams)}
    return TrainingParams(**{name: value for name, value in production.params.items()
                             if name in known})


def close_abandoned_runs(session, slot: str | None = None, before_id: int | None = None) -> None:
    """Mark runs still "running" as failed. Called only by the lock's holder, so no other run
    is in progress: their worker died (a crash, a kill). Their slot is not run again."""
    for run_id, run_slot in queries.fail_running_retrain_runs(session, ABANDONED_REASON,
                                                              slot=slot, before_id=before_id):
        logger.warning("retrain run %s (%s) was abandoned by its worker", run_id, run_slot)


def finish_run(sessions: Sessions, run_id: int, status: str, reason: str,
               **fields_) -> RetrainRun:
    with sessions() as session:
        queries.finish_retrain_run(session, run_id, status, reason, **fields_)
        return session.get(RetrainRun, run_id)


def run_retrain(slot: str | None = None, force: bool = False, *, settings: Settings,
                sessions: Sessions) -> RetrainRun | None:
    """Run (or skip) the retrain for a slot; returns its row, or None for a duplicate delivery.

    `slot` None means the cron slot due now (a message sent without one). Each step (the claim,
    the reads, the outcome) is a transaction of its own from `sessions`: none is open while the
    model trains.
    """
    slot = slot or cron_slot(settings.retrain_cron, settings.timezone)
    source = settings.train_data or ""
    with training_lock(wait=False) as training:
        with sessions() as session:
            run = queries.claim_retrain_slot(session, slot, source)
            run_id = run.id if run is not None else None
            if run_id is None:
                logger.info("retrain slot %s already has a run: duplicate delivery ignored", slot)
                if training.held:  # a redelivery after its worker died: say so on the row
                    close_abandoned_runs(session, slot=slot)
                return None
            if training.held:
                close_abandoned_runs(session, before_id=run_id)
        if not training.held:
            return finish_run(sessions, run_id, RUN_SKIPPED, "another retrain is running (at "
                              "most one at a time)")
        return train_and_register(training, run_id, slot, force, settings, sessions)


def train_and_register(training: Training, run_id: int, slot: str, force: bool,
                       settings: Settings, sessions: Sessions) -> RetrainRun:
    """The run itself: fingerprint (HAPPYSAD_TRAIN_DATA and the reviewed images), skip if
    unchanged, train, register behind the gate."""
    from db.queries.reviews import reviewed_images
    from trainer.corrections import read_corrections, training_fingerprint
    from trainer.dataset import source_fingerprint

    source = settings.train_data or ""
    if not source:
        return finish_run(sessions, run_id, RUN_FAILED,
                          "HAPPYSAD_TRAIN_DATA is not set: nothing to train on")
    try:
        with sessions() as session:
            reviewed = reviewed_images(session)
        corrections, unreadable = read_corrections(reviewed)
        for item in unreadable:
            logger.warning("reviewed image left out of the retrain: %s: %s", item["uri"],
                           item["reason"])
        fingerprint = training_fingerprint(source_fingerprint(source), corrections)
        with sessions() as session:
            versions = queries.list_model_versions(session)
            latest = versions[-1].dataset_fingerprint if versions else None
            params = retrain_params(session)
        if not force and fingerprint == latest:
            return finish_run(sessions, run_id, RUN_SKIPPED, "training data and reviews "
                              f"unchanged since the last version (v{versions[-1].version})",
                              fingerprint=fingerprint)
        trained = training.train_and_register(source, params, "auto", settings=settings,
                                              sessions=sessions, corrections=corrections)
        result, registration = trained.result, trained.registration
    except Exception as error:  # recorded on the run: the operator reads why in `retrain list`
        logger.exception("retrain %s failed", slot)
        return finish_run(sessions, run_id, RUN_FAILED, f"{type(error).__name__}: {error}")
    return finish_run(sessions, run_id, RUN_DONE, registration.reason,
                      fingerprint=result.data.fingerprint, model_version=registration.version,
                      promoted=registration.promoted)
