"""The writes, shared by the API and the pages' forms: each calls what the CLI calls, in a
transaction committed before the answer goes out."""

from db import queries
from db.session import session_scope
from db.settings import get_settings
from db.tables import Promotion


def submit(source: str, model_version: int | None, batch_size: int | None) -> int:
    """Submit a source as the CLI does, confined to HAPPYSAD_ALLOWED_SOURCES; the job id."""
    from scheduler.submit import submit_source

    roots = get_settings().allowed_source_roots
    return submit_source(source, model_version, batch_size, allowed_roots=roots).job_id


def cancel(job_id: int, cancelled_by: str, reason: str) -> None:
    with session_scope() as session:
        queries.cancel_job(session, job_id, cancelled_by=cancelled_by, reason=reason)


def promote(version: int, reason: str) -> Promotion:
    from trainer.promotion import promote_version

    promote_version(version, reason)
    with session_scope() as session:
        return queries.promotion_history(session)[-1]


def rollback(reason: str) -> Promotion:
    with session_scope() as session:
        return queries.rollback_production(session, reason)


def start_retrain(force: bool) -> str:
    from scheduler.retrain import request_retrain

    return request_retrain(force)


def review(prediction_id: int, label: str, reviewer: str):
    """Record a person's verdict on a prediction; the review as the API shows it."""
    from db.queries.reviews import review_prediction
    from happysad.web.records import review_out

    with session_scope() as session:
        row = review_prediction(session, prediction_id, label, reviewer)
        return review_out(row, queries.get_prediction(session, prediction_id).uri)
