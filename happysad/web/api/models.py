"""Model versions: list with metrics, promote, roll back, the promotion history, and each
version's training plots."""

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Response

from db import queries
from happysad.records import model_version_record, promotion_record
from happysad.web import actions, schemas
from happysad.web.deps import SessionDep, WriterDep

router = APIRouter(prefix="/models", tags=["models"])
Version = Annotated[int, Path(ge=1, le=2**31 - 1)]
MODEL_PLOTS = Literal["history.png", "confusion_matrix.png", "samples.png"]


@router.get("", response_model=list[schemas.ModelOut])
def list_models(session: SessionDep):
    """Every model version, oldest first, with its test metrics."""
    return [model_version_record(row) for row in queries.list_model_versions(session)]


@router.get("/promotions", response_model=list[schemas.PromotionOut])
def promotion_history(session: SessionDep):
    """Every change of the production version: automatic, manual or a rollback."""
    return [promotion_record(row) for row in queries.promotion_history(session)]


@router.post("/rollback", response_model=schemas.PromotionOut)
def rollback(_writer: WriterDep, body: schemas.RollbackRequest | None = None):
    """Make the version that was production before the latest change production again."""
    return actions.rollback((body or schemas.RollbackRequest()).reason)


@router.get("/{version}", response_model=schemas.ModelOut)
def show_model(version: Version, session: SessionDep):
    return model_version_record(queries.get_model_version(session, version))


@router.post("/{version}/promote", response_model=schemas.PromotionOut)
def promote(version: Version, _writer: WriterDep, body: schemas.PromoteRequest | None = None):
    """Make a version production, as `happysad models promote` does."""
    return actions.promote(version, (body or schemas.PromoteRequest()).reason)


@router.get("/{version}/plots/{name}", response_class=Response,
            responses={200: {"content": {"image/png": {}}}})
def model_plot(version: Version, name: Annotated[MODEL_PLOTS, Path()], session: SessionDep):
    """A plot written when the version was trained: its learning curves, confusion matrix,
    or a grid of training samples."""
    from trainer.storage import open_storage

    row = queries.get_model_version(session, version)
    folder = row.path.rsplit("/", 1)[0]  # the version's folder, in a folder or a bucket
    store = open_storage(folder)
    try:
        data = store.read_bytes(store.join(f"plots/{name}"))
    except (OSError, ValueError) as error:
        raise HTTPException(404, f"model v{version} has no {name}: {error}") from None
    return Response(data, media_type="image/png", headers={"Cache-Control": "max-age=3600"})
