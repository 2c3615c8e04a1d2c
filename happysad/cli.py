"""The `happysad` command: the root app, the command groups of happysad.commands, and the one
place where the project's errors become one-line messages. Thin: TensorFlow is imported only
by the commands that train or classify in this process."""

import os
import sys

import typer

from happysad import output
from happysad.commands import db, demo, jobs, models, results, retrain, reviews, serve, services
from happysad.commands import train
from happysad.commands import recovery  # noqa: F401  (adds `jobs resume`, `jobs retry`)

app = typer.Typer(help="Train, version and serve a happy/sad image classifier.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
app.command("train")(train.train)
app.add_typer(models.models_app, name="models")
app.command("submit")(jobs.submit_command)
app.add_typer(jobs.jobs_app, name="jobs")
app.command("results")(results.results_command)
app.command("report")(results.report_command)
app.add_typer(reviews.reviews_app, name="reviews")
app.add_typer(retrain.retrain_app, name="retrain")
app.command("worker")(services.worker)
app.command("scheduler")(services.scheduler)
app.command("serve")(serve.serve)
app.add_typer(db.db_app, name="db")
app.command("demo")(demo.demo)
app.command("sample-data")(train.sample_data)


def _user_errors() -> tuple[type[BaseException], ...]:
    from pydantic import ValidationError

    from db.queries import NotFound
    from db.session import DatabaseUnavailable
    from scheduler.submit import BrokerUnavailable, SubmitError
    from trainer.dataset import DatasetError
    from trainer.model_store import ModelLoadError
    from trainer.storage import StorageError
    from happysad.local_workers import WorkersGone
    from worker.queue_files import QueueWriteError
    from worker.resume import ResumeError

    return (NotFound, DatabaseUnavailable, BrokerUnavailable, SubmitError, DatasetError,
            ModelLoadError, StorageError, ResumeError, QueueWriteError, WorkersGone,
            ValidationError, ValueError, TimeoutError)


def _disk_full(error: BaseException) -> str | None:
    """One line for a full disk, wherever it struck (a file, SQLite, the queue folder)."""
    import errno

    text = str(error)
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return f"no space left on device writing {error.filename or 'a file'}: free some space"
    if "database or disk is full" in text or "No space left on device" in text:
        first = text.strip().splitlines()[0]
        return f"no space left on device ({first}): free some space and run it again"
    return None


def main() -> None:
    from trainer.tensorflow_startup import quiet_tensorflow_startup

    quiet_tensorflow_startup()
    try:
        app()
    except KeyboardInterrupt:
        output.fail("interrupted", code=130)
    except Exception as error:
        if not os.environ.get("HAPPYSAD_DEBUG") and (full := _disk_full(error)):
            output.fail(full)
        if os.environ.get("HAPPYSAD_DEBUG") or not isinstance(error, _user_errors()):
            raise
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if type(error).__name__ == "ValidationError":
            message = "; ".join(
                f"invalid HAPPYSAD_{'_'.join(map(str, item['loc'])).upper()}="
                f"{item.get('input')!r}: {item['msg']}" for item in error.errors())
        output.fail(message)


if __name__ == "__main__":
    sys.exit(main())
