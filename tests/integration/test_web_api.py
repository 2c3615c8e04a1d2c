"""The HTTP API on real PostgreSQL and Redis with a real worker process: submit, follow,
page and download predictions, thumbnails, cancel, models and retrains; bad input gets a 4xx
with one line, never a 500."""

import csv
import io
import time

import pytest
import redis
from fastapi.testclient import TestClient

from tests.helpers.commands import cli_stdout
from trainer.sample_data import write_sample_dataset

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TOKEN = "api-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def api(monkeypatch, postgres, redis_url, isolated_env) -> TestClient:
    from db.settings import reset_settings
    from happysad.web.app import create_app

    monkeypatch.setenv("HAPPYSAD_API_TOKEN", TOKEN)
    reset_settings()
    return TestClient(create_app(), base_url="http://127.0.0.1")


def wait_for(api: TestClient, job_id: int, status: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = api.get(f"/api/v1/jobs/{job_id}").json()
        if job["status"] == status:
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} not {status} within {timeout}s: {job}")


def test_submit_follow_page_download_and_thumbnails(api, isolated_env, registered_model,
                                                   start_worker, monkeypatch, capsysbinary):
    folder = isolated_env / "incoming"
    write_sample_dataset(folder, per_class=12, image_size=48, seed=5, labelled=False)
    (folder / "broken.jpg").write_text("not a jpeg")
    worker = start_worker("web")
    worker.wait_ready()
    submitted = api.post("/api/v1/jobs", json={"source": str(folder), "batch_size": 5},
                         headers=AUTH)
    assert submitted.status_code == 201, submitted.text
    job_id = submitted.json()["job_id"]
    assert submitted.json()["total"] == 25 and submitted.json()["model_version"] == registered_model
    job = wait_for(api, job_id, "done")
    assert (job["classified"], job["failed"], job["progress"]) == (24, 1, 1.0)
    assert api.get("/api/v1/jobs").json()[0]["job_id"] == job_id

    seen, cursor = [], None
    while True:  # keyset pages of 7 cover every row exactly once
        page = api.get(f"/api/v1/jobs/{job_id}/predictions",
                       params={"limit": 7} | ({"cursor": cursor} if cursor else {})).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len({p["id"] for p in seen}) == 25

    uncertain = api.get(f"/api/v1/jobs/{job_id}/predictions",
                        params={"sort": "uncertain", "limit": 5}).json()
    confidences = [p["confidence"] for p in uncertain["items"]]
    everything = sorted(p["confidence"] for p in seen if p["confidence"] is not None)
    assert confidences == everything[:5]
    second = api.get(f"/api/v1/jobs/{job_id}/predictions",
                     params={"sort": "uncertain", "limit": 5,
                             "cursor": uncertain["next_cursor"]}).json()
    assert [p["confidence"] for p in second["items"]] == everything[5:10]

    errors = api.get(f"/api/v1/jobs/{job_id}/predictions", params={"errors": True}).json()
    assert [p["uri"].rsplit("/", 1)[-1] for p in errors["items"]] == ["broken.jpg"]
    label = seen[0]["label"] or seen[1]["label"]
    by_label = api.get(f"/api/v1/jobs/{job_id}/predictions",
                       params={"label": label, "min_confidence": 0.5, "max_confidence": 1,
                               "limit": 1000}).json()["items"]
    assert by_label and all(p["label"] == label and p["confidence"] >= 0.5 for p in by_label)

    download = api.get(f"/api/v1/jobs/{job_id}/predictions.csv")
    assert download.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(download.text)))
    assert len(table) == 25 and {"p_happy", "p_sad", "uri", "error"} <= set(table[0])
    # One CSV writer for both faces: the CLI's CSV of this job is the API's, byte for byte,
    # whatever the filters and however the download is paged.
    monkeypatch.setattr("happysad.web.api.predictions.CSV_PAGE", 7)
    for params, options in [({}, []), ({"sort": "uncertain"}, ["--sort", "uncertain"]),
                            ({"errors": "true"}, ["--errors"]),
                            ({"label": label, "min_confidence": "0.5"},
                             ["--label", label, "--min-confidence", "0.5"])]:
        served = api.get(f"/api/v1/jobs/{job_id}/predictions.csv", params=params).content
        cli = cli_stdout(monkeypatch, capsysbinary, "results", str(job_id), "--format", "csv",
                         *options)
        assert served == cli, options
    assert cli_stdout(monkeypatch, capsysbinary, "results", str(job_id), "--format",
                      "csv") == download.content

    good = next(p for p in seen if p["label"])
    thumbnail = api.get(f"/api/v1/predictions/{good['id']}/thumbnail")
    assert thumbnail.status_code == 200 and thumbnail.content[:3] == b"\xff\xd8\xff"
    assert list((isolated_env / "cache" / "thumbnails" / str(job_id)).glob("*.jpg"))
    broken = next(p for p in seen if p["error"])
    assert api.get(f"/api/v1/predictions/{broken['id']}/thumbnail").status_code == 404
    deadline = time.monotonic() + 120  # the worker writes the report just after "done"
    while not api.get(f"/api/v1/jobs/{job_id}").json()["report"] and time.monotonic() < deadline:
        time.sleep(0.5)
    for plot in ("labels.png", "probabilities.png"):
        answer = api.get(f"/api/v1/jobs/{job_id}/plots/{plot}")
        assert answer.status_code == 200 and answer.content[:4] == b"\x89PNG"
    page = api.get(f"/jobs/{job_id}")
    assert page.status_code == 200 and "broken.jpg" in page.text and "thumbnail" in page.text


