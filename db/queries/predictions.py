"""A job's predictions: filtered, ordered and streamed with keyset paging."""

from collections.abc import Iterable
from enum import StrEnum

from sqlalchemy import Select, select, tuple_
from sqlalchemy.orm import Session

from db.errors import NotFound
from db.tables import Prediction


class PredictionOrder(StrEnum):
    """How `happysad results --sort` lists a job's rows."""

    LISTING = "listing"  # the order the rows were written (batch by batch): predictions_query
    UNCERTAIN = "uncertain"  # least confident first, classified rows only: uncertain_first_query


def _filtered(query: Select, label: str | None, min_confidence: float | None,
              max_confidence: float | None, min_familiarity: float | None = None,
              max_familiarity: float | None = None) -> Select:
    """The filters `happysad results` and the web app's job page share. A familiarity bound
    leaves out rows without one (models that do not give it, images that failed)."""
    if min_familiarity is not None:
        query = query.where(Prediction.familiarity >= min_familiarity)
    if max_familiarity is not None:
        query = query.where(Prediction.familiarity <= max_familiarity)
    if label is not None:
        query = query.where(Prediction.label == label)
    if min_confidence is not None:
        query = query.where(Prediction.confidence >= min_confidence)
    if max_confidence is not None:
        query = query.where(Prediction.confidence <= max_confidence)
    return query


def predictions_query(job_id: int, label: str | None = None, min_confidence: float | None = None,
                      errors_only: bool = False, after_id: int = 0,
                      max_confidence: float | None = None, min_familiarity: float | None = None,
                      max_familiarity: float | None = None) -> Select:
    """The filtered, id-ordered predictions of a job; page with `after_id` (keyset paging)."""
    query = _filtered(select(Prediction).where(Prediction.job_id == job_id,
                                               Prediction.id > after_id),
                      label, min_confidence, max_confidence, min_familiarity, max_familiarity)
    if errors_only:
        query = query.where(Prediction.error.is_not(None))
    return query.order_by(Prediction.id)


def uncertain_first_query(job_id: int, label: str | None = None,
                          min_confidence: float | None = None,
                          max_confidence: float | None = None,
                          after: tuple[float, int] | None = None,
                          min_familiarity: float | None = None,
                          max_familiarity: float | None = None) -> Select:
    """A job's classified images, least confident first (ties by id); page with `after`, the
    last row's (confidence, id): keyset paging on ix_predictions_job_confidence_id."""
    query = _filtered(select(Prediction).where(Prediction.job_id == job_id,
                                               Prediction.confidence.is_not(None)),
                      label, min_confidence, max_confidence, min_familiarity, max_familiarity)
    if after is not None:
        query = query.where(tuple_(Prediction.confidence, Prediction.id) > tuple_(*after))
    return query.order_by(Prediction.confidence, Prediction.id)


def get_prediction(session: Session, prediction_id: int) -> Prediction:
    row = session.get(Prediction, prediction_id)
    if row is None:
        raise NotFound(f"prediction {prediction_id} does not exist")
    return row


def iter_predictions(session: Session, job_id: int, page_size: int = 1000,
                     limit: int | None = None, order: str = PredictionOrder.LISTING,
                     **filters) -> Iterable[Prediction]:
    """Stream a job's predictions a page at a time, so a million rows never sit in memory."""
    uncertain_first = order == PredictionOrder.UNCERTAIN
    last, yielded = None, 0
    while True:
        size = page_size if limit is None else min(page_size, limit - yielded)
        if size <= 0:
            return
        if uncertain_first:
            query = uncertain_first_query(job_id, after=last, **filters)
        else:
            query = predictions_query(job_id, after_id=last[1] if last else 0, **filters)
        page = session.scalars(query.limit(size)).all()
        yield from page
        yielded += len(page)
        if len(page) < size:
            return
        last = (page[-1].confidence, page[-1].id)


def classified_probabilities(session: Session, job_id: int) -> list[dict[str, float]]:
    """Every classified image's class probabilities (the report's histogram)."""
    return list(session.scalars(select(Prediction.probabilities).where(
        Prediction.job_id == job_id, Prediction.label.is_not(None))))


def confidence_extremes(session: Session, job_id: int, label: str,
                        count: int) -> dict[str, list[Prediction]]:
    """A label's `count` most confident and `count` most uncertain images (the report's
    contact sheet)."""
    query = select(Prediction).where(Prediction.job_id == job_id, Prediction.label == label)
    return {"most confident": list(session.scalars(
                query.order_by(Prediction.confidence.desc()).limit(count))),
            "most uncertain": list(session.scalars(
                query.order_by(Prediction.confidence.asc()).limit(count)))}
