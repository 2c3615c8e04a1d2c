"""One glue for both faces: the CLI and the API give a job's predictions through the same
records, pager, CSV writer and sort names, and a promotion answers the one it wrote.

In-process on SQLite (the CLI through happysad.cli.main, the API through a TestClient); the
same CSV on PostgreSQL with a real worker's job is in tests/integration/test_web_api.py.
"""

import json
from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from db import queries
from db.session import session_scope
from tests.helpers.commands import cli_stdout
from tests.helpers.records import add_version, make_job

TOKEN = "one-glue-token-0123456789"


@pytest.fixture
def api(monkeypatch) -> TestClient:
    from db.settings import reset_settings
    from happysad.web.app import create_app

    monkeypatch.setenv("HAPPYSAD_API_TOKEN", TOKEN)
    reset_settings()
    return TestClient(create_app(), base_url="http://127.0.0.1")


@pytest.fixture
def job() -> int:
    """A done job of seven rows: six classified with distinct confidences, one unreadable."""
    confidences = [0.9, 0.55, 0.99, 0.7, 0.6, 0.8]
    job_id, _ids = make_job(
        ["happy", "sad"],
        [(f"{index}.jpg", {"happy": 1 - value, "sad": value})
         for index, value in enumerate(confidences)] + [("broken.jpg", None)],
        familiarity={"0.jpg": 0.3, "1.jpg": 0.9})
    return job_id


@pytest.mark.parametrize(("options", "params"), [
    ([], {}),
    (["--sort", "uncertain"], {"sort": "uncertain"}),
    (["--errors"], {"errors": "true"}),
    (["--label", "sad", "--min-confidence", "0.6"], {"label": "sad", "min_confidence": "0.6"}),
    (["--max-familiarity", "0.5"], {"max_familiarity": "0.5"}),
    (["--min-familiarity", "0.95"], {"min_familiarity": "0.95"})])  # no row: the header alone
def test_the_clis_csv_is_the_apis_csv_byte_for_byte(monkeypatch, capsysbinary, api, job,
                                                   options, params):
    monkeypatch.setattr("happysad.web.api.predictions.CSV_PAGE", 2)  # several pages
    cli = cli_stdout(monkeypatch, capsysbinary, "results", str(job), "--format", "csv", *options)
    served = api.get(f"/api/v1/jobs/{job}/predictions.csv", params=params)
    assert served.status_code == 200
    assert served.content == cli
    lines = cli.decode().splitlines()
    assert lines[0].startswith("id,uri,label,confidence,familiarity,error,")
    for line in lines[1:]:  # created_at as ISO 8601: 2026-12-06T06:23:21+00:00
        assert datetime.fromisoformat(line.split(",")[8]).tzinfo is not None
        assert "T" in line.split(",")[8]


def same(cli: dict, served: dict) -> None:
    """The API's record is the CLI's, field for field (its datetimes may end in Z where the
    CLI's end in +00:00)."""
    for key, value in served.items():
        if key in ("at", "created_at", "submitted_at", "finished_at") and value is not None:
            assert datetime.fromisoformat(cli[key]) == datetime.fromisoformat(value), key
        else:
            assert cli[key] == value, key


def test_the_clis_json_holds_the_apis_records(monkeypatch, capsysbinary, api, job):
    cli = json.loads(cli_stdout(monkeypatch, capsysbinary, "results", str(job), "--format",
                                "json", "--sort", "uncertain"))
    served = api.get(f"/api/v1/jobs/{job}/predictions",
                     params={"sort": "uncertain", "limit": 1000}).json()["items"]
    assert len(cli) == len(served) == 6
    for cli_row, served_row in zip(cli, served, strict=True):
        same(cli_row, served_row)
    same(json.loads(cli_stdout(monkeypatch, capsysbinary, "jobs", "show", str(job), "--json")),
         api.get(f"/api/v1/jobs/{job}").json())
    cli_models = json.loads(cli_stdout(monkeypatch, capsysbinary, "models", "list", "--json"))
    served_models = api.get("/api/v1/models").json()
    assert "path" in cli_models[0] and "path" not in served_models[0]  # a server's path
    same(cli_models[0], served_models[0])


def test_the_apis_former_sort_name_is_an_alias(api, job):
    def page(**params) -> dict:
        answer = api.get(f"/api/v1/jobs/{job}/predictions", params=params | {"limit": 3})
        assert answer.status_code == 200, answer.text
        return answer.json()

    listing = page(sort="listing")
    assert page(sort="id") == listing == page()
    assert page(sort="id", cursor=listing["next_cursor"]) == page(cursor=listing["next_cursor"])
    refused = api.get(f"/api/v1/jobs/{job}/predictions", params={"cursor": "0.5:3"})
    assert refused.status_code == 400 and "not a cursor for sort=listing" in refused.text
    assert api.get(f"/api/v1/jobs/{job}/predictions", params={"sort": "x"}).status_code == 422


def two_versions() -> None:
    with session_scope() as session:
        for version in (1, 2, 3):
            add_version(session, version)
        session.flush()
        queries.set_production(session, 1, "auto", "first")


def test_a_promotion_answers_the_one_it_wrote_when_another_comes_between(api):
    """Another caller promotes v3 just after this call's transaction commits: the answer is
    still this call's promotion of v2 (the API used to read back "the newest promotion")."""
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    from happysad.promotions import promote

    two_versions()
    competing = []

    def another_caller(_session) -> None:
        if not competing:
            competing.append(True)
            with session_scope() as session:
                promote(session, 3, "someone else")

    event.listen(Session, "after_commit", another_caller)
    try:
        answer = api.post("/api/v1/models/2/promote", json={"reason": "mine"},
                          headers={"Authorization": f"Bearer {TOKEN}"})
    finally:
        event.remove(Session, "after_commit", another_caller)
    assert competing and answer.status_code == 200
    assert (answer.json()["version"], answer.json()["reason"]) == (2, "mine")
    history = api.get("/api/v1/models/promotions").json()
    assert [(p["version"], p["reason"]) for p in history][-2:] == [(2, "mine"),
                                                                  (3, "someone else")]
    assert answer.json()["id"] == history[-2]["id"]


def test_promoting_an_older_version_is_a_rollback_on_both_faces(monkeypatch, capsysbinary, api):
    two_versions()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert api.post("/api/v1/models/3/promote", headers=headers).json()["kind"] == "manual"
    assert api.post("/api/v1/models/2/promote", headers=headers).json()["kind"] == "rollback"
    cli_stdout(monkeypatch, capsysbinary, "models", "promote", "1")
    history = json.loads(cli_stdout(monkeypatch, capsysbinary, "models", "history", "--json"))
    assert [(p["version"], p["previous_version"], p["kind"]) for p in history] == [
        (1, None, "auto"), (3, 1, "manual"), (2, 3, "rollback"), (1, 2, "rollback")]
    served = api.get("/api/v1/models/promotions").json()
    for cli_promotion, served_promotion in zip(history, served, strict=True):
        same(cli_promotion, served_promotion)
