"""A job's progress while a command waits for it: a Rich bar in a terminal, plain lines to a
file or a pipe (a cron job, CI), so a wait is never silent.

Until the first image is done it says what it waits for: a worker that starts loads TensorFlow
and the model first, which takes seconds to a minute and is not "0.0 img/s".
"""

import time

from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

from happysad import output

WAITING = "waiting for a worker to start on it (workers load TensorFlow and the model first)"
LINE_EVERY_SECONDS = 5.0  # without a terminal: a line at most this often, and at the end


class JobProgress:
    def __init__(self, job_id: int, enabled: bool = True):
        self.job_id = job_id
        self.enabled = enabled
        self.terminal = output.error_console.is_terminal
        self.first_done: tuple[float, int] | None = None  # (when, how many) rows first seen
        self.last_line = 0.0
        self.bar = None

    def __enter__(self) -> "JobProgress":
        if self.enabled and self.terminal:
            self.bar = Progress(TextColumn(f"job {self.job_id}"), BarColumn(),
                                MofNCompleteColumn(), TextColumn("{task.fields[failed]} failed"),
                                TextColumn("{task.fields[rate]:.1f} img/s"), TimeElapsedColumn(),
                                TimeRemainingColumn(), TextColumn("{task.description}"),
                                console=output.error_console)
            self.bar.start()
            self.task = self.bar.add_task(WAITING, total=None, failed=0, rate=0.0)
        elif self.enabled:
            output.say(f"job {self.job_id}: {WAITING}", to_stderr=True)
            self.last_line = time.monotonic()
        return self

    def rate(self, done: int, now: float) -> float:
        """Images a second since the first rows appeared: model loading is not counted."""
        if self.first_done is None:
            if done:
                self.first_done = (now, done)
            return 0.0
        since, at_first = self.first_done
        return (done - at_first) / max(now - since, 1e-6)

    def update(self, record: dict, finished: bool) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        failed, total = record["failed"], record["total"]
        done = record["classified"] + failed
        rate = self.rate(done, now)
        if self.bar is not None:
            self.bar.update(self.task, total=total, completed=done, failed=failed, rate=rate,
                            description="" if done or finished else WAITING)
        elif finished or (done and now - self.last_line >= LINE_EVERY_SECONDS):
            of = f"/{total}" if total is not None else ""
            state = f" ({record['status']})" if finished else ""
            output.say(f"job {self.job_id}: {done}{of} images done, {failed} failed, "
                       f"{rate:.1f} img/s{state}", to_stderr=True)
            self.last_line = now

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()
