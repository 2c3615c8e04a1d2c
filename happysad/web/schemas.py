"""What the API takes and answers: pydantic models, so /docs describes every field. The answers
are happysad.records' records, the ones the CLI prints; a model here picks what HTTP shows."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

# Text the database can store: PostgreSQL text cannot hold a NUL character.
Text = Annotated[str, StringConstraints(min_length=1, max_length=4096, pattern=r"^[^\x00]*$")]
DatabaseId = Annotated[int, Field(ge=1, le=2**31 - 1)]  # an SQL integer key


class JobSubmit(BaseModel):
    source: Text = Field(description="A folder or s3://bucket/prefix under HAPPYSAD_ALLOWED_SOURCES.")
    model_version: DatabaseId | None = Field(None, description="Default: the production model.")
    batch_size: int | None = Field(None, ge=1, le=4096, description="Default: HAPPYSAD_BATCH_SIZE.")


class CancelRequest(BaseModel):
    reason: Text = "cancelled through the API"


class PromoteRequest(BaseModel):
    reason: Text = "promoted through the API"


class RollbackRequest(BaseModel):
    reason: Text = "rolled back through the API"


class RetrainRequest(BaseModel):
    force: bool = Field(False, description="Train even if the data has not changed.")


class JobOut(BaseModel):
    job_id: int
    status: str = Field(description="scanning, running, done, cancelled or failed")
    status_reason: str | None = Field(None, description="Why a job was resumed or failed.")
    source: str
    model_version: int
    total: int | None
    batches_total: int | None
    batches_done: int
    progress: float = Field(description="Fraction of batches written, 0 to 1 (1 when done).")
    classified: int | None = Field(None, description="Only on a single job.")
    failed: int | None = Field(None, description="Only on a single job.")
    skipped_files: int
    submitted_at: datetime
    finished_at: datetime | None
    report: str | None
    cancelled_at: datetime | None
    cancelled_by: str | None
    cancel_reason: str | None
    waiting_for_worker: str | None = Field(
        None, description="While the job runs and no worker consumes the labelling queue: "
                          "\"waiting for a worker\", why, and how to start one.")


class PredictionOut(BaseModel):
    id: int
    uri: str
    label: str | None
    confidence: float | None
    probabilities: dict[str, float] | None
    familiarity: float | None = Field(None, description="How like the training images, in "
                                      "[0, 1]; below 0.5 is unfamiliar; null for models "
                                      "without it.")
    error: str | None
    model_version: int
    worker_host: str
    created_at: datetime
    reviewed_label: str | None = Field(None, description="A person's label for the image, "
                                       "where it was reviewed (the model's row is unchanged).")


class PredictionPage(BaseModel):
    items: list[PredictionOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at the end.")


class ModelOut(BaseModel):
    """happysad.records.model_version_record, but for the version's file `path`: a server's
    path, of no use to a caller (its plots are served under /models/{version}/plots)."""

    version: int
    created_at: datetime
    production: bool
    architecture: str
    class_names: list[str]
    image_size: int
    preprocessing_version: int
    dataset_source: str
    dataset_fingerprint: str = Field(description="What the version was trained on, hashed.")
    metrics: dict
    params: dict
    model_sha256: str = Field(description="The SHA-256 of the version's model file.")


class PromotionOut(BaseModel):
    id: int
    at: datetime
    version: int
    previous_version: int | None
    kind: str
    reason: str


class RetrainRunOut(BaseModel):
    id: int
    slot: str
    status: str
    source: str
    started_at: datetime
    finished_at: datetime | None
    dataset_fingerprint: str | None = Field(None, description="What the run trained on, hashed.")
    model_version: int | None
    promoted: bool
    reason: str | None


class RetrainQueued(BaseModel):
    slot: str = Field(description="The run's slot: find it in GET /api/v1/retrain-runs.")


class ReviewRequest(BaseModel):
    label: Text = Field(description="The image's true class: the model's label confirms it, "
                                    "another corrects it.")
    reviewer: Text = Field("api", description="Who reviewed it.")


class ReviewOut(BaseModel):
    id: int
    prediction_id: int
    job_id: int
    uri: str
    model_label: str
    reviewed_label: str
    confirmed: bool = Field(description="The person gave the model's label.")
    reviewer: str
    reviewed_at: datetime
    superseded_at: datetime | None = Field(description="Set once a later verdict replaced it.")


class ReviewPage(BaseModel):
    items: list[ReviewOut]
    next_cursor: str | None
