"""A job's predictions: keyset pages with the CLI's filters (label, confidence and familiarity
ranges, errors),
most uncertain first if asked, a CSV download, and each image's thumbnail."""

import csv
import io
from collections.abc import Iterator
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from db import queries
from db.session import session_scope
from happysad.web import records, schemas
from happysad.web.deps import SessionDep
from happysad.web.schemas import Text

router = APIRouter(tags=["predictions"])
JobId = Annotated[int, Path(ge=1, le=2**31 - 1)]
CSV_PAGE = 2000


class PredictionFilters(BaseModel):
    """The filters of `happysad results`, plus an upper confidence bound and the order."""

    label: Text | None = None
    min_confidence: float | None = Field(None, ge=0, le=1)
    max_confidence: float | None = Field(None, ge=0, le=1)
    min_familiarity: float | None = Field(None, ge=0, le=1, description=(
        "Only images at least this like the training images (rows without one are left out)."))
    max_familiarity: float | None = Field(None, ge=0, le=1, description=(
        "Only images at most this like the training images: below 0.5 is unfamiliar."))
    errors: bool = Field(False, description="Only images that failed.")
    sort: Literal["id", "uncertain"] = Field(
        "id", description="id: in the order written; uncertain: least confident first.")


def filters_query(label: Annotated[Text | None, Query()] = None,
                  min_confidence: Annotated[float | None, Query(ge=0, le=1)] = None,
                  max_confidence: Annotated[float | None, Query(ge=0, le=1)] = None,
                  min_familiarity: Annotated[float | None, Query(ge=0, le=1)] = None,
                  max_familiarity: Annotated[float | None, Query(ge=0, le=1)] = None,
                  errors: bool = False,
                  sort: Literal["id", "uncertain"] = "id") -> PredictionFilters:
    return PredictionFilters(label=label, min_confidence=min_confidence,
                             max_confidence=max_confidence, min_familiarity=min_familiarity,
                             max_familiarity=max_familiarity, errors=errors, sort=sort)


FiltersDep = Annotated[PredictionFilters, Depends(filters_query)]


def parse_cursor(cursor: str | None, sort: str):
    """`id` for the written order, `confidence:id` for uncertain first (both from next_cursor)."""
    if cursor is None:
        return None
    try:
        if sort == "id":
            value = int(cursor)
            if not 0 <= value < 2**31:
                raise ValueError
            return value
        confidence, row_id = cursor.split(":")
        after = float(confidence), int(row_id)
        if not (0 <= after[0] <= 1 and 0 <= after[1] < 2**31):
            raise ValueError
        return after
    except ValueError:
        raise HTTPException(400, f"not a cursor for sort={sort}: {cursor[:80]!r} (use the "
                                 "next_cursor of the previous page)") from None


def page_of_predictions(session, job_id: int, filters: PredictionFilters, cursor: str | None,
                        limit: int) -> tuple[list, str | None]:
    """One page and the cursor of the next (None when this page is the last)."""
    after = parse_cursor(cursor, "uncertain" if filters.sort == "uncertain" and not
                         filters.errors else "id")
    if filters.sort == "uncertain" and not filters.errors:  # error rows have no confidence
        query = queries.uncertain_first_query(job_id, filters.label, filters.min_confidence,
                                              filters.max_confidence, after,
                                              filters.min_familiarity, filters.max_familiarity)
    else:
        query = queries.predictions_query(job_id, filters.label, filters.min_confidence,
                                          filters.errors, after or 0, filters.max_confidence,
                                          filters.min_familiarity, filters.max_familiarity)
    rows = session.scalars(query.limit(limit + 1)).all()
    if len(rows) <= limit:
        return list(rows), None
    last = rows[limit - 1]
    uncertain = filters.sort == "uncertain" and not filters.errors
    return list(rows[:limit]), f"{last.confidence!r}:{last.id}" if uncertain else str(last.id)


@router.get("/jobs/{job_id}/predictions", response_model=schemas.PredictionPage)
def list_predictions(job_id: JobId, session: SessionDep, filters: FiltersDep,
                     cursor: Annotated[str | None, Query(max_length=100)] = None,
                     limit: Annotated[int, Query(ge=1, le=1000)] = 100):
    """A page of the job's predictions; follow `next_cursor` for the next (keyset paging:
    a deep page costs what the first does)."""
    queries.get_job(session, job_id)
    rows, next_cursor = page_of_predictions(session, job_id, filters, cursor, limit)
    return schemas.PredictionPage(items=records.predictions_out(session, rows),
                                  next_cursor=next_cursor)


@router.get("/jobs/{job_id}/predictions.csv", response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {}}}})
def download_predictions(job_id: JobId, session: SessionDep, filters: FiltersDep):
    """Every matching prediction as CSV, as `happysad results --format csv` writes it: one
    p_<class> column per class of the job's model. Streamed a page at a time."""
    job = queries.get_job(session, job_id)
    class_names = list(queries.get_model_version(session, job.model_version).class_names)
    return StreamingResponse(csv_lines(job_id, filters, class_names), media_type="text/csv",
                             headers={"Content-Disposition":
                                      f'attachment; filename="job-{job_id}-predictions.csv"'})


def csv_lines(job_id: int, filters: PredictionFilters, class_names: list[str]) -> Iterator[str]:
    from db.queries.reviews import current_reviews

    columns = ["id", "uri", "label", "confidence", "familiarity", "error", "model_version",
               "worker_host", "created_at", "reviewed_label"] + [f"p_{name}" for name in class_names]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    cursor = None
    while True:
        with session_scope() as session:  # one short transaction a page, not one held open
            rows, cursor = page_of_predictions(session, job_id, filters, cursor, CSV_PAGE)
            reviews = current_reviews(session, [row.id for row in rows])
            for row in rows:
                review = reviews.get(row.id)
                writer.writerow({"id": row.id, "uri": row.uri, "label": row.label,
                                 "confidence": row.confidence,
                                 "familiarity": row.familiarity, "error": row.error,
                                 "model_version": row.model_version,
                                 "worker_host": row.worker_host,
                                 "created_at": row.created_at.isoformat(),
                                 "reviewed_label": review.reviewed_label if review else None}
                                | {f"p_{k}": v for k, v in (row.probabilities or {}).items()})
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if cursor is None:
            return


@router.get("/predictions/{prediction_id}/thumbnail", response_class=Response,
            responses={200: {"content": {"image/jpeg": {}}}})
def prediction_thumbnail(prediction_id: Annotated[int, Path(ge=1, le=2**31 - 1)]):
    """The image of one prediction, small: read through its job's own storage (folder or
    bucket), made on first request and cached under HAPPYSAD_HOME. Only a prediction's own
    image can be asked for: there is no path parameter."""
    from happysad.web.thumbnails import thumbnail_jpeg

    return Response(thumbnail_jpeg(prediction_id), media_type="image/jpeg",
                    headers={"Cache-Control": "max-age=86400"})
