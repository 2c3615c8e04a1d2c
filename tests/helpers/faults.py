"""Services of a test's own that the test may kill: a private redis-server with the
persistence under test, and waiting on a job while restarting workers that exited (as
docker-compose.yml's `restart: unless-stopped` would)."""

import time
from pathlib import Path

from benchmarks.fault_services import Redis
from db import queries
from db.session import session_scope
from tests.helpers.jobs import job_rows
from tests.helpers.polling import wait_until
from tests.helpers.processes import free_port


def killable_redis(folder: Path, persistence: str) -> Redis:
    """A private redis-server on a free port; `persistence`: "none" or "appendonly" (the keys
    of benchmarks.fault_services.REDIS_PERSISTENCE)."""
    return Redis(folder, free_port(), persistence)


def job_status(job_id: int) -> str:
    with session_scope() as session:
        return queries.get_job(session, job_id).status


def wait_restarting_workers(job_id: int, workers: list, start_worker, timeout: float) -> float:
    """Wait for the job to end, restarting any worker that exited (with the same app);
    returns when it ended."""
    def ended() -> bool:
        for index, worker in enumerate(workers):
            if worker.process.poll() is not None:
                workers[index] = start_worker(f"{worker.name}-again{index}", concurrency=1,
                                                app=worker.app)
        return job_status(job_id) not in ("scanning", "running")

    wait_until(ended, f"job {job_id} to end", timeout=timeout, poll=0.5)
    return time.monotonic()


def resent_batches(job_id: int) -> int:
    """How many sends of the job's batches were the reconciler's or a resume's."""
    from sqlalchemy import func, select

    from db.tables import JobBatch

    with session_scope() as session:
        return session.scalar(select(func.coalesce(func.sum(JobBatch.sends - 1), 0))
                              .where(JobBatch.job_id == job_id, JobBatch.sends > 1))


def report_rows(case: str, job_id: int, expected: list[str], fault_at: float,
                ended_at: float, **extra) -> dict:
    """Print rows expected / written / distinct and the time to finish after the fault."""
    with session_scope() as session:
        written = sum(1 for _ in queries.iter_predictions(session, job_id))
    rows = job_rows(job_id)  # asserts no URI has two rows
    figures = {"case": case, "expected": len(expected), "written": written,
               "distinct": len(rows), "seconds_after_fault": round(ended_at - fault_at, 1),
               "batches_resent": resent_batches(job_id), **extra}
    print(f"\nFAULT {case}: rows expected={figures['expected']} written={written} "
          f"distinct={figures['distinct']} finished {figures['seconds_after_fault']} s after "
          f"the fault; {figures}")
    return figures | {"rows": rows}
