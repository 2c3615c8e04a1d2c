"""`happysad jobs retry N --failed`: a new attempt for the images that got error rows, here
after the model file went missing under the workers and came back."""

import json
import os

import pytest

from db import queries
from db.session import session_scope
from db.settings import reset_settings
from tests.helpers.commands import happysad
from tests.helpers.images import write_images
from tests.helpers.jobs import job_rows, submit, wait_for_job_done

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_failed_images_get_a_new_attempt(tmp_path, postgres, redis_url, monkeypatch,
                                         registered_baseline_model, start_worker):
    monkeypatch.setenv("HAPPYSAD_TASK_MAX_RETRIES", "0")  # a failed batch gets error rows at once
    reset_settings()
    uris = write_images(tmp_path / "incoming", 12)
    job_id = submit(str(tmp_path / "incoming"), batch_size=4).job_id  # queued, no worker
    with session_scope() as session:
        model_path = queries.get_model_version(session, registered_baseline_model).path
    os.rename(model_path, model_path + ".away")
    worker = start_worker("retry", concurrency=1)
    worker.wait_ready()
    first = wait_for_job_done(job_id, status="failed")  # every image failed: no success
    assert (first["classified"], first["failed"]) == (0, 12)
    assert first["reason"].startswith("every image failed (12)") and "missing" in first["reason"]
    assert all("file missing" in row.error for row in job_rows(job_id).values())

    os.rename(model_path + ".away", model_path)  # the model file came back
    retried = json.loads(happysad("jobs", "retry", str(job_id), "--failed", "--json").stdout)
    assert retried == {"job_id": job_id, "images": 12, "batches": 3}
    second = wait_for_job_done(job_id)
    rows = job_rows(job_id)
    assert sorted(rows) == sorted(uris)  # still one row per image
    assert (second["classified"], second["failed"], second["total"]) == (12, 0, 12)
    assert all(row.label and row.error is None for row in rows.values())
    print(f"\nFAULT model file missing, then `jobs retry --failed`: rows expected=12 "
          f"written={len(rows)} distinct={len(set(rows))} failed before={first['failed']} "
          f"after={second['failed']}")
    again = happysad("jobs", "retry", str(job_id), "--failed", check=False)
    assert again.returncode == 1 and "has no failed images" in again.stderr
