"""Familiarity (how like the training images an image is) on SQLite and PostgreSQL: stored
beside each prediction, NULL for older models; filtered in the queries, `happysad results`
(every format), the API and the job page; and its share of the review queue."""

import csv
import io
import json
import os

from fastapi.testclient import TestClient

from db import queries
from db.queries import reviews
from db.session import session_scope
from tests.helpers.commands import happysad
from tests.helpers.records import make_job

ROWS = [  # name, probabilities; margin in the comment
    ("s1.jpg", {"happy": 0.99, "sad": 0.01}),  # 0.98: sure
    ("u1.jpg", {"happy": 0.51, "sad": 0.49}),  # 0.02
    ("s2.jpg", {"happy": 0.03, "sad": 0.97}),  # 0.94
    ("u2.jpg", {"happy": 0.45, "sad": 0.55}),  # 0.10
    ("s3.jpg", {"happy": 0.95, "sad": 0.05}),  # 0.90
    ("u3.jpg", {"happy": 0.60, "sad": 0.40}),  # 0.20
    ("s4.jpg", {"happy": 0.98, "sad": 0.02}),  # 0.96
    ("u4.jpg", {"happy": 0.48, "sad": 0.52}),  # 0.04
    ("x1.jpg", {"happy": 0.53, "sad": 0.47}),  # 0.06: unsure and unfamiliar
    ("broken.jpg", None),
]
FAMILIARITY = {"s1.jpg": 0.10, "x1.jpg": 0.20, "s2.jpg": 0.30, "s3.jpg": 0.45,
               "s4.jpg": 0.90, "u1.jpg": 0.95, "u2.jpg": 0.80, "u4.jpg": 0.70}  # u3: none


def names(predictions) -> list[str]:
    return [p.uri.rsplit("/", 1)[-1] for p in predictions]


def api() -> TestClient:
    from happysad.web.app import create_app

    return TestClient(create_app(), base_url="http://127.0.0.1")


def test_queries_filter_by_familiarity_and_leave_rows_without_one_out(database):
    job_id, _ = make_job(["happy", "sad"], ROWS, familiarity=FAMILIARITY)
    with session_scope() as session:
        unfamiliar = session.scalars(queries.predictions_query(job_id, max_familiarity=0.5))
        assert names(unfamiliar) == ["s1.jpg", "s2.jpg", "s3.jpg", "x1.jpg"]
        familiar = queries.iter_predictions(session, job_id, min_familiarity=0.8,
                                            max_familiarity=0.95)
        assert names(familiar) == ["u1.jpg", "u2.jpg", "s4.jpg"]
        sure_but_unfamiliar = queries.iter_predictions(
            session, job_id, order=queries.PredictionOrder.UNCERTAIN, min_confidence=0.9,
            max_familiarity=0.5)
        assert names(sure_but_unfamiliar) == ["s3.jpg", "s2.jpg", "s1.jpg"]


def test_results_carry_familiarity_in_every_format_and_filter_by_it(database):
    job_id, _ = make_job(["happy", "sad"], ROWS, familiarity=FAMILIARITY)
    rows = json.loads(happysad("results", str(job_id), "--format", "json").stdout)
    by_name = {r["uri"].rsplit("/", 1)[-1]: r["familiarity"] for r in rows}
    assert by_name == {name: FAMILIARITY.get(name) for name, _ in ROWS}
    table = list(csv.DictReader(io.StringIO(
        happysad("results", str(job_id), "--format", "csv", "--min-familiarity", "0.3").stdout)))
    assert [(r["uri"].rsplit("/", 1)[-1], r["familiarity"]) for r in table] == [
        ("u1.jpg", "0.95"), ("s2.jpg", "0.3"), ("u2.jpg", "0.8"), ("s3.jpg", "0.45"),
        ("s4.jpg", "0.9"), ("u4.jpg", "0.7")]
    everything = list(csv.DictReader(io.StringIO(
        happysad("results", str(job_id), "--format", "csv").stdout)))
    assert {r["uri"].rsplit("/", 1)[-1]: r["familiarity"] for r in everything}["u3.jpg"] == ""
    lines = happysad("results", str(job_id), "--format", "jsonl", "--max-familiarity",
                     "0.25").stdout.splitlines()
    assert [json.loads(line)["familiarity"] for line in lines] == [0.10, 0.20]
    printed = happysad("results", str(job_id), "--max-familiarity", "0.1",
                       env=dict(os.environ, COLUMNS="250")).stdout
    assert "familiarity" in printed and "0.100" in printed and "u1.jpg" not in printed
    for options, message in [(["--min-familiarity", "0.8", "--max-familiarity", "0.2"],
                              "0.8 is above --max-familiarity 0.2"),
                             (["--max-familiarity", "1.5"],
                              "Invalid value for '--max-familiarity'")]:
        refused = happysad("results", str(job_id), *options, check=False)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr
        assert message in " ".join(refused.stderr.replace("│", " ").split())


