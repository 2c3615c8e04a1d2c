"""The `happysad` command. Thin: parse, call the packages, print. TensorFlow is imported only
by the commands that train or classify in this process."""

import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from happysad import output
from happysad.jobs_cli import jobs_app, report_command, results_command, submit_command

app = typer.Typer(help="Train, version and serve a happy/sad image classifier.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
models_app = typer.Typer(help="List, inspect and promote model versions.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(db_app, name="db")
app.add_typer(jobs_app, name="jobs")
app.command("submit")(submit_command)
app.command("results")(results_command)
app.command("report")(report_command)

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


@app.command()
def train(
    source: Annotated[str, typer.Argument(help="Folder or s3://bucket/prefix, one sub-folder per class.")],
    epochs: Annotated[int | None, typer.Option(help="Epochs (default: the architecture's recipe).")] = None,
    image_size: Annotated[int | None, typer.Option(help="Input size in pixels (default: recipe).")] = None,
    batch_size: Annotated[int, typer.Option(help="Images per training step.")] = 32,
    seed: Annotated[int, typer.Option(help="Seed for the split, weights and augmentation.")] = 0,
    architecture: Annotated[str | None, typer.Option(help="improved (default), deeper, or baseline (the tutorial's CNN).")] = None,
    promote: Annotated[str, typer.Option(help="auto: only if at least as good as production; always; never.")] = "auto",
    augment: Annotated[bool, typer.Option(help="Flips, rotations, zoom, brightness while training.")] = True,
    json_output: JsonOption = False,
) -> None:
    """Train a model on a labelled folder or bucket and register it as a new version."""
    from db.settings import get_settings
    from trainer.model import DEFAULT_ARCHITECTURE
    from trainer.registry import PROMOTE_CHOICES, register
    from trainer.train import TrainingParams
    from trainer.train import train as run_training

    if promote not in PROMOTE_CHOICES:
        output.fail(f"--promote must be one of {', '.join(PROMOTE_CHOICES)}")
    params = TrainingParams(architecture=architecture or DEFAULT_ARCHITECTURE, epochs=epochs,
                            image_size=image_size, batch_size=batch_size, seed=seed,
                            augment=augment).resolved()
    log_dir = get_settings().home / "tensorboard" / datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    with _epoch_progress(enabled=not json_output, total=params.epochs) as on_epoch:
        result = run_training(source, params, log_dir=log_dir, on_epoch=on_epoch)
    registration = register(result, promote=promote)
    payload = {"version": registration.version, "metrics": result.metrics,
               "promoted": registration.promoted, "promotion_reason": registration.reason,
               "path": registration.path, "class_names": result.data.class_names,
               "params": result.params_record(), "skipped_files": result.data.skipped,
               "train_seconds": round(result.train_seconds, 2),
               "train_images_per_second": round(result.images_per_second, 1),
               "tensorboard": str(log_dir)}
    if json_output:
        output.print_json(payload)
        return
    metrics = result.metrics
    output.console.print(
        f"model v{registration.version}: accuracy {metrics['accuracy']:.3f}, precision "
        f"{metrics['precision']:.3f}, recall {metrics['recall']:.3f} on {metrics['count']} test "
        f"images; {'promoted to production' if registration.promoted else 'not promoted'} "
        f"({registration.reason})")
    if result.data.skipped:
        output.console.print(f"skipped {len(result.data.skipped)} files (see metadata.json):")
        for skipped in result.data.skipped[:10]:
            output.console.print(f"  {skipped['uri']}: {skipped['reason']}", highlight=False)
    output.console.print(f"model: {registration.path}\ntensorboard --logdir {log_dir}")


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


@models_app.command("list")
def models_list(json_output: JsonOption = False) -> None:
    """Every model version, oldest first."""
    from db import queries
    from db.session import session_scope

    with session_scope() as session:
        rows = [output.model_version_record(r) for r in queries.list_model_versions(session)]
    if json_output:
        output.print_json(rows)
        return
    output.print_table("model versions", ["version", "production", "created", "architecture",
                                          "size", "accuracy", "precision", "recall"],
                       [[r["version"], "*" if r["production"] else "", r["created_at"]
                         .strftime("%Y-%m-%d %H:%M"), r["architecture"], r["image_size"],
                         f"{r['metrics']['accuracy']:.3f}", f"{r['metrics']['precision']:.3f}",
                         f"{r['metrics']['recall']:.3f}"] for r in rows])


@models_app.command("show")
def models_show(version: Annotated[str, typer.Argument(help="A version number or 'production'.")],
                json_output: JsonOption = False) -> None:
    """One model version in full."""
    from db import queries
    from db.session import session_scope

    with session_scope() as session:
        if version == "production":
            row = queries.production_model_version(session)
            if row is None:
                output.fail("no production model yet: train one first (`happysad train FOLDER`)")
        else:
            row = queries.get_model_version(session, _version_number(version))
        record = output.model_version_record(row)
    if json_output:
        output.print_json(record)
        return
    for key, value in record.items():
        if key != "metrics":
            output.console.print(f"[bold]{key}[/]: {value}", highlight=False)
    metrics = record["metrics"]
    output.console.print(f"[bold]metrics[/]: accuracy {metrics['accuracy']:.3f}, precision "
                         f"{metrics['precision']:.3f}, recall {metrics['recall']:.3f}, "
                         f"confusion matrix {metrics['confusion_matrix']}")


def _version_number(text: str) -> int:
    try:
        return int(text.lstrip("v"))
    except ValueError:
        output.fail(f"not a model version: {text!r} (a number such as 3, or 'production')")


@models_app.command("promote")
def models_promote(version: Annotated[str, typer.Argument(help="The version to make production.")],
                   reason: Annotated[str, typer.Option(help="Recorded in the history.")] = "manual promotion") -> None:
    """Make a version production: the manual override, and the rollback."""
    from trainer.registry import promote_version

    number = _version_number(version)
    previous = promote_version(number, reason)
    was = f"was v{previous}" if previous is not None else "there was none"
    output.console.print(f"model v{number} is production ({was})")


@models_app.command("history")
def models_history(json_output: JsonOption = False) -> None:
    """Every promotion and rollback, with time and reason."""
    from db import queries
    from db.session import session_scope

    with session_scope() as session:
        rows = [{"at": p.at, "version": p.version, "previous_version": p.previous_version,
                 "kind": p.kind, "reason": p.reason} for p in queries.promotion_history(session)]
    if json_output:
        output.print_json(rows)
        return
    output.print_table("promotions", ["at", "version", "previous", "kind", "reason"],
                       [[r["at"].strftime("%Y-%m-%d %H:%M:%S"), r["version"],
                         r["previous_version"], r["kind"], r["reason"]] for r in rows])


@app.command("sample-data")
def sample_data(destination: Annotated[Path, typer.Argument(help="Folder to write into.")],
                per_class: Annotated[int, typer.Option(help="Images per class.")] = 100,
                image_size: Annotated[int, typer.Option(help="Width and height in pixels.")] = 256,
                seed: Annotated[int, typer.Option(help="Seed for the drawings.")] = 0,
                unlabelled: Annotated[bool, typer.Option(help="All images in one folder, for submit.")] = False) -> None:
    """Write a generated (synthetic) happy/sad dataset of drawn faces."""
    from trainer.sample_data import write_sample_dataset

    written = write_sample_dataset(destination, per_class, image_size, seed, not unlabelled)
    output.console.print(f"wrote {sum(written.values())} SYNTHETIC images (drawn faces, not "
                         f"photos) to {destination}: {written}")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema (also done automatically on first use)."""
    from db.session import current_revision, get_engine
    from db.settings import get_settings, mask_url

    engine = get_engine()
    output.console.print(f"database {mask_url(get_settings().effective_database_url)} at "
                         f"revision {current_revision(engine)}")


@app.command()
def worker(concurrency: Annotated[int | None, typer.Option(help="Processes (default: cores).")] = None,
           autoscale: Annotated[str | None, typer.Option(help="MAX,MIN processes.")] = None,
           queues: Annotated[str, typer.Option(help="Comma-separated: labelling, training.")] = "labelling,training",
           loglevel: Annotated[str | None, typer.Option(help="Celery log level (default: HAPPYSAD_LOG_LEVEL).")] = None) -> None:
    """Start a Celery worker (same as `celery -A worker.celery_app worker`)."""
    from db.settings import get_settings
    from worker.local import worker_command

    settings = get_settings()
    command = worker_command(concurrency or settings.concurrency(), queues,
                             loglevel or settings.log_level, autoscale)
    os.execv(command[0], command)


@app.command()
def scheduler(loglevel: Annotated[str | None, typer.Option(help="Celery log level (default: HAPPYSAD_LOG_LEVEL).")] = None) -> None:
    """Run Celery beat with the retrain schedule (HAPPYSAD_RETRAIN_CRON)."""
    from db.settings import get_settings
    from scheduler.beat import beat_command

    command = beat_command(loglevel or get_settings().log_level)
    os.execv(command[0], command)


retrain_app = typer.Typer(help="Retrain now, and the record of retrain runs.",
                          invoke_without_command=True)
app.add_typer(retrain_app, name="retrain")


@retrain_app.callback()
def retrain(ctx: typer.Context,
            force: Annotated[bool, typer.Option(help="Train even if the data has not changed.")] = False,
            wait: Annotated[bool, typer.Option(help="Wait for the run and print its outcome.")] = False,
            json_output: JsonOption = False) -> None:
    """Run the scheduled retrain now, on the training queue."""
    if ctx.invoked_subcommand:
        return
    from happysad.local_workers import local_workers_for
    from scheduler.retrain import request_retrain, wait_for_run

    slot = request_retrain(force)
    if not wait:
        output.console.print(f"retrain {slot} queued on the training queue")
        return
    with local_workers_for("training"):
        run = wait_for_run(slot)
    record = _run_record(run)
    if json_output:
        output.print_json(record)
    else:
        version = (f"v{run.model_version} {'promoted' if run.promoted else 'not promoted'}"
                   if run.model_version else "no new version")
        output.console.print(f"retrain {slot}: {run.status}, {version}: {run.reason}",
                             highlight=False)


def _run_record(run) -> dict:
    return {"id": run.id, "slot": run.slot, "status": run.status, "source": run.source,
            "started_at": run.started_at, "finished_at": run.finished_at,
            "dataset_fingerprint": run.dataset_fingerprint, "model_version": run.model_version,
            "promoted": run.promoted, "reason": run.reason}


@retrain_app.command("list")
def retrain_list(json_output: JsonOption = False) -> None:
    """Recent retrain runs: status, times, resulting version, why (not) promoted."""
    from db import queries
    from db.session import session_scope

    with session_scope() as session:
        rows = [_run_record(r) for r in queries.list_retrain_runs(session)]
    if json_output:
        output.print_json(rows)
        return
    output.print_table("retrain runs", ["id", "slot", "status", "version", "promoted", "reason"],
                       [[r["id"], r["slot"], r["status"], r["model_version"], r["promoted"],
                         r["reason"]] for r in rows])


@app.command()
def demo(folder: Annotated[Path | None, typer.Option(help="Where the demo's images go.")] = None) -> None:
    """The main job end to end with zero servers: data, training, a job, a report."""
    from happysad.demo import run_demo

    run_demo(folder)


def _user_errors() -> tuple[type[BaseException], ...]:
    from pydantic import ValidationError

    from db.queries import NotFound
    from db.session import DatabaseUnavailable
    from scheduler.submit import BrokerUnavailable, SubmitError
    from trainer.dataset import DatasetError
    from trainer.registry import ModelLoadError
    from trainer.storage import StorageError

    return (NotFound, DatabaseUnavailable, BrokerUnavailable, SubmitError, DatasetError,
            ModelLoadError, StorageError, ValidationError, ValueError, TimeoutError)


def main() -> None:
    from trainer.tensorflow_startup import quiet_tensorflow_startup

    quiet_tensorflow_startup()
    try:
        app()
    except KeyboardInterrupt:
        output.fail("interrupted", code=130)
    except Exception as error:
        if os.environ.get("HAPPYSAD_DEBUG") or not isinstance(error, _user_errors()):
            raise
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if type(error).__name__ == "ValidationError":
            message = "invalid HAPPYSAD_ setting: " + " ".join(str(error).split())
        output.fail(message)


if __name__ == "__main__":
    sys.exit(main())
