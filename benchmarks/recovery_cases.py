"""The fault cases of benchmarks.recovery, one function each: set up, fault, measure."""

import json
import os
import signal
import subprocess
import sys
import time

from benchmarks.fault_services import Redis, SmallDisk, wait_for
from benchmarks.recovery import (BATCH_SIZE, IMAGES, OUTAGE_SECONDS, REDIS_PORT, TINY_BATCH_SIZE,
                                 TINY_IMAGES, Bench, Figures, batch_holders, figures,
                                 image_folder, job_status, left, recorded_and_resent,
                                 row_counts, tiny_folder)


def no_fault(bench: Bench, tiny: bool) -> Figures:
    """The same jobs with nothing killed, for scale: submit to done on two warm workers."""
    case = "no-fault-tiny" if tiny else "no-fault"
    workers = bench.start_workers(2, case)
    count = TINY_IMAGES if tiny else IMAGES
    folder = (tiny_folder if tiny else image_folder)(bench.work / f"images-{case}", count)
    started = time.monotonic()
    if tiny:
        subprocess.run([sys.executable, "-m", "happysad.cli", "submit", str(folder),
                        "--batch-size", str(TINY_BATCH_SIZE)], check=True, capture_output=True)
        job_id = _newest_job(str(folder))
    else:
        job_id = _submit(folder)
    ended = bench.wait_end(job_id, workers)
    bench.stop_workers()
    what = (f"no fault: `happysad submit` of {count} tiny images, batches of {TINY_BATCH_SIZE}"
            if tiny else f"no fault: {count} images, batches of {BATCH_SIZE}")
    return figures(case, what + " (submit to done)", job_id, count, count, started, ended)


def redis_killed(bench: Bench, persistence: str) -> Figures:
    case = f"redis-{persistence}"
    redis = Redis(bench.work / case, REDIS_PORT + 1, persistence)
    try:
        bench.use(HAPPYSAD_BROKER_URL=redis.url)
        workers = bench.start_workers(2, case)
        job_id = _submit(image_folder(bench.work / f"images-{case}", IMAGES))
        wait_for(lambda: row_counts(job_id)[0] >= 3 * BATCH_SIZE, "a few batches written")
        redis.kill()
        time.sleep(OUTAGE_SECONDS)
        redis.start()
        fault_end, left_at_fault = time.monotonic(), left(job_id, IMAGES)
        ended = bench.wait_end(job_id, workers)
        return figures(case, f"Redis kill -9 ({persistence} persistence), back after "
                       f"{OUTAGE_SECONDS} s", job_id, IMAGES, left_at_fault, fault_end, ended)
    finally:
        bench.stop_workers()
        redis.stop()


def postgres_stopped(bench: Bench) -> Figures:
    workers = bench.start_workers(2, "postgres")
    job_id = _submit(image_folder(bench.work / "images-postgres", IMAGES))
    wait_for(lambda: row_counts(job_id)[0] >= 3 * BATCH_SIZE, "a few batches written")
    bench.postgres.stop("fast")  # every connection cut, as a restart does
    time.sleep(OUTAGE_SECONDS)
    bench.postgres.start()
    fault_end, left_at_fault = time.monotonic(), left(job_id, IMAGES)
    ended = bench.wait_end(job_id, workers)
    bench.stop_workers()
    return figures("postgres", f"PostgreSQL stopped (fast), started after {OUTAGE_SECONDS} s",
                   job_id, IMAGES, left_at_fault, fault_end, ended)


