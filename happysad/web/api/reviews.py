"""Reviews: a person confirms or corrects a prediction's label; the verdicts so far; and the
review queue, the unreviewed images whose verdict should teach the next model most."""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query

from db.queries import reviews
from happysad.records import prediction_records, review_record
from happysad.web import actions, schemas
from happysad.web.deps import SessionDep, WriterDep

router = APIRouter(tags=["reviews"])
DatabaseId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.post("/predictions/{prediction_id}/review", status_code=201,
             response_model=schemas.ReviewOut)
def review_prediction(prediction_id: DatabaseId, body: schemas.ReviewRequest,
                      _writer: WriterDep):
    """Confirm (the model's label) or correct (another of its classes) one image. The model's
    row is never changed; a second verdict on the same image replaces the first, which stays
    in the history. Reviewed images join the next retrain's training data."""
    return actions.review(prediction_id, body.label, body.reviewer)


@router.get("/reviews", response_model=schemas.ReviewPage)
def list_reviews(session: SessionDep,
                 job_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
                 history: Annotated[bool, Query(description="Also the verdicts replaced by "
                                                "a later one.")] = False,
                 cursor: Annotated[str | None, Query(max_length=20)] = None,
                 limit: Annotated[int, Query(ge=1, le=1000)] = 100):
    """Verdicts in the order they were given, of one job or all; follow `next_cursor`."""
    try:
        after = int(cursor) if cursor is not None else 0
        if not 0 <= after < 2**31:
            raise ValueError
    except ValueError:
        raise HTTPException(400, f"not a cursor: {cursor[:20]!r} (use the next_cursor of the "
                                 "previous page)") from None
    rows = reviews.list_reviews(session, job_id, history, after, limit + 1)
    uris = reviews.prediction_uris(session, [row.prediction_id for row in rows[:limit]])
    next_cursor = str(rows[limit - 1].id) if len(rows) > limit else None
    return schemas.ReviewPage(items=[review_record(row, uris[row.prediction_id])
                                     for row in rows[:limit]], next_cursor=next_cursor)


@router.get("/jobs/{job_id}/review-queue", response_model=list[schemas.PredictionOut])
def review_queue(job_id: DatabaseId, session: SessionDep,
                 limit: Annotated[int, Query(ge=1, le=500)] = 20):
    """"Review next": unreviewed images closest to the decision boundary first (smallest
    margin between the two most probable classes), taken in turn from each predicted class."""
    return prediction_records(session, reviews.review_queue(session, job_id, limit))
