"""Reviews on SQLite and PostgreSQL: a verdict beside the prediction (never over it), history
on re-review, `reviewed_label` in `happysad results` (every format) and in the API, the
write token, and the review queue's order."""

import csv
import io
import json
import os

import pytest
from fastapi.testclient import TestClient

from db import queries

from db.queries import reviews
from db.session import session_scope
from db.tables import Prediction, Review
from tests.helpers.commands import happysad
from tests.helpers.records import make_job

TOKEN = "review-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def api(monkeypatch) -> TestClient:
    from db.settings import reset_settings
    from happysad.web.app import create_app

    monkeypatch.setenv("HAPPYSAD_API_TOKEN", TOKEN)
    reset_settings()
    return TestClient(create_app(), base_url="http://127.0.0.1")


def test_a_review_sits_beside_the_prediction_and_a_second_one_keeps_history(database):
    job_id, ids = make_job(["happy", "sad"], [("a.jpg", {"happy": 0.8, "sad": 0.2}),
                                              ("b.jpg", {"happy": 0.3, "sad": 0.7})])
    with session_scope() as session:
        first = reviews.review_prediction(session, ids["a.jpg"], "sad", "ann")
        assert (first.model_label, first.reviewed_label, first.reviewer) == ("happy", "sad", "ann")
        confirmed = reviews.review_prediction(session, ids["b.jpg"], "sad", "ann")
        assert confirmed.model_label == confirmed.reviewed_label == "sad"
    with session_scope() as session:
        again = reviews.review_prediction(session, ids["a.jpg"], "happy", "bob")
    with session_scope() as session:
        prediction = session.get(Prediction, ids["a.jpg"])  # the model's row is unchanged
        assert (prediction.label, prediction.confidence) == ("happy", 0.8)
        current = reviews.current_reviews(session, ids.values())
        assert current[ids["a.jpg"]].id == again.id
        assert current[ids["a.jpg"]].reviewer == "bob"
        assert [r.reviewed_label for r in reviews.list_reviews(session, job_id)] == ["sad", "happy"]
        history = reviews.list_reviews(session, job_id, history=True)
        assert [(r.reviewed_label, r.superseded_at is not None) for r in history] == [
            ("sad", True), ("sad", False), ("happy", False)]
        assert reviews.review_counts(session, job_id) == {"reviewed": 2, "corrected": 0}
        assert session.query(Review).count() == 3


def test_an_unreadable_image_or_an_unknown_class_cannot_be_reviewed(database):
    _, ids = make_job(["happy", "sad"], [("a.jpg", {"happy": 0.8, "sad": 0.2}),
                                         ("broken.jpg", None)])
    with session_scope() as session:
        with pytest.raises(reviews.NotReviewable, match="could not be read"):
            reviews.review_prediction(session, ids["broken.jpg"], "sad", "ann")
        with pytest.raises(reviews.NotReviewable, match="knows happy, sad"):
            reviews.review_prediction(session, ids["a.jpg"], "angry", "ann")
        with pytest.raises(queries.NotFound):
            reviews.review_prediction(session, 999_999, "sad", "ann")