def submitter_killed(bench: Bench, resume_by_hand: bool) -> Figures:
    case = "submitter-resume" if resume_by_hand else "submitter-reconciler"
    workers = bench.start_workers(2, case)
    folder = tiny_folder(bench.work / f"images-{case}", TINY_IMAGES)
    process = subprocess.Popen([sys.executable, "-m", "happysad.cli", "submit", str(folder),
                                "--batch-size", str(TINY_BATCH_SIZE)], env=dict(os.environ),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    job_id = wait_for(lambda: _newest_job(str(folder)), "the job to be made", poll=0.01)
    wait_for(lambda: recorded_and_resent(job_id)[0] >= 20, "20 batches recorded", poll=0.01)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    fault_end, left_at_fault = time.monotonic(), left(job_id, TINY_IMAGES)
    if resume_by_hand:
        subprocess.run([sys.executable, "-m", "happysad.cli", "jobs", "resume", str(job_id)],
                       check=True, capture_output=True)
    ended = bench.wait_end(job_id, workers)
    bench.stop_workers()
    how = "`happysad jobs resume N` at once" if resume_by_hand else "left to the reconciler"
    return figures(case, f"submitter SIGKILLed mid-listing, {how}", job_id, TINY_IMAGES,
                   left_at_fault, fault_end, ended)


def worker_killed(bench: Bench, parent: bool) -> Figures:
    """A pool process (its parent starts another) or the parent alone (restarted, as
    docker-compose.yml's restart policy would), killed while it holds a batch."""
    case = "worker-parent" if parent else "worker-child"
    workers = bench.start_workers(2, case)
    job_id = _submit(image_folder(bench.work / f"images-{case}", IMAGES))
    doomed = workers[0]
    wait_for(lambda: any(holder.startswith(f"{doomed.name}@")
                         for holder in batch_holders(job_id)),
             "the doomed worker to hold a batch", poll=0.01)
    for pid in [doomed.process.pid] if parent else doomed.children():
        os.kill(pid, signal.SIGKILL)
    fault_end, left_at_fault = time.monotonic(), left(job_id, IMAGES)
    ended = bench.wait_end(job_id, workers)
    bench.stop_workers()
    what = "worker's parent SIGKILLed (restarted)" if parent else "worker's pool process SIGKILLed"
    return figures(case, f"{what} holding a batch", job_id, IMAGES, left_at_fault, fault_end,
                   ended)


def full_disk(bench: Bench) -> Figures | None:
    """The embedded queue (HAPPYSAD_HOME) on a full 2 MB tmpfs: `submit` fails after making
    its job; a worker runs meanwhile; then space is freed."""
    if os.geteuid() != 0:
        print("full disk: skipped (mounting a tmpfs needs root)", flush=True)
        return None
    disk = SmallDisk(bench.work / "small-disk")
    saved_home = os.environ["HAPPYSAD_HOME"]
    try:
        bench.use(HAPPYSAD_HOME=str(disk.mount_point / "home"), HAPPYSAD_BROKER_URL=None)
        workers = bench.start_workers(1, "full-disk")
        folder = image_folder(bench.work / "images-full-disk", IMAGES)
        disk.fill()
        submitted = subprocess.run([sys.executable, "-m", "happysad.cli", "submit", str(folder),
                                    "--batch-size", str(BATCH_SIZE)], capture_output=True,
                                   text=True)
        if "no space left" not in submitted.stderr:
            raise RuntimeError(f"submit on a full disk: {submitted.stderr or submitted.stdout}")
        job_id = _newest_job(str(folder))
        disk.free()
        fault_end, left_at_fault = time.monotonic(), left(job_id, IMAGES)
        ended = bench.wait_end(job_id, workers)
        return figures("full-disk", "embedded queue on a full disk (submit failed), space freed",
                       job_id, IMAGES, left_at_fault, fault_end, ended)
    finally:
        bench.stop_workers()
        bench.use(HAPPYSAD_HOME=saved_home)
        disk.unmount()


def concurrent_waiters(bench: Bench) -> Figures:
    """Three `submit --wait` at once on the embedded default (SQLite, the queue folder) with
    no worker running: they start local workers and share them. Timed from their start."""
    saved = {name: os.environ.get(name) for name in
             ("HAPPYSAD_HOME", "HAPPYSAD_DATABASE_URL", "HAPPYSAD_MODEL_STORE")}
    bench.use(HAPPYSAD_HOME=str(bench.work / "home-embedded"), HAPPYSAD_DATABASE_URL=None,
              HAPPYSAD_BROKER_URL=None, HAPPYSAD_MODEL_STORE=None)
    try:
        bench.register_model()
        sizes = [12, 120, 240]
        folders = [image_folder(bench.work / f"images-waiter-{size}", size) for size in sizes]
        started = time.monotonic()
        waiters = [subprocess.Popen([sys.executable, "-m", "happysad.cli", "submit", str(folder),
                                     "--batch-size", "4", "--wait", "--json"],
                                    env=dict(os.environ, HAPPYSAD_WORKER_CONCURRENCY="1"),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                   for folder in folders]
        outcomes = [(waiter.communicate(timeout=900), waiter.returncode) for waiter in waiters]
        ended = time.monotonic()
        jobs = [json.loads(out)["job_id"] if code == 0 else _newest_job(str(folder))
                for ((out, _), code), folder in zip(outcomes, folders)]
        counts = [row_counts(job_id) for job_id in jobs]
        statuses = [job_status(job_id) for job_id in jobs]
        codes = [code for _, code in outcomes]
        result = Figures("waiters", f"3 x `submit --wait` at once, no worker running (exit "
                         f"codes {codes}; timed from their start)", sum(sizes),
                         sum(written for written, _ in counts),
                         sum(distinct for _, distinct in counts), sum(sizes),
                         round(ended - started, 1), None, sum(recorded_and_resent(job)[1]
                                                        for job in jobs),
                         ",".join(statuses), "2 of 3 exit 1, jobs stranded")
        print(json.dumps(result.__dict__), flush=True)
        return result
    finally:
        bench.use(**saved)


def _submit(folder) -> int:
    from db.session import session_scope
    from db.settings import get_settings
    from scheduler.submit import submit_source

    return submit_source(str(folder), batch_size=BATCH_SIZE, settings=get_settings(),
                         sessions=session_scope).job_id


def _newest_job(source: str) -> int | None:
    from sqlalchemy import select

    from db.session import session_scope
    from db.tables import Job

    with session_scope() as session:
        return session.scalar(select(Job.id).where(Job.source == os.path.realpath(source))
                              .order_by(Job.id.desc()).limit(1))


CASES = {
    "no-fault": lambda bench: no_fault(bench, tiny=False),
    "no-fault-tiny": lambda bench: no_fault(bench, tiny=True),
    "redis-none": lambda bench: redis_killed(bench, "none"),
    "redis-appendonly": lambda bench: redis_killed(bench, "appendonly"),
    "postgres": postgres_stopped,
    "submitter-reconciler": lambda bench: submitter_killed(bench, resume_by_hand=False),
    "submitter-resume": lambda bench: submitter_killed(bench, resume_by_hand=True),
    "worker-child": lambda bench: worker_killed(bench, parent=False),
    "worker-parent": lambda bench: worker_killed(bench, parent=True),
    "full-disk": full_disk,
    "waiters": concurrent_waiters,
}
