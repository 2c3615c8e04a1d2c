"""A submitter killed mid-listing (SIGKILL, a big folder of tiny files, batch size 5) leaves a
job that `happysad jobs resume N` finishes, sending only what was not yet recorded; left
alone, a worker's reconciler resumes it after HAPPYSAD_LISTING_DEADLINE, or fails it with the
reason when its source is gone."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from db import queries
from db.session import session_scope
from db.settings import reset_settings
from db.tables import JobBatch
from tests.helpers.commands import happysad
from tests.helpers.faults import job_status, report_rows, wait_restarting_workers
from tests.helpers.images import encode
from tests.helpers.polling import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def tiny_image_folder(folder: Path, count: int) -> list[str]:
    """`count` names for one tiny PNG (hard links: a big folder, cheaply)."""
    import numpy as np

    folder.mkdir(parents=True)
    original = folder.parent / "original.png"
    original.write_bytes(encode(np.full((8, 8, 3), 128, np.uint8), ".png"))
    for index in range(count):
        os.link(original, folder / f"tiny_{index:05d}.png")
    root = os.path.realpath(folder)
    return [os.path.join(root, f"tiny_{index:05d}.png") for index in range(count)]


def recorded_batches(job_id: int) -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).where(JobBatch.job_id == job_id))


def newest_job() -> int | None:
    with session_scope() as session:
        jobs = queries.list_jobs(session, 1)
        return jobs[0].id if jobs else None


def kill_submitter_mid_listing(folder: Path, batch_size: int = 5,
                               after_batches: int = 40) -> tuple[int, float]:
    """Start `happysad submit`, SIGKILL it once `after_batches` batches are recorded."""
    process = subprocess.Popen([sys.executable, "-m", "happysad.cli", "submit", str(folder),
                                "--batch-size", str(batch_size)], env=dict(os.environ),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        job_id = wait_until(newest_job, "the job to be made", timeout=120, poll=0.01)
        wait_until(lambda: recorded_batches(job_id) >= after_batches, "batches recorded",
                   timeout=120, poll=0.01)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        return job_id, time.monotonic()
    finally:
        if process.poll() is None:
            process.kill()


@pytest.fixture
def labelling(postgres, redis_url, monkeypatch, registered_baseline_model, start_worker):
    def start(**settings):
        for name, value in settings.items():
            monkeypatch.setenv(name, value)
        reset_settings()
        worker = start_worker("labeller", concurrency=1)
        worker.wait_ready()
        return [worker]
    return start


def test_a_killed_submitter_is_resumed_by_jobs_resume(tmp_path, labelling, start_worker):
    workers = labelling(HAPPYSAD_RESEND_AFTER="5", HAPPYSAD_RECONCILE_INTERVAL="2",
                        HAPPYSAD_LISTING_DEADLINE="3600")  # no automatic resume here
    # As many images as the automatic case: the kill after 40 of 300 batches lands mid-listing
    # there too, and each image fewer is one fewer for the one worker to classify.
    uris = tiny_image_folder(tmp_path / "incoming", 1500)
    job_id, fault_at = kill_submitter_mid_listing(tmp_path / "incoming")
    recorded_at_kill = recorded_batches(job_id)
    time.sleep(3)
    assert job_status(job_id) == "scanning" and recorded_batches(job_id) == recorded_at_kill

    resumed = happysad("jobs", "resume", str(job_id), "--json")
    assert f'"new_batches": {300 - recorded_at_kill}' in resumed.stdout, resumed.stdout
    ended_at = wait_restarting_workers(job_id, workers, start_worker, timeout=900)
    figures = report_rows("submitter SIGKILLed mid-listing, then `jobs resume`", job_id, uris,
                          fault_at, ended_at, batches_recorded_at_kill=recorded_at_kill)
    assert job_status(job_id) == "done"
    assert figures["written"] == figures["distinct"] == len(uris)
    assert sorted(figures["rows"]) == sorted(uris)
    with session_scope() as session:
        job = queries.get_job(session, job_id)
        assert (job.total_images, job.batches_total) == (1500, 300)
        assert "jobs resume" in job.status_reason
    assert "nothing to resume" in happysad("jobs", "resume", str(job_id), check=False).stderr


def test_a_killed_submitter_is_resumed_automatically_after_the_deadline(
        tmp_path, labelling, start_worker):
    workers = labelling(HAPPYSAD_RESEND_AFTER="5", HAPPYSAD_RECONCILE_INTERVAL="2",
                        HAPPYSAD_LISTING_DEADLINE="8")
    uris = tiny_image_folder(tmp_path / "incoming", 1500)
    job_id, fault_at = kill_submitter_mid_listing(tmp_path / "incoming")
    ended_at = wait_restarting_workers(job_id, workers, start_worker, timeout=900)
    figures = report_rows("submitter SIGKILLed mid-listing, resumed automatically", job_id,
                          uris, fault_at, ended_at)
    assert job_status(job_id) == "done"
    assert figures["written"] == figures["distinct"] == len(uris)
    with session_scope() as session:
        reason = queries.get_job(session, job_id).status_reason
    assert "resumed automatically by labeller@" in reason, reason


def test_a_killed_submitter_whose_source_is_gone_fails_with_the_reason(
        tmp_path, labelling, start_worker):
    workers = labelling(HAPPYSAD_RESEND_AFTER="5", HAPPYSAD_RECONCILE_INTERVAL="2",
                        HAPPYSAD_LISTING_DEADLINE="8")
    tiny_image_folder(tmp_path / "incoming", 1500)
    job_id, fault_at = kill_submitter_mid_listing(tmp_path / "incoming")
    (tmp_path / "incoming").rename(tmp_path / "moved-away")  # the test's own files
    wait_restarting_workers(job_id, workers, start_worker, timeout=900)
    with session_scope() as session:
        job = queries.get_job(session, job_id)
        assert job.status == "failed" and job.finished_at is not None
        assert "could not be resumed: source not found" in job.status_reason, job.status_reason
    shown = json.loads(happysad("jobs", "show", str(job_id), "--json").stdout)
    assert shown["status"] == "failed" and "could not be resumed" in shown["status_reason"]


def test_jobs_resume_sends_a_batch_never_sent_whatever_the_queue_holds(
        tmp_path, postgres, redis_url, registered_baseline_model):
    """A submitter killed between recording a batch and sending it leaves a batch no message
    exists for. `jobs resume` used to send nothing while the queue held any message (a killed
    submitter's last batch then waited for the queue to drain and HAPPYSAD_RESEND_AFTER)."""
    import redis

    from db.queries import outbox
    from scheduler.celery_app import sender_app
    from scheduler.listing import iter_batches
    from scheduler.outbox import send_batch
    from trainer.storage import open_storage

    tiny_image_folder(tmp_path / "incoming", 25)
    storage = open_storage(str(tmp_path / "incoming"))
    with session_scope() as session:
        job_id = queries.create_job(session, storage.root, registered_baseline_model, 5).id
    batches = list(iter_batches(storage, 5, [0]))
    for index, uris in enumerate(batches[:4]):  # what submit does, batch after batch...
        send_batch(sender_app(), session_scope, job_id, index, uris)
    with session_scope() as session:  # ...until it is killed between commit and send
        outbox.record_batch_to_send(session, job_id, 4, batches[4])
    queue = redis.Redis.from_url(redis_url)
    assert queue.llen("labelling") == 4  # no worker runs: the queue is not empty

    resumed = json.loads(happysad("jobs", "resume", str(job_id), "--json").stdout)
    assert resumed["resent_batches"] == 1 and resumed["new_images"] == 0, resumed
    assert queue.llen("labelling") == 5
    with session_scope() as session:
        assert outbox.unsent_batches(session, job_id) == []
        sends = dict(session.execute(select(JobBatch.batch_index, JobBatch.sends)
                                     .where(JobBatch.job_id == job_id)).all())
        assert queries.get_job(session, job_id).total_images == 25
    assert sends == {0: 1, 1: 1, 2: 1, 3: 1, 4: 1}  # each sent once: nothing twice
