"""Model versions and promotions: which version is production, and the history of changes."""

from collections.abc import Sequence

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from db.errors import InvalidInput, NotFound
from db.queries.dialect import dialect_insert
from db.tables import ModelVersion, ModelVersionClaim, Promotion, utc_now


class NothingToRollBack(InvalidInput):
    """A rollback asked when no earlier production version exists."""


def claim_model_version(session: Session, claimed_by: str) -> int | None:
    """Take the next version number for a new model (None if another trainer took it first:
    try again). Commit before writing the version's files; a number is never given twice."""
    latest = max(session.scalar(select(func.max(ModelVersionClaim.version))) or 0,
                 session.scalar(select(func.max(ModelVersion.version))) or 0)
    return session.execute(
        dialect_insert(session, ModelVersionClaim)
        .values(version=latest + 1, claimed_at=utc_now(), claimed_by=claimed_by)
        .on_conflict_do_nothing().returning(ModelVersionClaim.version)
    ).scalar()


def next_model_version(session: Session) -> int:
    return (session.scalar(select(func.max(ModelVersion.version))) or 0) + 1


def get_model_version(session: Session, version: int) -> ModelVersion:
    row = session.get(ModelVersion, version)
    if row is None:
        raise NotFound(f"model version {version} does not exist (see `happysad models list`)")
    return row


def production_model_version(session: Session) -> ModelVersion | None:
    return session.scalar(select(ModelVersion).where(ModelVersion.is_production))


def list_model_versions(session: Session) -> Sequence[ModelVersion]:
    return session.scalars(select(ModelVersion).order_by(ModelVersion.version)).all()


def set_production(session: Session, version: int, kind: str, reason: str) -> Promotion:
    """Make `version` the one production model and record why; locks out concurrent promoters."""
    get_model_version(session, version)
    current = session.scalar(
        select(ModelVersion).where(ModelVersion.is_production).with_for_update()
    )
    previous = current.version if current else None
    session.execute(update(ModelVersion).where(ModelVersion.is_production).values(is_production=False))
    session.flush()
    session.execute(
        update(ModelVersion).where(ModelVersion.version == version).values(is_production=True)
    )
    promotion = Promotion(version=version, previous_version=previous, kind=kind, reason=reason)
    session.add(promotion)
    session.flush()
    return promotion


def promotion_history(session: Session) -> Sequence[Promotion]:
    return session.scalars(select(Promotion).order_by(Promotion.id)).all()


def rollback_production(session: Session, reason: str) -> Promotion:
    """Make the version that was production before the latest change production again."""
    latest = session.scalar(select(Promotion).order_by(Promotion.id.desc()).limit(1))
    if latest is None or latest.previous_version is None:
        raise NothingToRollBack("nothing to roll back to: there was no production model "
                                "before the current one")
    return set_production(session, latest.previous_version, "rollback", reason)