def test_the_api_and_the_job_page_carry_familiarity_and_filter_by_it(database):
    job_id, _ = make_job(["happy", "sad"], ROWS, familiarity=FAMILIARITY)
    client = api()
    page = client.get(f"/api/v1/jobs/{job_id}/predictions",
                      params={"max_familiarity": 0.3, "sort": "uncertain"}).json()
    assert [(p["uri"].rsplit("/", 1)[-1], p["familiarity"]) for p in page["items"]] == [
        ("x1.jpg", 0.20), ("s2.jpg", 0.30), ("s1.jpg", 0.10)]
    every = client.get(f"/api/v1/jobs/{job_id}/predictions").json()["items"]
    assert {p["uri"].rsplit("/", 1)[-1]: p["familiarity"] for p in every}["u3.jpg"] is None
    download = client.get(f"/api/v1/jobs/{job_id}/predictions.csv",
                          params={"min_familiarity": 0.9})
    assert [(r["uri"].rsplit("/", 1)[-1], r["familiarity"]) for r in csv.DictReader(
        io.StringIO(download.text))] == [("u1.jpg", "0.95"), ("s4.jpg", "0.9")]
    assert client.get(f"/api/v1/jobs/{job_id}/predictions",
                      params={"min_familiarity": 2}).status_code == 422
    html = client.get(f"/jobs/{job_id}").text
    assert 'name="min_familiarity"' in html and 'name="max_familiarity"' in html
    assert html.count('class="unfamiliar"') == 4  # s1, x1, s2, s3: below 0.5
    filtered = client.get(f"/jobs/{job_id}", params={"max_familiarity": "0.15"}).text
    assert "s1.jpg" in filtered and "x1.jpg" not in filtered and "u1.jpg" not in filtered


def test_the_review_queue_offers_unfamiliar_images_beside_the_least_sure(database):
    job_id, ids = make_job(["happy", "sad"], ROWS, familiarity=FAMILIARITY)
    old_job, _ = make_job(["happy", "sad"], ROWS, source="/old")  # a model without it

    def queue(job, limit=20):
        with session_scope() as session:
            return names(reviews.review_queue(session, job, limit))

    # Least sure (u1 0.02, u4 0.04, x1, u2 0.10, u3 0.20, ...) in turn with the unfamiliar
    # (s1 0.10, x1 0.20, s2 0.30, s3 0.45: however sure), each image once; s4 (0.90) is
    # familiar. A shorter queue is the longer one's beginning (the page asks for 20).
    assert queue(job_id) == ["u1.jpg", "s1.jpg", "u4.jpg", "x1.jpg", "s2.jpg", "u2.jpg",
                             "s3.jpg", "u3.jpg", "s4.jpg"]
    for limit in (6, 3, 1):
        assert queue(job_id, limit) == queue(job_id)[:limit]
    assert queue(job_id, 3) == ["u1.jpg", "s1.jpg", "u4.jpg"]  # at most half unfamiliar
    with session_scope() as session:  # a reviewed image leaves the queue
        reviews.review_prediction(session, ids["s1.jpg"], "sad", "ann")
        reviews.review_prediction(session, ids["u1.jpg"], "happy", "ann")
    assert queue(job_id, 6) == ["u4.jpg", "x1.jpg", "s2.jpg", "u2.jpg", "s3.jpg", "u3.jpg"]
    # Without familiarity: the least sure only, in turn per class, as before.
    assert queue(old_job) == ["u1.jpg", "u4.jpg", "x1.jpg", "u2.jpg", "u3.jpg", "s2.jpg",
                              "s3.jpg", "s4.jpg", "s1.jpg"]
