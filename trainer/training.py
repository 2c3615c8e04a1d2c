"""One training at a time, whoever asks: `happysad train`, the scheduled retrain (a worker's
task) and `happysad demo` all train through here. A model is trained and registered only by
the holder of the training lock, so two trainings never share the machine's cores and memory.
"""

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from db.locks import TRAINING_LOCK, held_lock
from db.session import Sessions, get_engine
from db.settings import Settings

if TYPE_CHECKING:  # TensorFlow loads only when a training starts
    from trainer.registry import Registration
    from trainer.train import TrainingParams, TrainingResult


@dataclass
class TrainedVersion:
    result: "TrainingResult"
    registration: "Registration"


class Training:
    """What the lock's holder may do: train on a source and register the model as a version."""

    def __init__(self, held: bool):
        self.held = held

    def train_and_register(self, source: str, params: "TrainingParams", promote: str, *,
                           settings: Settings, sessions: Sessions,
                           corrections: list | None = None, log_dir: Path | None = None,
                           on_epoch: Callable | None = None) -> TrainedVersion:
        """Train (trainer.train.train), then register the model behind the promotion gate
        (trainer.registry.register), with the caller's settings and transactions."""
        if not self.held:
            raise RuntimeError("training without the training lock")  # a caller's bug
        from trainer.registry import register
        from trainer.train import train

        result = train(source, params, log_dir=log_dir, on_epoch=on_epoch,
                       corrections=corrections, max_pixels=settings.max_image_pixels)
        return TrainedVersion(result, register(result, promote=promote, settings=settings,
                                               sessions=sessions))


@contextlib.contextmanager
def training_lock(wait: bool = True,
                  on_wait: Callable[[], None] | None = None) -> Iterator[Training]:
    """Hold the training lock for the block. With `wait`, wait for it if another training holds
    it (calling `on_wait` first, so a person is told); without, yield at once a Training whose
    `held` is False, and which trains nothing."""
    engine = get_engine()
    with held_lock(engine, TRAINING_LOCK, wait=False) as held:
        if held or not wait:
            yield Training(held)
            return
    if on_wait is not None:
        on_wait()
    with held_lock(engine, TRAINING_LOCK, wait=True):
        yield Training(True)
