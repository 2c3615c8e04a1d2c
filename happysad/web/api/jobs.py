"""Jobs: submit a folder or bucket, list and show them with live progress, cancel one, and
the summary plots of a finished job."""

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response

from db import queries
from db.settings import get_settings
from happysad.records import counted_job_record, job_record
from happysad.web import actions, schemas
from happysad.web.deps import SessionDep, WriterDep

router = APIRouter(prefix="/jobs", tags=["jobs"])
JobId = Annotated[int, Path(ge=1, le=2**31 - 1)]
REPORT_PLOTS = Literal["labels.png", "probabilities.png", "contact_sheet.png"]


@router.post("", status_code=201, response_model=schemas.JobOut)
def submit_job(body: schemas.JobSubmit, session: SessionDep, _writer: WriterDep):
    """Submit a source as `happysad submit` does; it must lie under HAPPYSAD_ALLOWED_SOURCES."""
    job_id = actions.submit(body.source, body.model_version, body.batch_size)
    session.expire_all()
    return counted_job_record(session, job_id)


@router.get("", response_model=list[schemas.JobOut])
def list_jobs(session: SessionDep, limit: Annotated[int, Query(ge=1, le=500)] = 50):
    """Recent jobs, newest first; progress from their batch counts."""
    return [job_record(job) for job in queries.list_jobs(session, limit)]


@router.get("/{job_id}", response_model=schemas.JobOut)
def show_job(job_id: JobId, session: SessionDep):
    """One job, with how many images are classified and how many failed so far."""
    return counted_job_record(session, job_id)


@router.post("/{job_id}/cancel", response_model=schemas.JobOut)
def cancel_job(job_id: JobId, session: SessionDep, _writer: WriterDep,
               body: schemas.CancelRequest | None = None):
    """Workers skip the job's remaining batches; the rows written so far stay."""
    actions.cancel(job_id, "api", (body or schemas.CancelRequest()).reason)
    session.expire_all()
    return counted_job_record(session, job_id)


@router.get("/{job_id}/plots/{name}", response_class=Response,
            responses={200: {"content": {"image/png": {}}}})
def job_plot(job_id: JobId, name: Annotated[REPORT_PLOTS, Path()], session: SessionDep):
    """A plot of the job's report (written by the worker when the job is done)."""
    from fastapi import HTTPException

    from trainer.storage import open_storage

    job = queries.get_job(session, job_id)
    if not job.report_path:
        raise HTTPException(404, f"job {job_id} has no report yet (it is {job.status})")
    store = open_storage(get_settings().effective_report_store)
    try:
        data = store.read_bytes(store.join(f"{job_id}/{name}"))
    except (OSError, ValueError) as error:
        raise HTTPException(404, f"job {job_id} has no {name}: {error}") from None
    return Response(data, media_type="image/png", headers={"Cache-Control": "max-age=60"})
