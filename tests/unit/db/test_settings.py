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


def raw_environment_reads(path) -> list[str]:
    """`os.environ.get("HAPPYSAD_X")`, `os.getenv("HAPPYSAD_X")` or `os.environ["HAPPYSAD_X"]`
    read (not written) in a module."""
    import ast

    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in {"get", "getenv"}:
            key = node.args[0] if node.args else None
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) \
                and getattr(node.value, "attr", "") == "environ":
            key = node.slice
        else:
            continue
        if isinstance(key, ast.Constant) and str(key.value).startswith("HAPPYSAD_"):
            found.append(f"line {node.lineno} reads {key.value}")
    return found


def test_every_setting_is_read_through_settings(tmp_path):
    """HAPPYSAD_* variables are read by Settings only (validated, with their defaults and
    .env): no module reads one from the environment itself."""
    from pathlib import Path

    module = tmp_path / "module.py"
    module.write_text("import os\nos.environ['HAPPYSAD_X'] = '1'\na = os.environ.get('HAPPYSAD_X')\n"
                      "b = os.environ['HAPPYSAD_Y']\nc = os.getenv('OTHER')\n")
    assert raw_environment_reads(module) == ["line 3 reads HAPPYSAD_X", "line 4 reads HAPPYSAD_Y"]
    root = Path(__file__).resolve().parents[3]
    for package in ("happysad", "scheduler", "worker", "trainer", "db"):
        for path in (root / package).rglob("*.py"):
            reads = raw_environment_reads(path)
            assert not reads, f"{path.relative_to(root)}: {'; '.join(reads)}"


def test_debug_is_a_setting(monkeypatch):
    assert Settings().debug is False
    monkeypatch.setenv("HAPPYSAD_DEBUG", "true")
    assert Settings().debug is True


def test_threads_are_the_setting_or_the_cores_shared_out(monkeypatch):
    import os

    cores = os.cpu_count() or 1
    assert Settings().threads_per_process() == cores
    assert Settings().threads_per_process(cores * 2) == 1
    monkeypatch.setenv("HAPPYSAD_INFERENCE_THREADS", "3")
    assert Settings().threads_per_process(cores * 2) == 3
