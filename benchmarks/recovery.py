"""Fault to done: for each fault case of the last two reliability rounds (issues 19 and 24),
the job's rows expected / written / distinct and the seconds from the fault's end (a service
back, a process killed, space freed) to the job's `done`, with the default settings.

Real services and processes: a private redis-server (killed with and without persistence), a
private PostgreSQL cluster (stopped and started), real `celery worker` processes (one pool
process each) and real `happysad` commands, on small generated images and the tiny 32 px model
(so the workers' CPU stays low). Needs root for the full disk's tmpfs (the case is skipped
otherwise), redis-server and PostgreSQL's server binaries.

    nice -n 10 python -m benchmarks.recovery [--cases redis-none ...] [--json results.json]
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.fault_services import Postgres, Redis, Worker, wait_for

REDIS_PORT, POSTGRES_PORT = 6391, 5441  # clear of the machine's own 6379 and 5432
IMAGES, BATCH_SIZE = 400, 8
TINY_IMAGES, TINY_BATCH_SIZE = 600, 5  # the submitter cases: enough batches to kill it mid-way
OUTAGE_SECONDS = 5  # how long Redis and PostgreSQL stay down
JOB_TIMEOUT = 600
# The figures before (issue 24, measured on the code before it): None where it gave none.
BEFORE = {"redis-none": "118-145", "redis-appendonly": "118-145",
          "submitter-reconciler": "136-172", "submitter-resume": "136-172 (+57 unsent)",
          "worker-parent": "141", "waiters": "2 of 3 exit 1, jobs stranded"}


@dataclass
class Figures:
    case: str
    description: str
    expected: int
    written: int
    distinct: int
    left_at_fault: int  # images without a row when the fault ended
    seconds: float | None  # fault's end to `done`; None if not done in JOB_TIMEOUT
    first_row: float | None  # fault's end to the job's first new row: how long it stalled
    resent_batches: int
    status: str
    before: str = "n/a"


class Bench:
    """The work folder, the private PostgreSQL, the trained tiny model, and the environment
    (this process's and its children's) each case sets."""

    def __init__(self, work: Path):
        self.work, self.workers, self.counter = work, [], 0
        self.postgres = Postgres(POSTGRES_PORT)
        self.use(HAPPYSAD_HOME=str(work / "home"), HAPPYSAD_DATABASE_URL=self.postgres.url,
                 HAPPYSAD_MODEL_STORE=str(work / "models-postgres"), HAPPYSAD_BROKER_URL=None)
        from trainer.sample_data import write_sample_dataset
        from trainer.train import TrainingParams, train

        write_sample_dataset(work / "train", per_class=12, image_size=32, seed=0)
        self.training = train(str(work / "train"),
                              TrainingParams(epochs=1, image_size=32, batch_size=16))
        self.register_model()

    def use(self, **settings) -> None:
        """Set (or with None, remove) HAPPYSAD_* variables here and for processes started."""
        from db.settings import reset_settings

        for name, value in settings.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        reset_settings()

    def register_model(self) -> None:
        from db.session import session_scope
        from db.settings import get_settings
        from trainer.registry import register

        register(self.training, promote="always", settings=get_settings(),
                 sessions=session_scope)

    def start_workers(self, count: int, case: str) -> list[Worker]:
        """`count` workers, ready and warm: each pool process has loaded TensorFlow and the
        model on a first batch (tens of seconds on a loaded machine, which a figure of
        recovery must not include)."""
        from db.session import session_scope
        from db.settings import get_settings
        from scheduler.submit import submit_source

        started = [Worker(f"{case}-{index}", dict(os.environ), self.work / "logs")
                   for index in range(count)]
        self.workers += started
        for worker in started:
            worker.wait_ready()
        # Idle workers each take one batch at once (one pool process, prefetch 1 on Redis).
        warm = image_folder(self.work / f"warm-{case}", 2 * count * BATCH_SIZE)
        job_id = submit_source(str(warm), batch_size=BATCH_SIZE, settings=get_settings(),
                               sessions=session_scope).job_id
        wait_for(lambda: job_status(job_id) == "done", f"warm-up job {job_id}")
        return started

    def restarted(self, worker: Worker) -> Worker:
        """As docker-compose.yml's `restart: unless-stopped` would."""
        self.counter += 1
        again = Worker(f"{worker.name}-again{self.counter}", dict(os.environ), self.work / "logs")
        self.workers.append(again)
        return again

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.workers = []

    def wait_end(self, job_id: int, workers: list[Worker]) -> tuple[float | None, float | None]:
        """(when the job first got a new row, when it ended) as time.monotonic(), restarting
        workers that exited; None for what did not happen within JOB_TIMEOUT."""
        deadline, rows_before, progress = time.monotonic() + JOB_TIMEOUT, None, None
        while time.monotonic() < deadline:
            for index, worker in enumerate(workers):
                if worker.process.poll() is not None:
                    workers[index] = self.restarted(worker)
            try:
                rows = row_counts(job_id)[0]
                rows_before = rows if rows_before is None else rows_before
                if progress is None and rows > rows_before:
                    progress = time.monotonic()
                if job_status(job_id) not in ("scanning", "running"):
                    return progress or time.monotonic(), time.monotonic()
            except Exception:  # the database not back yet
                pass
            time.sleep(0.2)
        return progress, None


