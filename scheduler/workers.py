"""The worker processes of this machine's queue folder: who is running, the command that
starts one, and starting and stopping them.

With no broker server, `happysad submit --wait` needs to know whether any `happysad worker` is
consuming the queue folder. Each worker leaves a pid file under HAPPYSAD_HOME/run/ while it runs
(written by scheduler.worker_app's signals).
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

from db.settings import get_settings
from worker.identity import process_alive
from worker.task_names import LABELLING_QUEUE

# What every worker process loads (`celery -A scheduler.worker_app worker`).
WORKER_APP = "scheduler.worker_app"


def _run_folder() -> Path:
    folder = get_settings().home_folder("run")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def register_worker(queues: list[str] | None = None) -> None:
    """A pid file naming the queues this worker consumes (so `retrain --wait` beside a
    labelling-only worker knows nobody trains). Best effort: a full disk must not stop it."""
    try:
        (_run_folder() / f"worker-{os.getpid()}.pid").write_text(
            f"{os.getpid()}\n{','.join(queues or [])}")
    except OSError:
        pass


def unregister_worker() -> None:
    (_run_folder() / f"worker-{os.getpid()}.pid").unlink(missing_ok=True)


def running_workers(queue: str | None = None) -> list[int]:
    """Pids of live workers on this machine's queue folder (consuming `queue`, if given);
    stale pid files are removed."""
    pids = []
    for pid_file in _run_folder().glob("worker-*.pid"):
        try:
            pid_text, _, queues = pid_file.read_text().partition("\n")
            pid = int(pid_text)
        except (ValueError, OSError):
            continue
        if queue is not None and queues and queue not in queues.split(","):
            continue
        if process_alive(pid):
            pids.append(pid)
        else:
            pid_file.unlink(missing_ok=True)
    return pids


def worker_command(concurrency: int, queues: str | None = None, loglevel: str = "WARNING",
                   autoscale: str | None = None) -> list[str]:
    command = [sys.executable, "-m", "celery", "-A", WORKER_APP, "worker",
               f"--loglevel={loglevel}"]
    command += [f"--autoscale={autoscale}"] if autoscale else [f"--concurrency={concurrency}"]
    if queues:
        command.append(f"--queues={queues}")
    return command


def start_local_workers(concurrency: int, log_path: Path,
                        queues: str = LABELLING_QUEUE) -> subprocess.Popen:
    """Start one worker (with `concurrency` processes) in the background, logging to a file."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:  # the worker writes through its own copy of the handle
        return subprocess.Popen(worker_command(concurrency, queues), stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)


def stop_local_workers(process: subprocess.Popen, timeout: float = 30) -> None:
    """Warm shutdown (finish the current batch), then force if it does not stop in time."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
