"""Rows as records, one builder per kind, for both faces: the CLI prints them (`--json`, its
tables) and the API answers them (happysad.web.schemas picks what HTTP shows of each).

Plain dicts of plain values (datetimes stay datetimes: each face writes them as ISO 8601).
"""

from sqlalchemy.orm import Session

from db import queries
from db.tables import JOB_DONE, Job, ModelVersion, Prediction, Promotion, RetrainRun, Review


def job_record(job: Job, counts: tuple[dict[str, int], int] | None = None,
               program: str = "happysad") -> dict:
    """A job with its progress from its batch counts; with `counts` (row_counts: images per
    label, failed), how many images are classified and failed. `program` is how the
    "waiting for a worker" hint spells the command (the CLI's may be a path)."""
    from scheduler.presence import job_waiting_reason

    if job.status == JOB_DONE:
        progress = 1.0
    else:
        progress = (job.batches_done / job.batches_total) if job.batches_total else 0.0
    by_label, failed = counts if counts is not None else (None, None)
    return {"job_id": job.id, "status": job.status, "status_reason": job.status_reason,
            "source": job.source, "model_version": job.model_version, "total": job.total_images,
            "batches_total": job.batches_total, "batches_done": job.batches_done,
            "progress": round(progress, 4),
            "classified": None if by_label is None else sum(by_label.values()),
            "failed": failed, "skipped_files": job.skipped_files,
            "submitted_at": job.submitted_at, "finished_at": job.finished_at,
            "report": job.report_path, "cancelled_at": job.cancelled_at,
            "cancelled_by": job.cancelled_by, "cancel_reason": job.cancel_reason,
            "waiting_for_worker": job_waiting_reason(job.status, program)}


def counted_job_record(session: Session, job_id: int, program: str = "happysad") -> dict:
    """One job with how many of its images are classified and how many failed so far (`jobs
    show`, GET /jobs/{id}); a list of jobs leaves the counts out (each reads the job's rows)."""
    job = queries.get_job(session, job_id)
    return job_record(job, row_counts(session, job), program)


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


def prediction_record(row: Prediction, review: Review | None = None) -> dict:
    """One image's outcome, with a person's label where it was reviewed."""
    return {"id": row.id, "uri": row.uri, "label": row.label, "confidence": row.confidence,
            "probabilities": row.probabilities, "familiarity": row.familiarity,
            "error": row.error, "model_version": row.model_version,
            "worker_host": row.worker_host, "created_at": row.created_at,
            "reviewed_label": review.reviewed_label if review else None}


def prediction_records(session: Session, rows) -> list[dict]:
    """Predictions with their current verdicts, looked up in one query."""
    from db.queries.reviews import current_reviews

    reviews = current_reviews(session, [row.id for row in rows])
    return [prediction_record(row, reviews.get(row.id)) for row in rows]


def review_record(row: Review, uri: str) -> dict:
    return {"id": row.id, "prediction_id": row.prediction_id, "job_id": row.job_id,
            "uri": uri, "model_label": row.model_label, "reviewed_label": row.reviewed_label,
            "confirmed": row.model_label == row.reviewed_label, "reviewer": row.reviewer,
            "reviewed_at": row.reviewed_at, "superseded_at": row.superseded_at}


def model_version_record(row: ModelVersion) -> dict:
    return {"version": row.version, "created_at": row.created_at, "production": row.is_production,
            "architecture": row.architecture, "class_names": row.class_names,
            "image_size": row.image_size, "preprocessing_version": row.preprocessing_version,
            "dataset_source": row.dataset_source, "dataset_fingerprint": row.dataset_fingerprint,
            "metrics": row.metrics, "params": row.params, "path": row.path,
            "model_sha256": row.model_sha256}


def promotion_record(row: Promotion) -> dict:
    return {"id": row.id, "at": row.at, "version": row.version,
            "previous_version": row.previous_version, "kind": row.kind, "reason": row.reason}


def retrain_run_record(row: RetrainRun) -> dict:
    return {"id": row.id, "slot": row.slot, "status": row.status, "source": row.source,
            "started_at": row.started_at, "finished_at": row.finished_at,
            "dataset_fingerprint": row.dataset_fingerprint, "model_version": row.model_version,
            "promoted": row.promoted, "reason": row.reason}
