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
