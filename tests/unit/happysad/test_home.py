"""One home wherever you stand: with HAPPYSAD_HOME unset every command uses the per-user XDG
data folder, creates nothing in the working folder, and its hints are commands that work as
printed (the script's own path when `happysad` is not on PATH)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
SCRIPT = Path(sys.executable).parent / "happysad"  # the venv's console script, as `make` made it


def run(args: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(not SCRIPT.exists(), reason="no happysad console script beside python")
def test_every_folder_shares_the_per_user_home_and_hints_run_as_printed(tmp_path, monkeypatch):
    monkeypatch.delenv("HAPPYSAD_HOME")
    user = tmp_path / "user"
    env = {key: value for key, value in os.environ.items() if key != "XDG_DATA_HOME"}
    env |= {"HOME": str(user), "PATH": "/usr/bin:/bin"}  # the venv is not activated
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    listed = run([str(SCRIPT), "jobs", "--json"], first, env)
    assert listed.returncode == 0, listed.stderr
    assert (user / ".local/share/happysad/happysad.db").exists()
    missing = run([str(SCRIPT), "jobs", "show", "3"], second, env)
    assert missing.returncode == 1
    assert f"`{SCRIPT} jobs`" in missing.stderr, missing.stderr  # a hint that runs as shown
    assert run([str(SCRIPT), "jobs"], second, env).returncode == 0
    assert not any(first.iterdir()) and not any(second.iterdir())  # nothing in the work folder
    relative = run([os.path.relpath(SCRIPT, tmp_path), "jobs", "show", "3"], tmp_path, env)
    assert f"`{os.path.relpath(SCRIPT, tmp_path)} jobs`" in relative.stderr, relative.stderr
