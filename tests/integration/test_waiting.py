"""Commands that wait never wait forever: `submit --wait` starts its local workers again
when they die, waiters at once share them (the last one out stops them), and `retrain --wait` beside a labelling-only local worker starts a training worker
rather than waiting for one that will never come."""

import json
import os
import subprocess
import sys

import pytest

from tests.helpers.commands import happysad
from tests.helpers.images import write_images
from tests.helpers.polling import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def submit_wait(folder, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "happysad.cli", "submit", str(folder),
                             "--batch-size", "4", "--wait", "--json"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_submit_wait_starts_its_local_workers_again_when_they_die(tmp_path,
                                                                registered_baseline_model):
    """It used to give up ("the local worker exited"), leaving its job half done."""
    write_images(tmp_path / "incoming", 200)
    # A batch the killed workers had taken comes back through the reconciler after
    # HAPPYSAD_RESEND_AFTER (120 s by default, waited out whenever the kill lands mid-batch).
    env = dict(os.environ, HAPPYSAD_WORKER_CONCURRENCY="1", HAPPYSAD_RESEND_AFTER="5",
               HAPPYSAD_RECONCILE_INTERVAL="2")
    waiting = submit_wait(tmp_path / "incoming", env)
    from scheduler.workers import running_workers

    pids = wait_until(running_workers, "the local worker to start", timeout=120)
    for pid in pids:
        os.killpg(os.getpgid(pid), 9)
    out, err = waiting.communicate(timeout=600)  # the liveness deadline: it must not hang
    assert waiting.returncode == 0 and "Traceback" not in err, err
    assert "exited: started them again" in err, err
    job = json.loads(out)
    assert job["status"] == "done" and job["classified"] == 200
    wait_until(lambda: not running_workers(), "the restarted workers to be stopped", timeout=60)


def test_concurrent_waiters_share_their_local_workers(tmp_path, registered_baseline_model):
    """Three `submit --wait` at once on the embedded default: the first to finish used to stop
    the workers it had started, and the other two exited 1 with their jobs stuck `running`."""
    from scheduler.workers import running_workers

    env = dict(os.environ, HAPPYSAD_WORKER_CONCURRENCY="1")
    sizes = [12, 120, 240]  # the first finishes long before the others
    waiters = []
    for index, size in enumerate(sizes):
        write_images(tmp_path / f"incoming-{index}", size)
        waiters.append(submit_wait(tmp_path / f"incoming-{index}", env))
    outcomes = [(waiter.wait(900), *waiter.communicate()) for waiter in waiters]
    for (code, out, err), size in zip(outcomes, sizes):
        assert code == 0 and "Traceback" not in err, err
        job = json.loads(out)
        assert job["status"] == "done" and job["classified"] == size, job
    assert sum("starting 1 local worker" in err for _, _, err in outcomes) == 1
    # The last one out stopped them: nothing is left running.
    wait_until(lambda: not running_workers(), "the local workers to be stopped", timeout=60)


def test_retrain_wait_beside_a_labelling_only_worker_ends(registered_baseline_model,
                                                          start_worker):
    start_worker("labelling-only", queues="labelling").wait_ready()
    result = happysad("retrain", "--force", "--wait", "--json", timeout=600)
    run = json.loads(result.stdout)  # HAPPYSAD_TRAIN_DATA is not set: the run says so
    assert run["status"] == "failed" and "HAPPYSAD_TRAIN_DATA is not set" in run["reason"]
    assert "starting 1 local worker" in result.stderr
