"""The real `happysad` command, run in a subprocess as a user would, or in this process."""

import os
import subprocess
import sys

# What TensorFlow writes as it starts: no command prints it.
TENSORFLOW_STARTUP_LINES = ("absl::InitializeLog", "oneDNN", "cuda", "CUDA",
                            "cpu_feature_guard")


def happysad(*args: str, env: dict | None = None, timeout: float = 600,
             check: bool = True) -> subprocess.CompletedProcess:
    """Run the real `happysad` command in a subprocess, as a user would."""
    result = subprocess.run([sys.executable, "-m", "happysad.cli", *args], capture_output=True,
                            text=True, timeout=timeout, env=env or dict(os.environ))
    if check and result.returncode != 0:
        raise AssertionError(f"happysad {' '.join(args)} failed ({result.returncode}):\n"
                             f"{result.stdout}\n{result.stderr}")
    return result


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    assert "error:" in result.stderr
    for fragment in fragments:
        assert fragment in " ".join(result.stderr.split()), result.stderr


def cli_stdout(monkeypatch, capsysbinary, *args: str) -> bytes:
    """What `happysad ARGS` writes to stdout, in this process (the same database)."""
    from happysad.cli import main

    monkeypatch.setattr(sys, "argv", ["happysad", *args])
    try:
        main()
    except SystemExit as exit:
        assert not exit.code, capsysbinary.readouterr().err
    return capsysbinary.readouterr().out
