"""`happysad train` and `happysad sample-data`: make a model version, or data to try it on."""

from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from happysad import output
from happysad.output import JsonOption
from trainer.model import ARCHITECTURES, DEFAULT_ARCHITECTURE
from trainer.promotion import PromoteMode

def say_waiting() -> None:
    output.say("another training (a retrain, `happysad train` or the demo) is running: waiting "
               "for it to finish", to_stderr=True)


# The choices come from trainer.model, where the architectures are declared: --help lists them
# and a bad one is a usage error.
Architecture = StrEnum("Architecture", {name: name for name in ARCHITECTURES})


def train(
    source: Annotated[str, typer.Argument(help="Folder or s3://bucket/prefix, one sub-folder per class.")],
    epochs: Annotated[int | None, typer.Option(help="Epochs (default: the architecture's recipe).")] = None,
    image_size: Annotated[int | None, typer.Option(help="Input size in pixels (default: recipe).")] = None,
    batch_size: Annotated[int, typer.Option(help="Images per training step.")] = 32,
    seed: Annotated[int, typer.Option(help="Seed for the split, weights and augmentation.")] = 0,
    architecture: Annotated[Architecture, typer.Option(help="pretrained: an ImageNet backbone and a trained head; baseline is the tutorial's CNN.")] = DEFAULT_ARCHITECTURE,
    promote: Annotated[PromoteMode, typer.Option(help="auto: only if at least as good as production on the same test images.")] = PromoteMode.AUTO,
    augment: Annotated[bool, typer.Option(help="Flips, rotations, zoom, brightness while training.")] = True,
    json_output: JsonOption = False,
) -> None:
    """Train a model on a labelled folder or bucket and register it as a new version."""
    from db.session import session_scope
    from db.settings import get_settings
    from trainer.train import TrainingParams
    from trainer.training import training_lock

    settings = get_settings()
    params = TrainingParams(architecture=architecture.value, epochs=epochs,
                            image_size=image_size, batch_size=batch_size, seed=seed,
                            augment=augment).resolved()
    log_dir = settings.home_folder("tensorboard") / datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    with training_lock(on_wait=say_waiting) as training:  # one training at a time
        with _epoch_progress(enabled=not json_output, total=params.epochs) as on_epoch:
            trained = training.train_and_register(source, params, promote, settings=settings,
                                                  sessions=session_scope, log_dir=log_dir,
                                                  on_epoch=on_epoch)
    result, registration = trained.result, trained.registration
    payload = {"version": registration.version, "metrics": result.metrics,
               "promoted": registration.promoted, "promotion_reason": registration.reason,
               "warning": registration.warning,
               "path": registration.path, "class_names": result.data.class_names,
               "params": result.params_record(), "skipped_files": result.data.skipped,
               "train_seconds": round(result.train_seconds, 2),
               "train_images_per_second": round(result.images_per_second, 1),
               "tensorboard": str(log_dir)}
    if json_output:
        output.print_json(payload)
        return
    metrics = result.metrics
    output.say(
        f"model v{registration.version}: accuracy {metrics['accuracy']:.3f}, "
        f"{output.headline_scores(metrics, result.data.class_names)} on {metrics['count']} test "
        f"images; {'promoted to production' if registration.promoted else 'not promoted'} "
        f"({registration.reason})")
    if registration.warning:
        output.say(f"warning: this model is {registration.warning}; "
                   + ("promoted only because you asked" if registration.promoted
                      else "it was not promoted automatically"))
    if result.data.skipped:
        output.say(f"skipped {len(result.data.skipped)} files (see metadata.json):")
        for skipped in result.data.skipped[:10]:
            output.say(f"  {skipped['uri']}: {skipped['reason']}")
    output.say(f"model: {registration.path}\ntensorboard --logdir {log_dir}")


class _epoch_progress:
    """A Rich progress bar advanced once per epoch, shown only in a terminal."""

    def __init__(self, enabled: bool, total: int):
        self.enabled = enabled and output.console.is_terminal
        self.total = total

    def __enter__(self):
        if not self.enabled:
            return None
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(TextColumn("epoch {task.completed}/{task.total}"), BarColumn(),
                                 TextColumn("{task.description}"), TimeRemainingColumn())
        self.progress.start()
        task = self.progress.add_task("", total=self.total)

        def on_epoch(epoch: int, epochs: int, logs: dict) -> None:
            self.progress.update(task, completed=epoch, description=" ".join(
                f"{key} {value:.3f}" for key, value in logs.items() if "loss" in key or "acc" in key))
        return on_epoch

    def __exit__(self, *exc):
        if self.enabled:
            self.progress.stop()


def sample_data(destination: Annotated[Path, typer.Argument(help="Folder to write into.")],
                per_class: Annotated[int, typer.Option(help="Images per class.")] = 100,
                image_size: Annotated[int, typer.Option(help="Width and height in pixels.")] = 256,
                seed: Annotated[int, typer.Option(help="Seed for the drawings.")] = 0,
                unlabelled: Annotated[bool, typer.Option(help="All images in one folder, for submit.")] = False) -> None:
    """Write a generated (synthetic) happy/sad dataset of drawn faces."""
    from trainer.sample_data import write_sample_dataset

    written = write_sample_dataset(destination, per_class, image_size, seed, not unlabelled)
    output.say(f"wrote {sum(written.values())} SYNTHETIC images (drawn faces, not "
               f"photos) to {destination}: {output.plain(written)}")