def test_results_show_the_reviewed_label_in_every_format(database):
    job_id, ids = make_job(["happy", "sad"], [("a.jpg", {"happy": 0.8, "sad": 0.2}),
                                              ("b.jpg", {"happy": 0.3, "sad": 0.7})])
    happysad("reviews", "add", str(ids["a.jpg"]), "sad", "--reviewer", "ann")
    rows = json.loads(happysad("results", str(job_id), "--format", "json").stdout)
    assert {r["uri"].rsplit("/", 1)[-1]: r["reviewed_label"] for r in rows} == {
        "a.jpg": "sad", "b.jpg": None}
    assert [r["label"] for r in rows] == ["happy", "sad"]  # the model's labels stay
    table = list(csv.DictReader(io.StringIO(happysad("results", str(job_id), "--format",
                                                     "csv").stdout)))
    assert [r["reviewed_label"] for r in table] == ["sad", ""]
    printed = happysad("results", str(job_id), env=dict(os.environ, COLUMNS="250")).stdout
    header, first = (line for line in printed.splitlines() if "uri" in line or "a.jpg" in line)
    assert header.rstrip(" │┃").endswith("reviewed_label")
    assert first.rstrip(" │").endswith("sad")
    listed = json.loads(happysad("reviews", "list", "--json").stdout)
    assert [(r["uri"].rsplit("/", 1)[-1], r["model_label"], r["reviewed_label"], r["reviewer"])
            for r in listed] == [("a.jpg", "happy", "sad", "ann")]
    refused = happysad("reviews", "add", str(ids["a.jpg"]), "angry", check=False)
    assert refused.returncode == 1 and "unknown label 'angry'" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_the_api_takes_reviews_with_the_write_token_and_lists_them(database, monkeypatch):
    job_id, ids = make_job(["happy", "sad"], [("a.jpg", {"happy": 0.8, "sad": 0.2}),
                                              ("b.jpg", {"happy": 0.3, "sad": 0.7})])
    client = api(monkeypatch)
    url = f"/api/v1/predictions/{ids['a.jpg']}/review"
    assert client.post(url, json={"label": "sad"}).status_code == 401
    made = client.post(url, json={"label": "sad", "reviewer": "ann"}, headers=AUTH)
    assert made.status_code == 201, made.text
    assert (made.json()["model_label"], made.json()["reviewed_label"],
            made.json()["confirmed"]) == ("happy", "sad", False)
    client.post(url, json={"label": "happy"}, headers=AUTH)
    bad = client.post(url, json={"label": "angry"}, headers=AUTH)
    assert bad.status_code == 400 and "unknown label" in bad.json()["detail"]
    missing = client.post("/api/v1/predictions/424242/review", json={"label": "sad"},
                          headers=AUTH)
    assert missing.status_code == 404

    current = client.get("/api/v1/reviews", params={"job_id": job_id}).json()
    assert [(r["reviewed_label"], r["reviewer"], r["confirmed"]) for r in current["items"]] == [
        ("happy", "api", True)]
    history = client.get("/api/v1/reviews", params={"history": True, "limit": 1}).json()
    assert history["items"][0]["reviewed_label"] == "sad" and history["next_cursor"]
    rest = client.get("/api/v1/reviews", params={"history": True,
                                                 "cursor": history["next_cursor"]}).json()
    assert [r["reviewed_label"] for r in rest["items"]] == ["happy"] and not rest["next_cursor"]
    page = client.get(f"/api/v1/jobs/{job_id}/predictions").json()["items"]
    assert [p["reviewed_label"] for p in page] == ["happy", None]
    assert [p["label"] for p in page] == ["happy", "sad"]
    table = list(csv.DictReader(io.StringIO(
        client.get(f"/api/v1/jobs/{job_id}/predictions.csv").text)))
    assert [r["reviewed_label"] for r in table] == ["happy", ""]
    assert client.get("/api/v1/reviews", params={"job_id": 4242}).status_code == 404
    assert client.get("/api/v1/reviews", params={"cursor": "x"}).status_code == 400


QUEUE_ROWS = [  # name, probabilities: confidence order and margin order disagree within "a"
    ("a1.jpg", {"a": 0.40, "b": 0.35, "c": 0.25}),  # margin 0.05
    ("a2.jpg", {"a": 0.50, "b": 0.20, "c": 0.30}),  # 0.20
    ("a3.jpg", {"a": 0.90, "b": 0.05, "c": 0.05}),  # 0.85
    ("a4.jpg", {"a": 0.34, "b": 0.33, "c": 0.33}),  # 0.01
    ("b1.jpg", {"a": 0.40, "b": 0.60, "c": 0.00}),  # 0.20
    ("b2.jpg", {"a": 0.45, "b": 0.55, "c": 0.00}),  # 0.10
    ("b3.jpg", {"a": 0.00, "b": 0.99, "c": 0.01}),  # 0.98
    ("c1.jpg", {"a": 0.30, "b": 0.00, "c": 0.70}),  # 0.40
    ("a5.jpg", {"a": 0.49, "b": 0.47, "c": 0.04}),  # 0.02, though more confident than a1
    ("broken.jpg", None),
]


