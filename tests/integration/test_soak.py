"""Soak: 20 jobs from 4 concurrent submitters through 2 workers on Redis and PostgreSQL; every
image of every job exactly once, every batch written once, every job done."""

import json
import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from db import queries
from db.session import session_scope
from tests.helpers.commands import happysad
from tests.helpers.images import write_images
from tests.helpers.jobs import assert_each_image_once, batch_attempts, batches_written

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SUBMITTERS = 4
JOBS_PER_SUBMITTER = 5


def submit_jobs(folder: str, count: int) -> list[int]:
    """One submitter: the real CLI, one process per job, as a cron script would run it."""
    return [json.loads(happysad("submit", folder, "--json", "--batch-size", "3").stdout)["job_id"]
            for _ in range(count)]


def test_twenty_jobs_four_submitters_two_workers(tmp_path, postgres, redis_url,
                                                 registered_baseline_model, start_worker):
    expected = {}
    for submitter in range(SUBMITTERS):
        folder = tmp_path / f"camera{submitter}"
        uris = write_images(folder, 6 + submitter, size=48)  # sizes differ: batches differ
        (folder / "broken.jpg").write_bytes(b"not a jpeg")  # an error row in every job
        expected[str(folder)] = [*uris, os.path.join(os.path.realpath(folder), "broken.jpg")]
    workers = [start_worker(f"soak{index}", concurrency=1) for index in range(2)]
    for worker in workers:
        worker.wait_ready()

    with ThreadPoolExecutor(SUBMITTERS) as pool:
        submitted = dict(zip(expected, pool.map(submit_jobs, expected,
                                                [JOBS_PER_SUBMITTER] * SUBMITTERS)))

    job_ids = [job_id for jobs in submitted.values() for job_id in jobs]
    assert len(set(job_ids)) == SUBMITTERS * JOBS_PER_SUBMITTER
    hosts = set()
    for folder, jobs in submitted.items():
        for job_id in jobs:
            rows = assert_each_image_once(job_id, expected[folder], timeout=600)
            assert [uri for uri, row in rows.items() if row.error] == [expected[folder][-1]]
            with session_scope() as session:
                job = queries.get_job(session, job_id)
                assert job.batches_done == job.batches_total == len(batches_written(job_id))
            assert set(batch_attempts(job_id)) == set(batches_written(job_id))
            hosts |= {row.worker_host.split("@")[0] for row in rows.values()}
    assert hosts == {"soak0", "soak1"}  # both workers shared the load
    assert all(worker.process.poll() is None for worker in workers)
