"""Retrain runs: one per scheduled slot, claimed, finished, and closed when abandoned."""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from db.queries.dialect import dialect_insert
from db.tables import RUN_FAILED, RUN_RUNNING, RetrainRun, utc_now


def claim_retrain_slot(session: Session, slot: str, source: str) -> RetrainRun | None:
    """Start the run for a slot, or None if that slot already has one (a duplicate delivery)."""
    claimed = session.execute(
        dialect_insert(session, RetrainRun)
        .values(slot=slot, source=source, status=RUN_RUNNING, started_at=utc_now(), promoted=False)
        .on_conflict_do_nothing().returning(RetrainRun.id)
    ).scalar()
    if claimed is None:
        return None
    return session.get(RetrainRun, claimed)


def finish_retrain_run(session: Session, run_id: int, status: str, reason: str,
                       fingerprint: str | None = None, model_version: int | None = None,
                       promoted: bool = False, finished_at: datetime | None = None) -> None:
    session.execute(
        update(RetrainRun).where(RetrainRun.id == run_id)
        .values(status=status, reason=reason, dataset_fingerprint=fingerprint,
                model_version=model_version, promoted=promoted,
                finished_at=finished_at or utc_now())
    )


def list_retrain_runs(session: Session, limit: int = 50) -> Sequence[RetrainRun]:
    return session.scalars(select(RetrainRun).order_by(RetrainRun.id.desc()).limit(limit)).all()


def retrain_run_for_slot(session: Session, slot: str) -> RetrainRun | None:
    return session.scalar(select(RetrainRun).where(RetrainRun.slot == slot))


def fail_running_retrain_runs(session: Session, reason: str, slot: str | None = None,
                              before_id: int | None = None) -> Sequence[tuple[int, str]]:
    """Mark runs still "running" as failed (of one slot, or older than a run); returns the
    (id, slot) of each. Only for the holder of the retrain lock: no other run is in progress."""
    query = update(RetrainRun).where(RetrainRun.status == RUN_RUNNING)
    if slot is not None:
        query = query.where(RetrainRun.slot == slot)
    if before_id is not None:
        query = query.where(RetrainRun.id < before_id)
    return session.execute(
        query.values(status=RUN_FAILED, reason=reason, finished_at=utc_now())
        .returning(RetrainRun.id, RetrainRun.slot)
    ).all()
