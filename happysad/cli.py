"""The `happysad` command: the root app, the command groups of happysad.commands, and the one
place where the project's errors become one-line messages. Thin: TensorFlow is imported only
by the commands that train or classify in this process."""

import os
import sys
from typing import Annotated

import typer

from db.errors import DiskFull, HappysadError, one_line
from happysad import output
from happysad.commands import db, demo, jobs, models, results, retrain, reviews, serve, services
from happysad.commands import train
from happysad.commands import recovery  # noqa: F401  (adds `jobs resume`, `jobs retry`)

app = typer.Typer(help="Train, version and serve a happy/sad image classifier.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]})  # subcommands too


def _print_version(asked: bool) -> None:
    if asked:
        from importlib.metadata import version

        output.say(f"happysad {version('happysad')}")
        raise typer.Exit()


@app.callback()
def root(version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                               help="Print the version and exit.")] = False) -> None:
    """Train, version and serve a happy/sad image classifier."""


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


def main() -> None:
    from trainer.tensorflow_startup import quiet_tensorflow_startup

    quiet_tensorflow_startup(_log_level())
    _no_type_after_flags()
    try:
        app()
    except BrokenPipeError:  # `happysad results 7 | head`: the reader has all it wanted
        _quiet_broken_pipe()
    except SystemExit as exit:  # click ends a broken pipe with 1, as if it were a failure
        if exit.code == 1 and _stdout_gone():
            _quiet_broken_pipe()
        raise
    except KeyboardInterrupt:
        output.fail("interrupted", code=130)
    except HappysadError as error:  # the project's own: one line; anything else is a bug
        if _debug():
            raise
        output.fail(one_line(error) if isinstance(error, DiskFull)  # names its job already
                    else _disk_full(error) or one_line(error))
    except Exception as error:  # a full disk is the machine's state, not a bug: one line too
        if not _debug() and (full := _disk_full(error)):
            output.fail(full)
        raise


def _quiet_broken_pipe() -> None:
    """End with 0 and no message, like other Unix tools whose reader went away; stdout is
    pointed at /dev/null first so Python's own flush at exit does not complain again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.__stdout__.fileno())
    sys.exit(0)


def _stdout_gone() -> bool:
    """Whether nobody reads our stdout any more (a pipe whose reader closed reports an error)."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.__stdout__.fileno(), 0)  # errors and hang-ups are always reported
        return any(event & (select.POLLERR | select.POLLHUP) for _fd, event in poller.poll(0))
    except (OSError, ValueError, AttributeError):  # stdout closed or not a file
        return False


def _no_type_after_flags() -> None:
    """Typer's help prints a type after every option, `<bool>` after a flag too, where it
    reads as if the flag took a value: a flag gets none (Typer has no setting for this)."""
    from typer.core import TyperOption

    if getattr(TyperOption.display_type_rich, "happysad_flags", False):
        return
    typed = TyperOption.display_type_rich

    def display_type_rich(self, ctx):
        return None if self.is_flag else typed(self, ctx)

    display_type_rich.happysad_flags = True
    TyperOption.display_type_rich = display_type_rich


def _log_level() -> str:
    """HAPPYSAD_LOG_LEVEL, for TensorFlow's start-up lines. A bad setting is reported by the
    command itself, not here: then the default."""
    from db.settings import get_settings

    try:
        return get_settings().log_level
    except Exception:
        return "INFO"


def _debug() -> bool:
    """HAPPYSAD_DEBUG: tracebacks for the project's errors too. Settings that do not validate
    are themselves the error being reported: then no."""
    from db.errors import SettingsError
    from db.settings import get_settings

    try:
        return get_settings().debug
    except SettingsError:
        return False


def _disk_full(error: BaseException) -> str | None:
    """One line for a full disk, wherever it struck (a file, SQLite, the queue folder)."""
    import errno

    text = str(error)
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return f"no space left on device writing {error.filename or 'a file'}: free some space"
    if "database or disk is full" in text or "No space left on device" in text:
        return f"no space left on device ({one_line(error)}): free some space and run it again"
    return None


if __name__ == "__main__":
    sys.exit(main())
