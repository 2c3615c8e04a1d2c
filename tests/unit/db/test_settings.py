import pytest
from pydantic import ValidationError

from db.settings import Settings, mask_url


def test_defaults_need_no_server(isolated_env):
    settings = Settings()
    assert settings.home == isolated_env
    assert settings.effective_database_url == f"sqlite:///{isolated_env / 'happysad.db'}"
    assert settings.embedded_broker and settings.retrain_cron == "0 2 * * *"


def test_prefix_and_validation(monkeypatch):
    monkeypatch.setenv("HAPPYSAD_BATCH_SIZE", "16")
    assert Settings().batch_size == 16
    monkeypatch.setenv("HAPPYSAD_RETRAIN_CRON", "every night")
    with pytest.raises(ValidationError, match="five fields"):
        Settings()


def test_mask_url_hides_passwords():
    assert mask_url("postgresql://user:pw@db:5432/x") == "postgresql://user:***@db:5432/x"
    assert mask_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert mask_url(None) is None


def test_default_home_is_one_per_user_folder_wherever_run(monkeypatch, tmp_path):
    monkeypatch.delenv("HAPPYSAD_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    for folder in (tmp_path / "a", tmp_path / "b"):
        folder.mkdir()
        monkeypatch.chdir(folder)
        assert Settings(_env_file=None).home == tmp_path / "user" / ".local" / "share" / "happysad"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert Settings(_env_file=None).home == tmp_path / "data" / "happysad"
    monkeypatch.setenv("XDG_DATA_HOME", "relative")  # ignored, as the XDG spec says
    monkeypatch.setenv("HAPPYSAD_HOME", "")  # empty means not set
    assert Settings(_env_file=None).home == tmp_path / "user" / ".local" / "share" / "happysad"
