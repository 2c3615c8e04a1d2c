"""Scheduled retraining with real processes on Redis + PostgreSQL: two `happysad scheduler`
(beat) processes on a per-minute schedule whose last run was a few minutes ago (so the missed
slot is due at once, as after a beat restart) yield one run per slot and a new version; a job
running across a promotion finishes on its pinned version while the next job uses the new one,
on the same worker processes."""

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from db import queries
from db.session import session_scope
from db.settings import get_settings, reset_settings
from db.tables import JobBatch, RetrainRun
from tests.helpers.commands import happysad
from tests.helpers.jobs import wait_for_job_done
from tests.helpers.polling import wait_until
from tests.helpers.processes import stop_process
from trainer.sample_data import write_sample_dataset
from worker.task_names import LABELLING_QUEUE, TRAINING_QUEUE

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class BeatProcess:
    """A real `happysad scheduler` (Celery beat) in its own process group, logging to a file."""

    def __init__(self, name: str, log_dir: Path):
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{name}.log"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "happysad.cli", "scheduler", "--loglevel", "INFO"],
            stdout=open(self.log_path, "wb"), stderr=subprocess.STDOUT, env=dict(os.environ),
            start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def sends(self) -> int:
        return self.log().count("Sending due task nightly-retrain")

    def stop(self, timeout: float = 30) -> None:
        stop_process(self.process, timeout)  # beat releases its lock on the way out


@pytest.fixture
def start_beat(redis_url):
    """Start beat processes; all are stopped before the test's Redis db is emptied."""
    beats: list[BeatProcess] = []

    def start(name: str) -> BeatProcess:
        beat = BeatProcess(name, Path(os.environ["HAPPYSAD_HOME"]) / "logs")
        beats.append(beat)
        return beat

    yield start
    for beat in beats:
        beat.stop()


def schedule_missed_a_slot() -> None:
    """Store the retrain entry in redbeat as a beat that ran it a few minutes ago would have:
    Celery's crontab then finds a slot overdue and the first beat to hold the lock sends it at
    its first tick, instead of a fresh entry's wait for the next minute (up to 60 s)."""
    from redbeat import RedBeatSchedulerEntry

    from scheduler.beat import retrain_schedule
    from scheduler.celery_app import sender_app

    (name, definition), = retrain_schedule().items()
    RedBeatSchedulerEntry(name, definition["task"], definition["schedule"],
                          options=definition["options"], app=sender_app(),
                          last_run_at=datetime.now(UTC) - timedelta(minutes=3)).save()


def cron_runs() -> list[RetrainRun]:
    with session_scope() as session:
        return [run for run in queries.list_retrain_runs(session, limit=500)
                if run.slot.startswith("cron-")]


def test_two_schedulers_yield_one_run_per_slot_and_a_new_version(
        tmp_path, postgres, redis_url, registered_baseline_model, start_worker, start_beat,
        monkeypatch):
    train_data = tmp_path / "train"  # new data: the retrain cannot skip it as unchanged
    write_sample_dataset(train_data, per_class=12, image_size=32, seed=5)
    monkeypatch.setenv("HAPPYSAD_RETRAIN_CRON", "* * * * *")
    monkeypatch.setenv("HAPPYSAD_TRAIN_DATA", str(train_data))
    reset_settings()
    trainer = start_worker("trainer", queues=TRAINING_QUEUE)
    schedule_missed_a_slot()
    trainer.wait_ready()
    beats = [start_beat("beat-a"), start_beat("beat-b")]

    def trained():
        return next((r for r in cron_runs() if r.status != "running" and r.model_version), None)

    # The retrain takes production's recipe: the tiny baseline's (one epoch, 32 px) keeps it
    # short (the retrain task took 9 s here, 24 s with the default's face search and 30 epochs).
    run = wait_until(trained, "a scheduled retrain to produce a version", timeout=240, poll=1.0)
    assert run.status == "done" and run.model_version == registered_baseline_model + 1, run.reason
    assert run.source == str(train_data) and run.finished_at > run.started_at
    # The run says why it did or did not promote: compared with production, or held back first
    # by the majority gate (a tiny model of 24 drawings can be no better than one answer).
    assert (f"production v{registered_baseline_model}" in run.reason
            or "no better than always answering" in run.reason), run.reason
    with session_scope() as session:
        version = queries.get_model_version(session, run.model_version)
        assert version.dataset_fingerprint == run.dataset_fingerprint
        assert version.architecture == "baseline" and version.params["epochs"] == 1
        assert version.image_size == 32

    for beat in beats:
        beat.stop()
    sends = [beat.sends() for beat in beats]
    # One beat held redbeat's lock and sent; the other waited for it and never sent.
    assert sorted(sends)[0] == 0 and sum(sends) >= 1, sends
    assert sum("beat: Acquired lock" in beat.log() for beat in beats) == 1
    wait_until(lambda: len(cron_runs()) >= sum(sends)
               and all(r.status != "running" for r in cron_runs()),
               "the sent retrains to finish", timeout=120, poll=1.0)
    runs = cron_runs()
    assert len({r.slot for r in runs}) == len(runs) == sum(sends)  # one run per slot
    assert "duplicate delivery" not in trainer.log_path.read_text(errors="replace")
    later = [r for r in runs if r.id > run.id]
    assert all(r.status == "skipped" and "unchanged" in r.reason for r in later)


