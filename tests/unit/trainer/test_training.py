"""The one training entry: a model is trained and registered only under the training lock."""

import pytest

from db.locks import TRAINING_LOCK, held_lock
from db.session import get_engine, session_scope
from db.settings import get_settings
from trainer.train import TrainingParams
from trainer.training import Training, training_lock


def test_without_the_lock_nothing_trains():
    with held_lock(get_engine(), TRAINING_LOCK):  # another training holds it
        with training_lock(wait=False) as training:
            assert not training.held
            with pytest.raises(RuntimeError, match="without the training lock"):
                training.train_and_register("unused", TrainingParams(), "auto",
                                            settings=get_settings(), sessions=session_scope)


def test_the_lock_is_free_again_after_a_training(tmp_path):
    waited = []
    with training_lock(on_wait=lambda: waited.append(True)) as training:
        assert training.held and isinstance(training, Training)
    with training_lock(wait=False) as training:
        assert training.held and not waited


def test_a_training_decodes_with_the_worker_s_pixel_limit(monkeypatch):
    """HAPPYSAD_MAX_IMAGE_PIXELS reaches training's decoding from the caller's settings, so
    training refuses the images workers refuse."""
    from db.settings import reset_settings

    monkeypatch.setenv("HAPPYSAD_MAX_IMAGE_PIXELS", "1000")
    reset_settings()
    limits = []
    monkeypatch.setattr("trainer.train.train", lambda *args, max_pixels, **kwargs:
                        limits.append(max_pixels) or "trained")
    monkeypatch.setattr("trainer.registry.register", lambda result, **kwargs: "registered")
    trained = Training(True).train_and_register("unused", TrainingParams(), "auto",
                                                settings=get_settings(), sessions=session_scope)
    assert limits == [1000] and trained.registration == "registered"
