"""Retrain runs: the record of scheduled and forced runs, and starting one now."""

from typing import Annotated

from fastapi import APIRouter, Query

from db import queries
from happysad.records import retrain_run_record
from happysad.web import actions, schemas
from happysad.web.deps import SessionDep, WriterDep

router = APIRouter(prefix="/retrain-runs", tags=["retrain"])


@router.get("", response_model=list[schemas.RetrainRunOut])
def list_runs(session: SessionDep, limit: Annotated[int, Query(ge=1, le=500)] = 50):
    """Recent runs: status, times, the version made, why it was (not) promoted."""
    return [retrain_run_record(run) for run in queries.list_retrain_runs(session, limit)]


@router.post("", status_code=202, response_model=schemas.RetrainQueued)
def start_run(_writer: WriterDep, body: schemas.RetrainRequest | None = None):
    """Queue a retrain on the training queue, as `happysad retrain` does; a worker of the
    training queue runs it."""
    return schemas.RetrainQueued(slot=actions.start_retrain((body or schemas.RetrainRequest()).force))
