"""Reviewing on a job's page: the page's script posts each verdict here (the session's login
and CSRF token, as every form) and gets JSON back, so the next image follows without a reload."""

from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from db.queries import reviews
from db.errors import InvalidInput
from db.session import session_scope
from happysad.web import actions
from happysad.web.errors import one_line
from happysad.web.pages.common import require_page_writer
from happysad.web.pages.jobs import user_errors

router = APIRouter()
DatabaseId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.post("/jobs/{job_id}/reviews")
def review_form(request: Request, job_id: DatabaseId, csrf: Annotated[str, Form()],
                prediction_id: Annotated[int, Form(ge=1, le=2**31 - 1)],
                label: Annotated[str, Form(min_length=1, max_length=255)]):
    require_page_writer(request, csrf)
    try:
        with session_scope() as session:
            job_of_prediction = reviews.prediction_job(session, prediction_id)
        if job_of_prediction != job_id:
            raise InvalidInput(f"prediction {prediction_id} is not an image of job {job_id}")
        review = actions.review(prediction_id, label, "web")
    except user_errors() as error:
        return JSONResponse({"detail": one_line(error)}, status_code=400)
    with session_scope() as session:
        counts = reviews.review_counts(session, job_id)
    return JSONResponse(jsonable_encoder(review) | {"counts": counts})
