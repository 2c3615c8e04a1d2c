"""Commands that wait never wait forever: `submit --wait` notices that its local workers
died, and `retrain --wait` beside a labelling-only local worker starts a training worker
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


def test_submit_wait_notices_its_local_workers_died(tmp_path, registered_model):
    write_images(tmp_path / "incoming", 400)
    env = dict(os.environ, HAPPYSAD_WORKER_CONCURRENCY="1")
    waiting = subprocess.Popen([sys.executable, "-m", "happysad.cli", "submit",
                                str(tmp_path / "incoming"), "--batch-size", "4", "--wait"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    from worker.local import running_workers

    pids = wait_until(running_workers, "the local worker to start", timeout=120)
    for pid in pids:
        os.killpg(os.getpgid(pid), 9)
    out, err = waiting.communicate(timeout=120)  # the liveness deadline: it must not hang
    assert waiting.returncode == 1 and "Traceback" not in err
    assert "local worker" in err and "exited" in err, err


def test_retrain_wait_beside_a_labelling_only_worker_ends(registered_model, start_worker):
    start_worker("labelling-only", queues="labelling").wait_ready()
    result = happysad("retrain", "--force", "--wait", "--json", timeout=600)
    run = json.loads(result.stdout)  # HAPPYSAD_TRAIN_DATA is not set: the run says so
    assert run["status"] == "failed" and "HAPPYSAD_TRAIN_DATA is not set" in run["reason"]
    assert "starting 1 local worker" in result.stderr
