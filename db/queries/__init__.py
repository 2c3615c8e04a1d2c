"""Query functions. Each takes the caller's session and never commits: the caller owns the
transaction (a task, a CLI command), so several calls can share one atomic unit of work.

One module per subject (model_versions, jobs, predictions, retrain_runs); callers use them
through this package: `from db import queries; queries.get_job(session, 7)`.
"""

from db.errors import NotFound
from db.queries.model_versions import (
    NothingToRollBack,
    claim_model_version,
    next_model_version,
    get_model_version,
    production_model_version,
    list_model_versions,
    set_production,
    promotion_history,
    rollback_production,
)
from db.queries.jobs import (
    JobFinished,
    storable_text,
    create_job,
    get_job,
    list_jobs,
    seal_job,
    record_batch,
    all_batches_done,
    count_attempt,
    finish_job,
    job_status,
    cancel_job,
    set_report_path,
    job_counts,
    label_and_failed_counts,
    label_counts,
)
from db.queries.predictions import (
    PredictionOrder,
    predictions_query,
    uncertain_first_query,
    get_prediction,
    iter_predictions,
    classified_probabilities,
    confidence_extremes,
)
from db.queries.retrain_runs import (
    claim_retrain_slot,
    finish_retrain_run,
    list_retrain_runs,
    retrain_run_for_slot,
    fail_running_retrain_runs,
)

__all__ = [
    "JobFinished",
    "NotFound",
    "NothingToRollBack",
    "PredictionOrder",
    "all_batches_done",
    "cancel_job",
    "claim_model_version",
    "claim_retrain_slot",
    "classified_probabilities",
    "confidence_extremes",
    "count_attempt",
    "create_job",
    "fail_running_retrain_runs",
    "finish_job",
    "finish_retrain_run",
    "get_job",
    "get_model_version",
    "get_prediction",
    "iter_predictions",
    "job_counts",
    "job_status",
    "label_and_failed_counts",
    "label_counts",
    "list_jobs",
    "list_model_versions",
    "list_retrain_runs",
    "next_model_version",
    "predictions_query",
    "production_model_version",
    "promotion_history",
    "record_batch",
    "retrain_run_for_slot",
    "rollback_production",
    "seal_job",
    "set_production",
    "set_report_path",
    "storable_text",
    "uncertain_first_query",
]