def test_cancel_through_the_api(api, isolated_env, registered_baseline_model):
    folder = isolated_env / "incoming"
    write_sample_dataset(folder, per_class=4, image_size=32, seed=6, labelled=False)
    job_id = api.post("/api/v1/jobs", json={"source": str(folder), "batch_size": 2},
                      headers=AUTH).json()["job_id"]  # no worker: it stays running
    cancelled = api.post(f"/api/v1/jobs/{job_id}/cancel", json={"reason": "wrong folder"},
                         headers=AUTH)
    assert cancelled.status_code == 200
    assert (cancelled.json()["status"], cancelled.json()["cancelled_by"],
            cancelled.json()["cancel_reason"]) == ("cancelled", "api", "wrong folder")
    again = api.post(f"/api/v1/jobs/{job_id}/cancel", headers=AUTH)
    assert again.status_code == 409
    assert again.json() == {"detail": f"job {job_id} is already cancelled: nothing to cancel"}


def test_models_promote_roll_back_and_history(api, tiny_baseline_training):
    from db.session import session_scope
    from db.settings import get_settings
    from trainer.registry import register

    first = register(tiny_baseline_training, promote="always", settings=get_settings(),
                     sessions=session_scope).version
    second = register(tiny_baseline_training, promote="never", settings=get_settings(),
                      sessions=session_scope).version
    models = api.get("/api/v1/models").json()
    assert [m["version"] for m in models] == [first, second]
    assert models[0]["production"] and "accuracy" in models[0]["metrics"]
    promoted = api.post(f"/api/v1/models/{second}/promote", json={"reason": "better"},
                        headers=AUTH)
    assert promoted.status_code == 200
    assert (promoted.json()["version"], promoted.json()["previous_version"]) == (second, first)
    rolled = api.post("/api/v1/models/rollback", headers=AUTH).json()
    assert (rolled["version"], rolled["kind"]) == (first, "rollback")
    assert [p["kind"] for p in api.get("/api/v1/models/promotions").json()] == [
        "manual", "manual", "rollback"]
    assert api.get(f"/api/v1/models/{first}").json()["production"]
    plot = api.get(f"/api/v1/models/{first}/plots/history.png")
    assert plot.status_code == 200 and plot.content[:4] == b"\x89PNG"
    assert api.post("/api/v1/models/999/promote", headers=AUTH).status_code == 404
    page = api.get("/models")
    assert page.status_code == 200 and f"v{second}" in page.text and "Confusion matrix" in page.text


