"""The jobs page (with the submit form and live progress bars) and a job's page (summary
plots, a grid of thumbnails to filter, sort and page, the failed images, cancel)."""

from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from pydantic import ValidationError

from db import queries

from db.queries import reviews
from db.errors import InvalidInput
from db.session import session_scope
from db.settings import get_settings
from db.tables import JOB_FINISHED, JOB_RUNNING, UNFAMILIAR_BELOW
from happysad.predictions import PredictionFilters, page_of_predictions
from happysad.records import job_record, prediction_record, prediction_records, row_counts
from happysad.web import actions
from happysad.web.errors import one_line, status_by_error
from happysad.web.pages.common import redirect, render, require_page_writer
from scheduler.presence import job_waiting_reason

router = APIRouter()
GRID_PAGE = 60
FAILED_PAGE = 50
JobId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def user_errors() -> tuple[type[BaseException], ...]:
    return tuple(kind for kind, _status in status_by_error())


@router.get("/")
def jobs_page(request: Request):
    return render_jobs(request)


def render_jobs(request: Request, form_error: str | None = None, typed: dict | None = None,
                status_code: int = 200):
    """The jobs; a refused submission comes back here with its error and what was typed."""
    with session_scope() as session:
        jobs = [job_record(job) for job in queries.list_jobs(session, 100)]
        production = queries.production_model_version(session)
        production = production.version if production else None
    return render(request, "jobs.html", status_code=status_code, jobs=jobs,
                  production=production, finished=JOB_FINISHED, form_error=form_error,
                  typed=typed or {}, allowed_roots=get_settings().allowed_source_roots)


@router.post("/jobs")
def submit_form(request: Request, csrf: Annotated[str, Form()],
                source: Annotated[str, Form()] = "",
                batch_size: Annotated[str, Form()] = ""):
    require_page_writer(request, csrf)
    try:
        size = int(batch_size) if batch_size.strip() else None
        if "\x00" in source or not source.strip():
            raise InvalidInput("give a folder or s3://bucket/prefix to submit")
        job_id = actions.submit(source.strip(), None, size)
    except user_errors() as error:
        return render_jobs(request, f"not submitted: {one_line(error)}",
                         {"source": source, "batch_size": batch_size}, status_code=400)
    if waiting := job_waiting_reason(JOB_RUNNING):
        return redirect(f"/jobs/{job_id}", f"job {job_id} submitted, and {waiting}", request,
                        kind="warning")
    return redirect(f"/jobs/{job_id}", f"job {job_id} submitted", request)


def page_filters(params: dict) -> tuple[PredictionFilters, str | None]:
    """The grid's filters from the query string; a form's empty fields mean "any"."""
    given = {key: value for key, value in params.items()
             if key in PredictionFilters.model_fields and value != ""}
    try:
        return PredictionFilters(**given), None
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        return PredictionFilters(), f"filters ignored ({problems})"


@router.get("/jobs/{job_id}")
def job_page(request: Request, job_id: JobId):
    params = dict(request.query_params)
    filters, filter_error = page_filters(params)
    cursor, failed_cursor = params.get("cursor") or None, params.get("failed_after") or None
    with session_scope() as session:
        job = queries.get_job(session, job_id)
        counts = row_counts(session, job)
        record, label_counts = job_record(job, counts), counts[0]
        class_names = list(queries.get_model_version(session, job.model_version).class_names)
        grid, next_cursor = page_of_predictions(session, job_id, filters, cursor, GRID_PAGE)
        failed, next_failed = page_of_predictions(
            session, job_id, PredictionFilters(errors=True), failed_cursor, FAILED_PAGE)
        grid = prediction_records(session, grid)
        review_counts = reviews.review_counts(session, job_id)
        failed = [prediction_record(row) for row in failed]
    query = {key: value for key, value in params.items()
             if key in PredictionFilters.model_fields and value != ""}
    return render(request, "job.html", job=record, class_names=class_names,
                  label_counts=label_counts, filters=filters, filter_error=filter_error,
                  grid=grid, next_cursor=next_cursor, failed=failed, next_failed=next_failed,
                  query=query, finished=JOB_FINISHED, review_counts=review_counts,
                  unfamiliar_below=UNFAMILIAR_BELOW,
                  plots=["labels.png", "probabilities.png", "contact_sheet.png"])


@router.post("/jobs/{job_id}/cancel")
def cancel_form(request: Request, job_id: JobId, csrf: Annotated[str, Form()]):
    require_page_writer(request, csrf)
    try:
        actions.cancel(job_id, "web", "cancelled from the job page")
    except user_errors() as error:
        return redirect(f"/jobs/{job_id}", f"not cancelled: {one_line(error)}", request,
                        kind="error")
    return redirect(f"/jobs/{job_id}", f"job {job_id} cancelled", request)
