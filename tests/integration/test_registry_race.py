"""Two trainings at once (`happysad train` beside a scheduled retrain, or two trainers): the
version number is claimed in SQL before any file is written, so they never share a version
or overwrite each other's files, and `happysad train` takes the training lock the retrain
takes.

The trainings use the `baseline` architecture (one epoch, 32 px): what is tested is the claim of
the version and the files, the same for every architecture; the default's face detection and
its first conversion at registration cost about 15 s more per process here."""

import os
import subprocess
import sys

import pytest

from db import queries
from db.locks import TRAINING_LOCK, held_lock
from db.session import get_engine, session_scope
from db.settings import get_settings
from tests.helpers.polling import wait_until
from trainer.model_store import verified_model_path

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REGISTER_AT_THE_SAME_TIME = """
import os, sys, time
from pathlib import Path
from db.session import session_scope
from db.settings import get_settings
from trainer.registry import register
from trainer.train import TrainingParams, train
result = train(sys.argv[1], TrainingParams(architecture="baseline", epochs=1, image_size=32,
                                           batch_size=16, seed=int(sys.argv[2])))
Path(sys.argv[3] + f".ready{sys.argv[2]}").touch()
while not Path(sys.argv[3]).exists():  # both trained: register at the same moment
    time.sleep(0.005)
print(register(result, promote="never", settings=get_settings(),
               sessions=session_scope).version)
"""


def test_trainers_at_once_never_share_a_version(tmp_path, postgres, sample_folder):
    barrier = tmp_path / "go"
    processes = [subprocess.Popen([sys.executable, "-c", REGISTER_AT_THE_SAME_TIME,
                                   str(sample_folder), str(seed), str(barrier)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for seed in (1, 2)]
    wait_until(lambda: all(os.path.exists(f"{barrier}.ready{seed}") for seed in (1, 2)),
               "both trainings", timeout=300, poll=0.1)
    barrier.touch()
    versions = []
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        versions.append(int(out.split()[-1]))
    assert sorted(versions) == [1, 2]
    with session_scope() as session:
        for row in queries.list_model_versions(session):
            # each version's file is the one its row names
            verified_model_path(row, get_settings().home_folder("cache"))
    print(f"\nversions registered at the same moment: {sorted(versions)}, each file intact")


def test_happysad_train_waits_for_the_training_lock(tmp_path, postgres, sample_folder):
    err_path = tmp_path / "train.err"
    with held_lock(get_engine(), TRAINING_LOCK, wait=False) as held:  # a retrain is training
        assert held
        with open(err_path, "w") as err:
            train = subprocess.Popen([sys.executable, "-m", "happysad.cli", "train",
                                      str(sample_folder), "--architecture", "baseline", "--epochs",
                                      "1", "--image-size", "32"],
                                     stdout=subprocess.PIPE, stderr=err, text=True,
                                     env=dict(os.environ))
        wait_until(lambda: "another training" in err_path.read_text() or train.poll() is not None,
                   "train to wait for the lock", timeout=120, poll=0.2)
        assert train.poll() is None, err_path.read_text()
        with session_scope() as session:
            assert not queries.list_model_versions(session)  # nothing registered meanwhile
    out, _ = train.communicate(timeout=300)  # the lock is free: it trains and registers
    assert train.returncode == 0, err_path.read_text()
    assert "model v1" in out
