"""Rows as the API's records; the pages show the same records."""

from sqlalchemy.orm import Session

from db import queries
from db.tables import JOB_DONE, Job, ModelVersion, Prediction, Promotion, RetrainRun, Review
from happysad.web import schemas
from scheduler.presence import job_waiting_reason


def job_out(job: Job, session: Session | None = None,
            label_counts: dict[str, int] | None = None) -> schemas.JobOut:
    """A job with its progress from its batch counts; with a session, its row counts too
    (from `label_counts`, which are then filled in, to read the rows once)."""
    counts = {}
    if session is not None:
        by_label, failed = row_counts(session, job)
        counts = {"classified": sum(by_label.values()), "failed": failed}
        if label_counts is not None:
            label_counts.update(by_label)
    if job.status == JOB_DONE:
        progress = 1.0
    else:
        progress = (job.batches_done / job.batches_total) if job.batches_total else 0.0
    return schemas.JobOut(
        job_id=job.id, status=job.status, status_reason=job.status_reason, source=job.source,
        model_version=job.model_version,
        total=job.total_images, batches_total=job.batches_total, batches_done=job.batches_done,
        progress=round(progress, 4), classified=counts.get("classified"),
        failed=counts.get("failed"), skipped_files=job.skipped_files,
        submitted_at=job.submitted_at, finished_at=job.finished_at, report=job.report_path,
        cancelled_at=job.cancelled_at, cancelled_by=job.cancelled_by,
        cancel_reason=job.cancel_reason, waiting_for_worker=job_waiting_reason(job.status))


_done_job_counts: dict[tuple, tuple[dict[str, int], int]] = {}
DONE_JOBS_KEPT = 256


def row_counts(session: Session, job: Job) -> tuple[dict[str, int], int]:
    """Images per label and failed. Counting reads every row of the job (~0.3 s at a million
    here); a done job's rows never change (every batch is claimed: a redelivery writes
    nothing), so its counts are kept for this process's next views of it."""
    key = (str(session.get_bind().url), job.id, job.finished_at)
    if job.status == JOB_DONE and key in _done_job_counts:
        return _done_job_counts[key]
    counts = queries.label_and_failed_counts(session, job.id)
    if job.status == JOB_DONE:
        if len(_done_job_counts) >= DONE_JOBS_KEPT:
            _done_job_counts.pop(next(iter(_done_job_counts)))
        _done_job_counts[key] = counts
    return counts


def prediction_out(row: Prediction, review: Review | None = None) -> schemas.PredictionOut:
    return schemas.PredictionOut(
        id=row.id, uri=row.uri, label=row.label, confidence=row.confidence,
        probabilities=row.probabilities, familiarity=row.familiarity, error=row.error,
        model_version=row.model_version,
        worker_host=row.worker_host, created_at=row.created_at,
        reviewed_label=review.reviewed_label if review else None)


def predictions_out(session: Session, rows) -> list[schemas.PredictionOut]:
    """Predictions with their current verdicts, looked up in one query."""
    from db.queries.reviews import current_reviews

    reviews = current_reviews(session, [row.id for row in rows])
    return [prediction_out(row, reviews.get(row.id)) for row in rows]


def review_out(row: Review, uri: str) -> schemas.ReviewOut:
    return schemas.ReviewOut(
        id=row.id, prediction_id=row.prediction_id, job_id=row.job_id, uri=uri,
        model_label=row.model_label, reviewed_label=row.reviewed_label,
        confirmed=row.model_label == row.reviewed_label, reviewer=row.reviewer,
        reviewed_at=row.reviewed_at, superseded_at=row.superseded_at)


def model_out(row: ModelVersion) -> schemas.ModelOut:
    return schemas.ModelOut(
        version=row.version, created_at=row.created_at, production=row.is_production,
        architecture=row.architecture, class_names=row.class_names, image_size=row.image_size,
        preprocessing_version=row.preprocessing_version, dataset_source=row.dataset_source,
        metrics=row.metrics, params=row.params)


def promotion_out(row: Promotion) -> schemas.PromotionOut:
    return schemas.PromotionOut(id=row.id, at=row.at, version=row.version,
                                previous_version=row.previous_version, kind=row.kind,
                                reason=row.reason)


def retrain_run_out(row: RetrainRun) -> schemas.RetrainRunOut:
    return schemas.RetrainRunOut(id=row.id, slot=row.slot, status=row.status, source=row.source,
                                 started_at=row.started_at, finished_at=row.finished_at,
                                 model_version=row.model_version, promoted=row.promoted,
                                 reason=row.reason)
