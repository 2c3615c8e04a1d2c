"""The CLI's error mapping: the project's own errors become one line; a bug keeps its traceback."""

import sys

import pytest

from db.errors import HappysadError, InvalidInput, NotFound, SettingsError, Unavailable
from happysad.cli import main


def run_models_list(monkeypatch, error: Exception):
    def failing(session):
        raise error

    monkeypatch.setattr("db.queries.list_model_versions", failing)
    monkeypatch.setattr(sys, "argv", ["happysad", "models", "list"])
    main()


@pytest.mark.parametrize("error", [NotFound("model version 9 does not exist"),
                                   InvalidInput("bad input\nsecond line"),
                                   Unavailable("cannot reach the broker")])
def test_the_projects_errors_are_one_line(monkeypatch, capsys, error):
    with pytest.raises(SystemExit) as exit:
        run_models_list(monkeypatch, error)
    assert exit.value.code == 1
    stderr = capsys.readouterr().err
    assert stderr.strip() == f"error: {str(error).splitlines()[0]}"


@pytest.mark.parametrize("bug", [ValueError("a bug"), TimeoutError("a bug"), KeyError("bug")])
def test_a_bug_keeps_its_traceback(monkeypatch, bug):
    with pytest.raises(type(bug)):
        run_models_list(monkeypatch, bug)


def test_every_error_of_the_project_has_the_one_root():
    """A new error type of the project belongs here too: else the CLI shows it as a bug."""
    from db.queries import JobFinished, NothingToRollBack
    from db.session import DatabaseUnavailable
    from scheduler.submit import BrokerUnavailable, SubmitError
    from trainer.dataset import DatasetError
    from trainer.images import ImageError
    from trainer.model_store import ModelLoadError
    from happysad.web.server import UnsafeAddress
    from trainer.storage import StorageError

    for error in (JobFinished, NothingToRollBack, DatabaseUnavailable, BrokerUnavailable, SubmitError, DatasetError,
                  ImageError, ModelLoadError, StorageError, SettingsError, UnsafeAddress):
        assert issubclass(error, HappysadError), error


def test_a_bad_setting_names_the_variable(monkeypatch, capsys):
    from db.settings import reset_settings

    monkeypatch.setenv("HAPPYSAD_BATCH_SIZE", "lots")
    reset_settings()
    monkeypatch.setattr(sys, "argv", ["happysad", "models", "list"])
    with pytest.raises(SystemExit):
        main()
    stderr = capsys.readouterr().err
    assert stderr.startswith("error: invalid HAPPYSAD_BATCH_SIZE='lots': ")
