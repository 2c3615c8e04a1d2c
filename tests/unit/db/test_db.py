"""The schema and queries, on SQLite and on PostgreSQL."""

import pytest
from sqlalchemy import inspect

from db import queries
from db.session import current_revision, get_engine, head_revision, session_scope
from tests.helpers.records import add_version, rows


def test_migrations_apply_on_first_use(database):
    engine = get_engine()
    assert current_revision(engine) == head_revision(engine)
    tables = set(inspect(engine).get_table_names())
    assert {"model_versions", "jobs", "predictions", "job_batches", "promotions",
            "retrain_runs", "batch_attempts"} <= tables


def test_one_production_version_and_history(database):
    with session_scope() as session:
        add_version(session, 1)
        add_version(session, 2)
        session.flush()
        queries.set_production(session, 1, "auto", "first")
        queries.set_production(session, 2, "manual", "better")
    with session_scope() as session:
        assert queries.production_model_version(session).version == 2
        assert [(p.version, p.previous_version) for p in queries.promotion_history(session)] == [
            (1, None), (2, 1)]
        with pytest.raises(queries.NotFound, match="version 9"):
            queries.set_production(session, 9, "manual", "x")


def test_batches_are_idempotent_and_the_last_one_finishes_the_job(database):
    with session_scope() as session:
        add_version(session, 1)
        session.flush()
        job_id = queries.create_job(session, "/src", 1, 2).id
    with session_scope() as session:
        assert queries.record_batch(session, job_id, 0, rows(job_id, ["a", "b"]), "w1") is False
    with session_scope() as session:  # a redelivered batch writes nothing
        assert queries.record_batch(session, job_id, 0, rows(job_id, ["a", "b"]), "w2") is None
    with session_scope() as session:
        assert queries.seal_job(session, job_id, 3, 2, 0) is False
        assert queries.record_batch(session, job_id, 1, rows(job_id, ["c"]), "w1") is True
        assert queries.finish_job(session, job_id) == "done"
        assert queries.finish_job(session, job_id) is None  # exactly once
        assert queries.job_counts(session, job_id) == {"classified": 3, "failed": 0}


def test_seal_after_all_batches_reports_completion(database):
    with session_scope() as session:
        add_version(session, 1)
        session.flush()
        job_id = queries.create_job(session, "/src", 1, 2).id
        queries.record_batch(session, job_id, 0, rows(job_id, ["a"]), "w")
        assert queries.seal_job(session, job_id, 1, 1, 0) is True


def test_prediction_filters_and_keyset_paging(database):
    with session_scope() as session:
        add_version(session, 1)
        session.flush()
        job_id = queries.create_job(session, "/src", 1, 100).id
        batch = rows(job_id, [f"img{i:03d}" for i in range(25)])
        for index, row in enumerate(batch):
            row["confidence"] = index / 25
            if index % 5 == 0:
                row |= {"label": None, "confidence": None, "probabilities": None, "error": "bad"}
        queries.record_batch(session, job_id, 0, batch, "w")
    with session_scope() as session:
        every = list(queries.iter_predictions(session, job_id, page_size=7))
        assert [p.uri for p in every] == [f"img{i:03d}" for i in range(25)]
        assert len(list(queries.iter_predictions(session, job_id, page_size=7, limit=10))) == 10
        sure = list(queries.iter_predictions(session, job_id, min_confidence=0.8))
        assert all(p.confidence >= 0.8 for p in sure) and len(sure) == 4
        assert len(list(queries.iter_predictions(session, job_id, errors_only=True))) == 5
        assert len(list(queries.iter_predictions(session, job_id, label="sad"))) == 0


def test_retrain_slot_claimed_once(database):
    with session_scope() as session:
        run = queries.claim_retrain_slot(session, "cron-2026-01-01T02:00", "/data")
        assert run is not None
        assert queries.claim_retrain_slot(session, "cron-2026-01-01T02:00", "/data") is None


def test_unreachable_database_is_a_clear_error(monkeypatch):
    from db.session import DatabaseUnavailable
    from db.settings import reset_settings

    monkeypatch.setenv("HAPPYSAD_DATABASE_URL", "postgresql://nobody:secret@127.0.0.1:1/none")
    reset_settings()
    with pytest.raises(DatabaseUnavailable) as raised:
        get_engine()
    assert "secret" not in str(raised.value) and "***" in str(raised.value)


def test_a_job_whose_every_image_failed_ends_failed_with_its_reason(database):
    from tests.helpers.records import make_job

    job_id, _ids = make_job(["happy", "sad"], [("a.jpg", None), ("b.jpg", None)])
    with session_scope() as session:
        job = queries.get_job(session, job_id)
        assert job.status == "failed" and job.finished_at is not None
        assert job.status_reason == ("every image failed (2); the commonest reason (2 of 2): "
                                     "not an image")
    partly, _ids = make_job(["happy", "sad"], [("a.jpg", None), ("b.jpg", {"happy": 0.8,
                                                                           "sad": 0.2})])
    with session_scope() as session:
        assert queries.get_job(session, partly).status == "done"


def test_a_cancelled_job_stays_cancelled_and_keeps_its_rows(database):
    with session_scope() as session:
        add_version(session, 1)
        session.flush()
        job_id = queries.create_job(session, "/in", 1, batch_size=2).id
        queries.record_batch(session, job_id, 0, rows(job_id, ["a", "b"]), "w")
        queries.cancel_job(session, job_id, "tester", "wrong folder")
    with session_scope() as session:  # the listing ends after the cancel, the last batch lands
        assert queries.seal_job(session, job_id, 4, 2, 0) is False
        queries.record_batch(session, job_id, 1, rows(job_id, ["c", "d"]), "w")
        assert not queries.finish_job(session, job_id)
    with session_scope() as session:
        job = queries.get_job(session, job_id)
        assert (job.status, job.cancelled_by, job.cancel_reason) == ("cancelled", "tester",
                                                                     "wrong folder")
        assert job.finished_at and job.total_images == 4
        assert queries.job_counts(session, job_id)["classified"] == 4
        with pytest.raises(queries.JobFinished, match="already cancelled"):
            queries.cancel_job(session, job_id, "tester", "again")
        with pytest.raises(queries.NotFound):
            queries.cancel_job(session, 999, "tester", "none")


def test_confidence_range_and_uncertain_first_keyset_pages(database):
    with session_scope() as session:
        add_version(session, 1)
        session.flush()
        job_id = queries.create_job(session, "/in", 1, batch_size=6).id
        batch = rows(job_id, [f"u{i}" for i in range(6)])
        for row, confidence in zip(batch, [0.9, 0.6, 0.6, 0.75, 0.51, 0.99]):
            row["confidence"] = confidence
        queries.record_batch(session, job_id, 0, batch, "w")
    with session_scope() as session:
        ranged = session.scalars(queries.predictions_query(
            job_id, min_confidence=0.55, max_confidence=0.8)).all()
        assert [p.uri for p in ranged] == ["u1", "u2", "u3"]
        pages, after = [], None
        while True:  # pages of two, least confident first, ties in id order
            page = session.scalars(queries.uncertain_first_query(job_id, after=after).limit(2)).all()
            if not page:
                break
            pages.append([p.uri for p in page])
            after = (page[-1].confidence, page[-1].id)
        assert pages == [["u4", "u1"], ["u2", "u3"], ["u0", "u5"]]
