"""The models page: every version's metrics, a chosen version's training plots and confusion
matrix, the promotion history, retrain runs, and the promote / roll back / retrain buttons."""

from typing import Annotated

from fastapi import APIRouter, Form, Path, Request

from db import queries
from db.session import session_scope
from db.settings import get_settings
from happysad.records import model_version_record, promotion_record, retrain_run_record
from happysad.web import actions
from happysad.web.errors import one_line
from happysad.web.pages.common import redirect, render, require_page_writer
from happysad.web.pages.jobs import user_errors

router = APIRouter()


@router.get("/models")
def models_page(request: Request, version: int | None = None):
    with session_scope() as session:
        models = [model_version_record(row) for row in queries.list_model_versions(session)]
        history = [promotion_record(row) for row in reversed(queries.promotion_history(session))]
        runs = [retrain_run_record(run) for run in queries.list_retrain_runs(session, 20)]
    production = next((m for m in models if m["production"]), None)
    shown = next((m for m in models if m["version"] == version), None) or production or (
        models[-1] if models else None)
    return render(request, "models.html", models=models, history=history, runs=runs,
                  shown=shown, production=production,
                  rollback_blocked=rollback_blocked(history), retrain_blocked=retrain_blocked())


def rollback_blocked(history: list) -> str | None:
    """Why "Roll back the last change" cannot work now (history is newest first), or None."""
    if not history or history[0]["previous_version"] is None:
        return "nothing to roll back to: there was no production model before this one"
    return None


def retrain_blocked() -> str | None:
    """Why "Retrain now" cannot work now, or None: a run without training data fails at once."""
    if get_settings().train_data is None:
        return ("HAPPYSAD_TRAIN_DATA is not set: set it to the labelled folder or bucket to "
                "train on, for this server and the training workers")
    return None


@router.post("/models/{version}/promote")
def promote_form(request: Request, version: Annotated[int, Path(ge=1, le=2**31 - 1)],
                 csrf: Annotated[str, Form()]):
    require_page_writer(request, csrf)
    try:
        actions.promote(version, "promoted from the models page")
    except user_errors() as error:
        return redirect("/models", f"not promoted: {one_line(error)}", request, kind="error")
    return redirect("/models", f"model v{version} is production", request)


@router.post("/models/rollback")
def rollback_form(request: Request, csrf: Annotated[str, Form()]):
    require_page_writer(request, csrf)
    try:
        promotion = actions.rollback("rolled back from the models page")
    except user_errors() as error:
        return redirect("/models", f"not rolled back: {one_line(error)}", request, kind="error")
    return redirect("/models", f"rolled back to model v{promotion['version']}", request)


@router.post("/retrain")
def retrain_form(request: Request, csrf: Annotated[str, Form()],
                 force: Annotated[bool, Form()] = False):
    require_page_writer(request, csrf)
    try:
        slot = actions.start_retrain(force)
    except user_errors() as error:
        return redirect("/models", f"retrain not started: {one_line(error)}", request,
                        kind="error")
    return redirect("/models", f"retrain {slot} queued on the training queue", request)