def image_folder(folder: Path, count: int, size: int = 32) -> Path:
    """`count` small distinct JPEGs."""
    import cv2
    import numpy as np

    folder.mkdir(parents=True)
    rng = np.random.default_rng(count)
    for index in range(count):
        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        (folder / f"img_{index:04d}.jpg").write_bytes(cv2.imencode(".jpg", pixels)[1].tobytes())
    return folder


def tiny_folder(folder: Path, count: int) -> Path:
    """`count` names for one tiny PNG (hard links): a submitter lists many batches quickly."""
    import cv2
    import numpy as np

    folder.mkdir(parents=True)
    original = folder.parent / f"{folder.name}.png"
    original.write_bytes(cv2.imencode(".png", np.full((8, 8, 3), 128, np.uint8))[1].tobytes())
    for index in range(count):
        os.link(original, folder / f"tiny_{index:05d}.png")
    return folder


# --- what the job's rows say ------------------------------------------------------------------

def job_status(job_id: int) -> str:
    from db import queries
    from db.session import session_scope

    with session_scope() as session:
        return queries.get_job(session, job_id).status


def row_counts(job_id: int) -> tuple[int, int]:
    from sqlalchemy import distinct, func, select

    from db.session import session_scope
    from db.tables import Prediction

    with session_scope() as session:
        return tuple(session.execute(
            select(func.count(), func.count(distinct(Prediction.uri)))
            .where(Prediction.job_id == job_id)).one())


def batch_holders(job_id: int) -> list[str]:
    """Who holds the job's unwritten batches that a worker took."""
    from sqlalchemy import select

    from db.session import session_scope
    from db.tables import JobBatch

    with session_scope() as session:
        return list(session.scalars(select(JobBatch.worker_host).where(
            JobBatch.job_id == job_id, JobBatch.finished_at.is_(None),
            JobBatch.worker_host.is_not(None))))


def recorded_and_resent(job_id: int) -> tuple[int, int]:
    """(batches recorded, sends beyond the first: the reconciler's or a resume's)."""
    from sqlalchemy import case, func, select

    from db.session import session_scope
    from db.tables import JobBatch

    with session_scope() as session:
        return tuple(session.execute(
            select(func.count(), func.coalesce(func.sum(
                case((JobBatch.sends > 1, JobBatch.sends - 1), else_=0)), 0))
            .where(JobBatch.job_id == job_id)).one())


def figures(case: str, description: str, job_id: int, expected: int, left_at_fault: int,
            fault_end: float, times: tuple[float | None, float | None]) -> Figures:
    written, distinct = row_counts(job_id)
    progress, ended = times
    result = Figures(case, description, expected, written, distinct, left_at_fault,
                     None if ended is None else round(ended - fault_end, 1),
                     None if progress is None else round(progress - fault_end, 1),
                     recorded_and_resent(job_id)[1], job_status(job_id), BEFORE.get(case, "n/a"))
    print(json.dumps(asdict(result)), flush=True)
    return result


def left(job_id: int, expected: int) -> int:
    return expected - row_counts(job_id)[0]


# --- the run ------------------------------------------------------------------------------------

def table(results: list[Figures]) -> str:
    lines = ["| case | rows expected | written | distinct | left at the fault's end | "
             "s to the first new row | s to done | batches sent again | status | "
             "s to done before (issue 24) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"]
    for item in results:
        seconds = "not done" if item.seconds is None else f"{item.seconds:.1f}"
        first = "none" if item.first_row is None else f"{item.first_row:.1f}"
        lines.append(f"| {item.description} | {item.expected} | {item.written} | "
                     f"{item.distinct} | {item.left_at_fault} | {first} | {seconds} | "
                     f"{item.resent_batches} | {item.status} | {item.before} |")
    return "\n".join(lines)


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor())
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    return f"CPU: {cpu} ({os.cpu_count()} cores); uptime: {load}"


def main() -> None:
    from benchmarks.recovery_cases import CASES

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    for name in [name for name in os.environ if name.startswith("HAPPYSAD_")]:
        os.environ.pop(name)  # the defaults, but for where the services are
    print(machine(), flush=True)
    work = Path(tempfile.mkdtemp(prefix="happysad-recovery-"))
    bench = Bench(work)
    redis = Redis(work / "redis", REDIS_PORT, "none")  # for the cases that do not kill it
    results, errors = [], []
    try:
        for name in args.cases:
            bench.use(HAPPYSAD_BROKER_URL=redis.url)
            try:
                result = CASES[name](bench)
            except Exception as error:  # one case failing leaves the others' figures
                errors.append(f"{name}: {type(error).__name__}: {error}")
                print(f"case {name} failed: {error}", file=sys.stderr, flush=True)
                bench.stop_workers()
                continue
            if result is not None:
                results.append(result)
    finally:
        bench.stop_workers()
        redis.stop()
        bench.postgres.remove()
    print(f"\n{machine()}\n\n{table(results)}")
    for error in errors:
        print(f"failed: {error}")
    if args.json:
        args.json.write_text(json.dumps([asdict(item) for item in results], indent=2))


if __name__ == "__main__":
    main()
