"""What one batch costs the broker and the database, at 1, 4 and 16 worker processes, against a
real Redis (a private redis-server, no persistence) and the machine's PostgreSQL (a database
of the benchmark's own), with the tiny test model so the workers' CPU stays low.

Per batch: Redis commands (round trips) and server CPU ms (INFO commandstats, INFO cpu);
PostgreSQL transactions, rows written and read, and the CPU ms of the workers' backends
(pg_stat_database, /proc of the backends named by application_name). The submitter's share is
measured apart (a job submitted with no worker running). From the figures: how many worker
processes one Redis and one PostgreSQL carry before saturating, at a given per-process rate.

    nice -n 10 python -m benchmarks.scale [--processes 1 4 16] [--batches 150] [--batch-size 16]
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ADMIN_URL = os.environ.get("HAPPYSAD_BENCH_POSTGRES_ADMIN",
                           "postgresql://postgres@127.0.0.1:5432/postgres")
DATABASE = os.environ.get("HAPPYSAD_BENCH_POSTGRES_DB", "happysad_bench_scale")
WORKER_APP_NAME = "happysad-bench-worker"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fresh_database() -> str:
    import psycopg

    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone():
            admin.execute(f'CREATE DATABASE "{DATABASE}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{DATABASE}"
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("DROP SCHEMA IF EXISTS public CASCADE")
        connection.execute("CREATE SCHEMA public")
    return url


def backend_cpu_ms(pids: set[int]) -> dict[int, float]:
    """CPU ms (user + system) each backend has used so far."""
    used = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            used[pid] = (int(fields[11]) + int(fields[12])) * 1000 / CLOCK_TICKS
        except (OSError, IndexError):
            pass
    return used


def snapshot(redis_client, pg) -> dict:
    stats = redis_client.info("commandstats")
    cpu = redis_client.info("cpu")
    row = pg.execute("SELECT xact_commit + xact_rollback, tup_inserted, tup_updated, "
                     "tup_deleted, tup_fetched FROM pg_stat_database WHERE datname = %s",
                     (DATABASE,)).fetchone()
    pids = {pid for (pid,) in pg.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
        (DATABASE, WORKER_APP_NAME)).fetchall()}
    return {"redis_calls": sum(value["calls"] for value in stats.values()),
            "redis_cpu_ms": (cpu["used_cpu_user"] + cpu["used_cpu_sys"]) * 1000,
            "pg_transactions": row[0], "pg_rows_inserted": row[1], "pg_rows_updated": row[2],
            "pg_rows_deleted": row[3], "pg_rows_fetched": row[4],
            "backend_cpu": backend_cpu_ms(pids), "at": time.monotonic()}


def difference(before: dict, after: dict, batches: int, polls: int) -> dict:
    keys = ["redis_calls", "redis_cpu_ms", "pg_transactions", "pg_rows_inserted",
            "pg_rows_updated", "pg_rows_deleted", "pg_rows_fetched"]
    delta = {key: after[key] - before[key] for key in keys}
    delta["pg_transactions"] -= polls  # the benchmark's own progress queries
    # Backends that appeared during the run count whole; those there before, their delta (a
    # backend that ended during the run is missed: the workers' pools keep theirs open).
    delta["pg_backend_cpu_ms"] = sum(used - before["backend_cpu"].get(pid, 0.0)
                                     for pid, used in after["backend_cpu"].items())
    per_batch = {f"{key}_per_batch": round(value / batches, 3) for key, value in delta.items()}
    return {"batches": batches, "seconds": round(after["at"] - before["at"], 2), **per_batch}


def wait_done(pg, job_id: int, timeout: float = 1800) -> int:
    polls, deadline = 0, time.monotonic() + timeout
    while time.monotonic() < deadline:
        polls += 1
        if pg.execute("SELECT status FROM jobs WHERE id = %s", (job_id,)).fetchone()[0] == "done":
            return polls
        time.sleep(1)
    raise TimeoutError(f"job {job_id} not done in {timeout} s")


def start_worker(processes: int, log: Path) -> subprocess.Popen:
    env = dict(os.environ, PGAPPNAME=WORKER_APP_NAME, HAPPYSAD_INFERENCE_THREADS="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "scheduler.worker_app", "worker",
         f"--concurrency={processes}", "--queues=labelling", "--loglevel=INFO",
         f"--hostname=bench{processes}@%h", "--without-mingle", "--without-gossip"],
        stdout=open(log, "wb"), stderr=subprocess.STDOUT, env=env, start_new_session=True)
    deadline = time.monotonic() + 600
    while "ready." not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"worker did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.5)
    return process


def stop(process: subprocess.Popen) -> None:
    import signal

    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def image_folder(folder: Path, count: int) -> None:
    import numpy as np

    from tests.images_factory import encode

    folder.mkdir(parents=True)
    original = folder.parent / f"{folder.name}.png"
    original.write_bytes(encode(np.full((8, 8, 3), 96, np.uint8), ".png"))
    for index in range(count):
        os.link(original, folder / f"{index:06d}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--batches", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()

    import psycopg
    import redis

    work = Path(tempfile.mkdtemp(prefix="happysad-scale-"))
    port = free_port()
    redis_server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                     "--save", "", "--appendonly", "no", "--dir", str(work)],
                                    stdout=subprocess.DEVNULL)
    url = fresh_database()
    os.environ.update(HAPPYSAD_HOME=str(work / "home"), HAPPYSAD_DATABASE_URL=url,
                      HAPPYSAD_BROKER_URL=f"redis://127.0.0.1:{port}/0")
    from db.session import session_scope
    from db.settings import get_settings, reset_settings
    from scheduler.submit import submit_source
    from trainer.registry import register
    from trainer.sample_data import write_sample_dataset
    from trainer.train import TrainingParams, train

    reset_settings()
    time.sleep(1)
    redis_client = redis.Redis(port=port)
    write_sample_dataset(work / "train", per_class=12, image_size=32, seed=0)
    register(train(str(work / "train"), TrainingParams(epochs=1, image_size=32, batch_size=16)),
             promote="always", settings=get_settings(), sessions=session_scope)
    results = {"cpu": _cpu_name(), "batch_size": args.batch_size, "runs": []}
    with psycopg.connect(url, autocommit=True) as pg:
        # The submitter's own share: a job sent with no worker running.
        image_folder(work / "submit-only", args.batches * args.batch_size)
        before = snapshot(redis_client, pg)
        job = submit_source(str(work / "submit-only"), batch_size=args.batch_size,
                            settings=get_settings(), sessions=session_scope)
        results["submitter"] = difference(before, snapshot(redis_client, pg), job.batches, 0)
        redis_client.flushdb()  # the queued batches are not worked
        for processes in args.processes:
            folder = work / f"job-{processes}"
            image_folder(folder, args.batches * args.batch_size)
            worker = start_worker(processes, work / f"worker-{processes}.log")
            try:
                warm = work / f"warm-{processes}"
                image_folder(warm, processes * 2 * args.batch_size)  # every process loads the model
                wait_done(pg, submit_source(str(warm), batch_size=args.batch_size,
                                            settings=get_settings(),
                                            sessions=session_scope).job_id)
                before = snapshot(redis_client, pg)
                job = submit_source(str(folder), batch_size=args.batch_size,
                                    settings=get_settings(), sessions=session_scope)
                polls = wait_done(pg, job.job_id)
                run = difference(before, snapshot(redis_client, pg), job.batches, polls)
            finally:
                stop(worker)
            run["processes"] = processes
            run["images_per_second"] = round(job.total_images / run["seconds"], 1)
            results["runs"].append(run)
            print(json.dumps(run), flush=True)
    redis_server.terminate()
    print(json.dumps(results, indent=2))


def _cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines()
                    if line.startswith("Model name"))
    except (OSError, StopIteration):
        return platform.processor()


if __name__ == "__main__":
    main()