def test_a_running_job_keeps_its_version_across_a_promotion(
        tmp_path, postgres, redis_url, registered_baseline_model, tiny_baseline_training,
        start_worker, monkeypatch):
    """On the tutorial's CNN: which version a job runs does not depend on the recipe."""
    # This test is the submitter, by hand and without its listing lock: the reconciler must
    # not take the job's listing for a dead submitter's while the test sends its batches.
    monkeypatch.setenv("HAPPYSAD_LISTING_DEADLINE", "3600")
    from scheduler.celery_app import sender_app
    from scheduler.submit import iter_batches
    from tests.helpers.jobs import submit
    from trainer.registry import register
    from trainer.storage import open_storage
    from worker.task_names import CLASSIFY_BATCH_TASK

    new_version = register(tiny_baseline_training, promote="never", settings=get_settings(),
                           sessions=session_scope).version
    folder = tmp_path / "incoming"
    write_sample_dataset(folder, per_class=8, image_size=32, seed=3, labelled=False)
    worker = start_worker("labeller", concurrency=1, queues=LABELLING_QUEUE)
    worker.wait_ready()
    processes = worker.children()

    # Job 1 is pinned to the old version; half its batches are sent and done before the
    # promotion, the other half after it: deterministically a job running across a promotion.
    storage = open_storage(str(folder))
    skipped = [0]
    batches = list(iter_batches(storage, 2, skipped))
    half = len(batches) // 2
    with session_scope() as session:
        job_id = queries.create_job(session, storage.root, registered_baseline_model, 2).id
    app = sender_app()
    for index in range(half):
        app.send_task(CLASSIFY_BATCH_TASK, args=[job_id, index, batches[index]])
    wait_until(lambda: batches_done(job_id) == half, "the first half to be classified",
               timeout=120, poll=0.3)

    happysad("models", "promote", str(new_version), "--reason", "challenger")
    after = submit(str(folder), batch_size=2)  # submitted after: the new version
    with session_scope() as session:
        queries.seal_job(session, job_id, sum(map(len, batches)), len(batches), skipped[0])
    for index in range(half, len(batches)):
        app.send_task(CLASSIFY_BATCH_TASK, args=[job_id, index, batches[index]])

    wait_for_job_done(job_id, timeout=120)
    wait_for_job_done(after.job_id, timeout=120)
    assert after.model_version == new_version
    assert versions_used(job_id) == {registered_baseline_model}
    assert versions_used(after.job_id) == {new_version}
    with session_scope() as session:
        promoted_at = queries.promotion_history(session)[-1].at
        finished = session.scalars(select(JobBatch.finished_at)
                                   .where(JobBatch.job_id == job_id)).all()
    assert sum(at > promoted_at for at in finished) == len(batches) - half
    assert worker.children() == processes  # no restart: the same process loaded both


def batches_done(job_id: int) -> int:
    with session_scope() as session:
        return queries.get_job(session, job_id).batches_done


def versions_used(job_id: int) -> set[int]:
    with session_scope() as session:
        return {p.model_version for p in queries.iter_predictions(session, job_id)}