def test_the_review_queue_serves_the_closest_to_the_boundary_in_turn_per_class(
        database, monkeypatch):
    job_id, ids = make_job(["a", "b", "c"], QUEUE_ROWS)

    def names(limit=20):
        with session_scope() as session:
            return [p.uri.rsplit("/", 1)[-1] for p in reviews.review_queue(session, job_id, limit)]

    # Round 1: each class's smallest margin (a4 0.01, b2 0.10, c1 0.40); round 2: the next of
    # each (a5 0.02, b1 0.20); then a1 0.05 and b3 0.98; then the rest of "a".
    assert names() == ["a4.jpg", "b2.jpg", "c1.jpg", "a5.jpg", "b1.jpg", "a1.jpg", "b3.jpg",
                       "a2.jpg", "a3.jpg"]
    assert names(4) == ["a4.jpg", "b2.jpg", "c1.jpg", "a5.jpg"]
    with session_scope() as session:  # a reviewed image leaves the queue
        reviews.review_prediction(session, ids["a4.jpg"], "b", "ann")
        reviews.review_prediction(session, ids["c1.jpg"], "c", "ann")
    assert names(5) == ["a5.jpg", "b2.jpg", "a1.jpg", "b1.jpg", "a2.jpg"]
    served = api(monkeypatch).get(f"/api/v1/jobs/{job_id}/review-queue",
                                  params={"limit": 3}).json()
    assert [p["uri"].rsplit("/", 1)[-1] for p in served] == ["a5.jpg", "b2.jpg", "a1.jpg"]
    assert api(monkeypatch).get("/api/v1/jobs/4242/review-queue").status_code == 404


def test_margin_is_the_gap_between_the_two_most_probable_classes():
    assert reviews.margin({"happy": 0.7, "sad": 0.3}) == pytest.approx(0.4)
    assert reviews.margin({"a": 0.2, "b": 0.5, "c": 0.3}) == pytest.approx(0.2)
    assert reviews.margin(None) == 1.0


def test_the_page_takes_a_review_only_from_a_logged_in_session_with_its_csrf_token(
        monkeypatch):
    import re

    job_id, ids = make_job(["happy", "sad"], [("a.jpg", {"happy": 0.8, "sad": 0.2})])
    other_job, other_ids = make_job(["happy", "sad"], [("b.jpg", {"happy": 0.8, "sad": 0.2})])
    client = api(monkeypatch)
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)[1]
    form = {"csrf": csrf, "prediction_id": str(ids["a.jpg"]), "label": "sad"}
    assert client.post(f"/jobs/{job_id}/reviews", data=form).status_code == 401
    page = client.get(f"/jobs/{job_id}")
    assert "review-next" not in page.text and "Log in</a> to confirm" in page.text
    client.post("/login", data={"token": TOKEN, "csrf": csrf})
    assert client.post(f"/jobs/{job_id}/reviews",
                       data=form | {"csrf": "forged"}).status_code == 403
    made = client.post(f"/jobs/{job_id}/reviews", data=form)
    assert made.status_code == 200, made.text
    assert (made.json()["reviewed_label"], made.json()["reviewer"],
            made.json()["counts"]) == ("sad", "web", {"reviewed": 1, "corrected": 1})
    elsewhere = client.post(f"/jobs/{job_id}/reviews",
                            data=form | {"prediction_id": str(other_ids["b.jpg"])})
    assert elsewhere.status_code == 400 and "not an image of job" in elsewhere.json()["detail"]
    page = client.get(f"/jobs/{job_id}").text
    assert 'data-key="1"' in page and 'data-key="2"' in page and "reviewed: sad" in page
    assert "/static/review.js" in page