def test_start_a_retrain_run(api, redis_url):
    queued = api.post("/api/v1/retrain-runs", json={"force": True}, headers=AUTH)
    assert queued.status_code == 202 and queued.json()["slot"].startswith("manual-")
    assert redis.Redis.from_url(redis_url).llen("training") == 1  # on the training queue
    assert api.get("/api/v1/retrain-runs").json() == []  # recorded once a worker runs it


def test_bad_input_gets_one_line_and_a_4xx(api, isolated_env):
    (isolated_env / "empty").mkdir(parents=True)
    cases = [
        ({"source": str(isolated_env / "missing")}, 400, "source not found"),
        ({"source": str(isolated_env / "empty")}, 400, "no production model"),
        ({"source": "/etc"}, 400, "not under an allowed root"),
        ({"source": "ftp://host/x"}, 400, "unsupported source"),
    ]
    for body, status, text in cases:
        answer = api.post("/api/v1/jobs", json=body, headers=AUTH)
        assert answer.status_code == status and text in answer.json()["detail"], answer.text
        assert "\n" not in answer.json()["detail"]
    assert api.post("/api/v1/jobs", json={"source": "a\x00b"}, headers=AUTH).status_code == 422
    assert api.get("/api/v1/jobs/424242").status_code == 404
    assert api.get("/api/v1/jobs/1/predictions", params={"cursor": "x"}).status_code == 404
    assert api.get("/api/v1/jobs/99999999999").status_code == 422
    assert api.get("/api/v1/models/rollback").status_code in (404, 405, 422)
    assert api.post("/api/v1/models/rollback", headers=AUTH).status_code == 409


def test_bucket_sources_and_their_thumbnails(s3_server, api, monkeypatch,
                                            registered_baseline_model):
    from db import queries
    from db.session import session_scope
    from db.settings import reset_settings
    from tests.helpers.images import upload_faces

    upload_faces(s3_server, "photos/incoming", 3, labelled=False, seed=2)
    s3_server.pipe_file("photos/secret/key.jpg", b"\xff\xd8\xff secret")
    monkeypatch.setenv("HAPPYSAD_ALLOWED_SOURCES", "s3://photos/incoming")
    reset_settings()
    outside = api.post("/api/v1/jobs", json={"source": "s3://photos/secret"}, headers=AUTH)
    assert outside.status_code == 400 and "not under an allowed root" in outside.text
    submitted = api.post("/api/v1/jobs", json={"source": "s3://photos/incoming"}, headers=AUTH)
    assert submitted.status_code == 201 and submitted.json()["total"] == 6
    job_id = submitted.json()["job_id"]
    with session_scope() as session:  # rows as a worker writes them (none runs here)
        queries.record_batch(session, job_id, 0, [
            {"job_id": job_id, "uri": uri, "label": "happy", "confidence": 0.8,
             "probabilities": {"happy": 0.8, "sad": 0.2}, "error": None,
             "model_version": registered_baseline_model, "worker_host": "test"}
            for uri in ("s3://photos/incoming/happy_0.jpg", "s3://photos/secret/key.jpg")], "t")
        ids = [p.id for p in queries.iter_predictions(session, job_id)]
    thumbnail = api.get(f"/api/v1/predictions/{ids[0]}/thumbnail")
    assert thumbnail.status_code == 200 and thumbnail.content[:3] == b"\xff\xd8\xff"
    refused = api.get(f"/api/v1/predictions/{ids[1]}/thumbnail")  # a row outside its source
    assert refused.status_code == 404 and "refusing to read outside the source" in refused.text
