"""The embedded queue on a full disk (a 2 MB tmpfs the test mounts): `submit` says so in one
line, no half-written message is ever read, a worker never dies on a bad message file (it
moves it aside and says so), and the job whose batches could not be queued finishes once
space is freed (the outbox and the reconciler, which resumes its listing without waiting for
the listing deadline)."""

import os
import subprocess
import time
from pathlib import Path

import pytest

from db.settings import reset_settings
from tests.helpers.commands import assert_one_line_error, happysad
from tests.helpers.faults import job_status, report_rows, wait_restarting_workers
from tests.helpers.images import write_images
from tests.helpers.processes import log_text

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def can_mount() -> str | None:
    """Why a tmpfs cannot be mounted here, or None."""
    if os.geteuid() != 0:
        return "mounting a size-limited tmpfs needs root"
    probe = Path(f"/tmp/happysad-mount-probe-{os.getpid()}")
    probe.mkdir(exist_ok=True)
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)],
                              capture_output=True, text=True)
        if done.returncode:
            return f"mount -t tmpfs refused: {done.stderr.strip()}"
        subprocess.run(["umount", str(probe)], check=True)
        return None
    finally:
        probe.rmdir()


@pytest.fixture
def small_disk(tmp_path):
    reason = can_mount()
    if reason:
        pytest.skip(reason)
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)],
                   check=True)
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(folder: Path) -> Path:
    """Write a filler file until the disk is full; returns it (delete it to free the space)."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as file:
        try:
            while True:
                file.write(b"\0" * 4096)
        except OSError:
            pass
    return filler


def test_a_full_disk_loses_nothing(tmp_path, small_disk, postgres, monkeypatch,
                                   registered_baseline_model, start_worker):
    home = small_disk / "home"
    queue = home / "queue"
    queue.mkdir(parents=True)
    monkeypatch.setenv("HAPPYSAD_HOME", str(home))  # the queue lives on the small disk
    monkeypatch.setenv("HAPPYSAD_MODEL_STORE", str(tmp_path / "home" / "models"))
    monkeypatch.setenv("HAPPYSAD_RESEND_AFTER", "5")
    monkeypatch.setenv("HAPPYSAD_RECONCILE_INTERVAL", "2")
    # No waiting for the listing deadline: a listing stopped by a full disk is resumed as soon
    # as there is space (it used to stay `scanning` until this deadline).
    monkeypatch.setenv("HAPPYSAD_LISTING_DEADLINE", "3600")
    reset_settings()
    uris = write_images(tmp_path / "incoming", 40)
    # What an older writer left when the disk filled: an empty and a truncated message.
    (queue / "1_empty.labelling.msg").write_bytes(b"")
    (queue / "2_truncated.labelling.msg").write_bytes(b'{"body": "eyJ0YXNrIjog')
    filler = fill(small_disk)

    result = happysad("submit", str(tmp_path / "incoming"), "--batch-size", "4", check=False)
    job_id = 1  # the message names the job it made, and how it goes on (not "run it again",
    # which made a second job)
    assert_one_line_error(result, "no space left on device", "cannot write to the queue folder",
                          "No space left on device", f"job {job_id} is recorded",
                          f"jobs resume {job_id}`")
    assert "run it again" not in result.stderr
    assert not [name for name in os.listdir(queue) if name.endswith(".partial")]
    assert job_status(job_id) == "scanning"  # recorded in SQL, its first batch unsent
    fault_at = time.monotonic()

    filler.unlink()  # space is freed
    worker = start_worker("after-full-disk", concurrency=1, log_dir=tmp_path / "logs")
    worker.wait_ready()
    ended_at = wait_restarting_workers(job_id, [worker], start_worker, timeout=300)
    figures = report_rows("embedded queue on a full disk, then space freed", job_id, uris,
                          fault_at, ended_at)
    assert job_status(job_id) == "done"
    assert figures["written"] == figures["distinct"] == len(uris)
    quarantined = sorted(os.listdir(queue / "quarantine"))
    assert quarantined == ["1_empty.labelling.msg", "2_truncated.labelling.msg"]
    log = log_text(worker)
    assert "is not a readable message" in log and "Unrecoverable error" not in log
    assert worker.process.poll() is None  # the bad files did not kill it
