"""A job's predictions: keyset pages with the CLI's filters (label, confidence and familiarity
ranges, errors), most uncertain first if asked, a CSV download (the CLI's CSV, byte for byte),
and each image's thumbnail. The filters, the pager and the CSV are happysad.predictions'."""

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.responses import StreamingResponse

from db import queries
from db.session import session_scope
from happysad.predictions import (
    SORT_HELP,
    Label,
    PredictionFilters,
    csv_chunks,
    page_of_predictions,
    prediction_pages,
)
from happysad.records import prediction_records
from happysad.web import schemas
from happysad.web.deps import SessionDep

router = APIRouter(tags=["predictions"])
JobId = Annotated[int, Path(ge=1, le=2**31 - 1)]
CSV_PAGE = 2000


def filters_query(label: Annotated[Label | None, Query()] = None,
                  min_confidence: Annotated[float | None, Query(ge=0, le=1)] = None,
                  max_confidence: Annotated[float | None, Query(ge=0, le=1)] = None,
                  min_familiarity: Annotated[float | None, Query(ge=0, le=1)] = None,
                  max_familiarity: Annotated[float | None, Query(ge=0, le=1)] = None,
                  errors: bool = False,
                  sort: Annotated[Literal["listing", "uncertain", "id"],
                                  Query(description=SORT_HELP)] = "listing",
                  ) -> PredictionFilters:
    return PredictionFilters(label=label, min_confidence=min_confidence,
                             max_confidence=max_confidence, min_familiarity=min_familiarity,
                             max_familiarity=max_familiarity, errors=errors, sort=sort)


FiltersDep = Annotated[PredictionFilters, Depends(filters_query)]


@router.get("/jobs/{job_id}/predictions", response_model=schemas.PredictionPage)
def list_predictions(job_id: JobId, session: SessionDep, filters: FiltersDep,
                     cursor: Annotated[str | None, Query(max_length=100)] = None,
                     limit: Annotated[int, Query(ge=1, le=1000)] = 100):
    """A page of the job's predictions; follow `next_cursor` for the next (keyset paging:
    a deep page costs what the first does)."""
    queries.get_job(session, job_id)
    rows, next_cursor = page_of_predictions(session, job_id, filters, cursor, limit)
    return {"items": prediction_records(session, rows), "next_cursor": next_cursor}


@router.get("/jobs/{job_id}/predictions.csv", response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {}}}})
def download_predictions(job_id: JobId, session: SessionDep, filters: FiltersDep):
    """Every matching prediction as CSV, as `happysad results --format csv` writes it: one
    p_<class> column per class of the job's model. Streamed a page at a time."""
    job = queries.get_job(session, job_id)
    class_names = list(queries.get_model_version(session, job.model_version).class_names)
    pages = prediction_pages(session_scope, job_id, filters, page_size=CSV_PAGE)
    return StreamingResponse(csv_chunks(pages, class_names), media_type="text/csv",
                             headers={"Content-Disposition":
                                      f'attachment; filename="job-{job_id}-predictions.csv"'})


@router.get("/predictions/{prediction_id}/thumbnail", response_class=Response,
            responses={200: {"content": {"image/jpeg": {}}}})
def prediction_thumbnail(prediction_id: Annotated[int, Path(ge=1, le=2**31 - 1)]):
    """The image of one prediction, small: read through its job's own storage (folder or
    bucket), made on first request and cached under HAPPYSAD_HOME. Only a prediction's own
    image can be asked for: there is no path parameter."""
    from happysad.web.thumbnails import thumbnail_jpeg

    return Response(thumbnail_jpeg(prediction_id), media_type="image/jpeg",
                    headers={"Cache-Control": "max-age=86400"})
