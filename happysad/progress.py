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
                                TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                                TimeRemainingColumn(), TextColumn("{task.description}"),
                                console=output.error_console)
            self.bar.start()
            self.task = self.bar.add_task(WAITING, total=None, failed=0, rate="")
        elif self.enabled:
            output.say(f"job {self.job_id}: {WAITING}", to_stderr=True)
            self.last_line = time.monotonic()
        return self

    def rate(self, done: int, now: float) -> str:
        """Images a second since the first rows appeared (model loading is not counted), as
        text; empty until rows have come twice: rows come a batch at a time, so one batch
        seen is no rate yet (it was "0.0 img/s" with images done)."""
        if self.first_done is None:
            if done:
                self.first_done = (now, done)
            return ""
        since, at_first = self.first_done
        if done == at_first:
            return ""
        return f"{(done - at_first) / max(now - since, 1e-6):.1f} img/s"

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
            output.say(f"job {self.job_id}: {done}{of} images done, {failed} failed"
                       f"{', ' + rate if rate else ''}{state}", to_stderr=True)
            self.last_line = now

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()
