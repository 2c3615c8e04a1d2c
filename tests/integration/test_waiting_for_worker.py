"""A job that nothing reads says so: `submit`, `jobs show`, the API and the pages say
"waiting for a worker" and how to start one while no worker consumes the labelling queue,
and stop saying it once one does (embedded queue: pid files; Redis: Celery's inspect)."""

import json

import pytest
from fastapi.testclient import TestClient

from tests.helpers.commands import happysad
from tests.helpers.images import write_images
from tests.helpers.polling import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TOKEN = "waiting-test-token-0123"


def test_cli_says_a_job_waits_for_a_worker_until_one_starts(isolated_env,
                                                            registered_baseline_model,
                                                            start_worker):
    write_images(isolated_env / "incoming", 6)
    submitted = happysad("submit", str(isolated_env / "incoming"))
    assert "waiting for a worker" in submitted.stderr, submitted.stderr
    assert "worker`" in submitted.stderr and "--wait" in submitted.stderr
    shown = json.loads(happysad("jobs", "show", "1", "--json").stdout)
    assert shown["status"] == "running"
    assert "no worker consumes the labelling queue" in shown["waiting_for_worker"]
    table = " ".join(happysad("jobs", "show", "1").stdout.split())
    assert "waiting for a worker" in table
    assert "running jobs are waiting for a worker" in happysad("jobs").stderr
    start_worker("late").wait_ready()
    done = wait_until(lambda: (record := json.loads(happysad("jobs", "show", "1", "--json")
                                                    .stdout))["status"] == "done" and record,
                      "the job to end", timeout=300, poll=1)
    assert done["waiting_for_worker"] is None


def test_api_and_page_say_a_job_waits_for_a_worker_on_redis(monkeypatch, postgres, redis_url,
                                                            isolated_env,
                                                            registered_baseline_model,
                                                            start_worker):
    from db.settings import reset_settings
    from happysad.web.app import create_app

    monkeypatch.setenv("HAPPYSAD_API_TOKEN", TOKEN)
    reset_settings()
    api = TestClient(create_app(), base_url="http://127.0.0.1")
    write_images(isolated_env / "incoming", 6)
    answer = api.post("/api/v1/jobs", json={"source": str(isolated_env / "incoming")},
                      headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 201, answer.text
    assert answer.json()["waiting_for_worker"].startswith("waiting for a worker")
    page = api.get(f"/jobs/{answer.json()['job_id']}", headers={"Authorization": f"Bearer {TOKEN}"})
    assert "waiting for a worker: no worker consumes the labelling queue" in page.text
    start_worker("late").wait_ready()
    job = wait_until(lambda: (record := api.get("/api/v1/jobs/1").json())["status"] == "done"
                     and record, "the job to end", timeout=300, poll=1)
    assert job["waiting_for_worker"] is None
