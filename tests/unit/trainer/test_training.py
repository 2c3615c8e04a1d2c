"""The one training entry: a model is trained and registered only under the training lock."""

import pytest

from db.locks import TRAINING_LOCK, held_lock
from db.session import get_engine
from trainer.train import TrainingParams
from trainer.training import Training, training_lock


def test_without_the_lock_nothing_trains():
    with held_lock(get_engine(), TRAINING_LOCK):  # another training holds it
        with training_lock(wait=False) as training:
            assert not training.held
            with pytest.raises(RuntimeError, match="without the training lock"):
                training.train_and_register("unused", TrainingParams(), "auto")


def test_the_lock_is_free_again_after_a_training(tmp_path):
    waited = []
    with training_lock(on_wait=lambda: waited.append(True)) as training:
        assert training.held and isinstance(training, Training)
    with training_lock(wait=False) as training:
        assert training.held and not waited
