"""The writes, shared by the API and the pages' forms: each calls what the CLI calls, in a
transaction committed before the answer goes out."""

from db import queries
from db.session import session_scope
from db.settings import get_settings


def submit(source: str, model_version: int | None, batch_size: int | None) -> int:
    """Submit a source as the CLI does, confined to HAPPYSAD_ALLOWED_SOURCES; the job id."""
    from scheduler.submit import submit_source

    settings = get_settings()
    return submit_source(source, model_version, batch_size,
                         allowed_roots=settings.allowed_source_roots, settings=settings,
                         sessions=session_scope).job_id


def cancel(job_id: int, cancelled_by: str, reason: str) -> None:
    with session_scope() as session:
        queries.cancel_job(session, job_id, cancelled_by=cancelled_by, reason=reason)


def promote(version: int, reason: str) -> dict:
    """Make a version production as `happysad models promote` does; the promotion this call
    wrote (never another caller's: happysad.promotions)."""
    from happysad import promotions

    with session_scope() as session:
        return promotions.promote(session, version, reason)


def rollback(reason: str) -> dict:
    from happysad import promotions

    with session_scope() as session:
        return promotions.roll_back(session, reason)


def start_retrain(force: bool) -> str:
    from scheduler.retrain import request_retrain

    return request_retrain(get_settings(), force)


def review(prediction_id: int, label: str, reviewer: str) -> dict:
    """Record a person's verdict on a prediction; the review's record."""
    from db.queries.reviews import review_prediction
    from happysad.records import review_record

    with session_scope() as session:
        row = review_prediction(session, prediction_id, label, reviewer)
        return review_record(row, queries.get_prediction(session, prediction_id).uri)
