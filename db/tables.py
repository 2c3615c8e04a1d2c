"""ORM tables: model versions and their promotions, jobs, batches, predictions, reviews,
retrain runs."""

from datetime import UTC, datetime

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy import TypeDecorator, UniqueConstraint, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utc_now() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Times stored in UTC and read back with their time zone on every database: PostgreSQL
    keeps it (timestamptz), SQLite keeps no zone and hands back a naive time."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return value.astimezone(UTC) if value is not None and value.tzinfo else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict: JSON, list: JSON}


class ModelVersion(Base):
    """One trained model: its file, what it expects as input, how it was made, how it scored."""

    __tablename__ = "model_versions"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    path: Mapped[str] = mapped_column(Text)
    model_sha256: Mapped[str] = mapped_column(String(64))  # a tampered file is refused
    architecture: Mapped[str] = mapped_column(String(64))
    class_names: Mapped[list]
    image_size: Mapped[int]
    preprocessing_version: Mapped[int]
    dataset_source: Mapped[str] = mapped_column(Text)
    dataset_fingerprint: Mapped[str] = mapped_column(String(64), index=True)
    metrics: Mapped[dict]
    params: Mapped[dict]
    is_production: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (
        # Exactly one production version: a partial unique index enforces "at most one".
        Index(
            "ix_model_versions_one_production",
            "is_production",
            unique=True,
            sqlite_where=text("is_production"),
            postgresql_where=text("is_production"),
        ),
    )


class ModelVersionClaim(Base):
    """A version number taken (and committed) before any of its files is written, so two
    trainers running at once never write into the same version's folder."""

    __tablename__ = "model_version_claims"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    claimed_at: Mapped[datetime] = mapped_column(default=utc_now)
    claimed_by: Mapped[str] = mapped_column(String(255))


class Promotion(Base):
    """Every change of the production version: automatic, manual, or a rollback."""

    __tablename__ = "promotions"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utc_now)
    version: Mapped[int] = mapped_column(ForeignKey("model_versions.version"))
    previous_version: Mapped[int | None]
    kind: Mapped[str] = mapped_column(String(16))  # auto | manual | rollback
    reason: Mapped[str] = mapped_column(Text)


# A job's life: scanning (its source is being listed) -> running (every batch is queued) ->
# done (every batch is written) or cancelled (its remaining batches are skipped; rows so far stay).
JOB_SCANNING, JOB_RUNNING, JOB_DONE, JOB_CANCELLED = "scanning", "running", "done", "cancelled"
JOB_FAILED = "failed"  # its listing stopped and could not be resumed: status_reason says why
JOB_FINISHED = (JOB_DONE, JOB_CANCELLED, JOB_FAILED)  # progress stops: nothing more is written
JOB_ACTIVE = (JOB_SCANNING, JOB_RUNNING)  # batches may still be sent, resent and written


class Job(Base):
    """A batch-labelling job: one source, pinned to one model version."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(Text)
    model_version: Mapped[int] = mapped_column(ForeignKey("model_versions.version"))
    status: Mapped[str] = mapped_column(String(16), default=JOB_SCANNING)
    status_reason: Mapped[str | None] = mapped_column(Text)  # resumed, failed: what and why
    batch_size: Mapped[int]
    total_images: Mapped[int | None]
    batches_total: Mapped[int | None]
    batches_done: Mapped[int] = mapped_column(default=0)
    skipped_files: Mapped[int] = mapped_column(default=0)
    submitted_at: Mapped[datetime] = mapped_column(default=utc_now)
    listed_at: Mapped[datetime | None]  # the listing's latest progress (a batch recorded)
    finished_at: Mapped[datetime | None]
    report_path: Mapped[str | None] = mapped_column(Text)
    cancelled_at: Mapped[datetime | None]
    cancelled_by: Mapped[str | None] = mapped_column(String(255))
    cancel_reason: Mapped[str | None] = mapped_column(Text)


class JobBatch(Base):
    """One batch of a job: its URIs recorded before it is sent (the outbox, so a lost message
    can always be sent again), then when its rows are written (`finished_at`), which makes
    redelivery idempotent and completion countable."""

    __tablename__ = "job_batches"

    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), primary_key=True)
    batch_index: Mapped[int] = mapped_column(primary_key=True)
    images: Mapped[int]
    uris: Mapped[list | None]  # None only for batches sent without the outbox (tests, old rows)
    sent_at: Mapped[datetime | None]  # the latest send: committed before the message goes
    sends: Mapped[int] = mapped_column(default=0, server_default="0")
    # Who wrote it; until then, who holds it (the latest start), so a batch whose process is
    # gone is sent again at once (scheduler.reconcile).
    worker_host: Mapped[str | None] = mapped_column(String(255))
    finished_at: Mapped[datetime | None]  # None: not written yet


class BatchAttempt(Base):
    """How often a batch was started: bounds the retries of a batch that kills its worker."""

    __tablename__ = "batch_attempts"

    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), primary_key=True)
    batch_index: Mapped[int] = mapped_column(primary_key=True)
    attempts: Mapped[int] = mapped_column(default=0)
    started_at: Mapped[datetime | None]  # the latest start: a batch running is not resent


# Familiarity below this marks an image as unlike the training images: the job page's badge,
# and the review queue's share of confident but unfamiliar images.
UNFAMILIAR_BELOW = 0.5


class Prediction(Base):
    """One image of a job: its label and every class's probability, or the error it met."""

    __tablename__ = "predictions"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"))
    uri: Mapped[str] = mapped_column(Text)
    label: Mapped[str | None] = mapped_column(String(255))
    confidence: Mapped[float | None] = mapped_column(Float)
    probabilities: Mapped[dict | None]
    # How like the training images, in [0, 1] (1: like them); None for models without it.
    familiarity: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    model_version: Mapped[int]
    worker_host: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)

    __table_args__ = (
        UniqueConstraint("job_id", "uri", name="uq_predictions_job_uri"),
        Index("ix_predictions_job_label_confidence", "job_id", "label", "confidence"),
        Index("ix_predictions_job_id_id", "job_id", "id"),
        Index("ix_predictions_job_confidence_id", "job_id", "confidence", "id"),
        Index("ix_predictions_job_familiarity_id", "job_id", "familiarity", "id"),
    )


class Review(Base):
    """A person's verdict on one prediction: stored beside it, never changing the model's row.

    Reviewing an image again supersedes the earlier verdict (its `superseded_at` is set) and
    adds a new row: the current verdict is the one row without `superseded_at`, the others are
    its history.
    """

    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(primary_key=True)
    prediction_id: Mapped[int] = mapped_column(ForeignKey("predictions.id"))
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"))
    model_label: Mapped[str] = mapped_column(String(255))  # what the model said
    reviewed_label: Mapped[str] = mapped_column(String(255))  # what the person said
    reviewer: Mapped[str] = mapped_column(String(255))
    reviewed_at: Mapped[datetime] = mapped_column(default=utc_now)
    superseded_at: Mapped[datetime | None]

    __table_args__ = (
        # At most one current verdict per prediction.
        Index("ix_reviews_one_current", "prediction_id", unique=True,
              sqlite_where=text("superseded_at IS NULL"),
              postgresql_where=text("superseded_at IS NULL")),
        Index("ix_reviews_job_id", "job_id", "id"),
    )


RUN_RUNNING, RUN_DONE, RUN_SKIPPED, RUN_FAILED = "running", "done", "skipped", "failed"


class RetrainRun(Base):
    """One retrain: scheduled or forced, its outcome and why it was or was not promoted."""

    __tablename__ = "retrain_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    slot: Mapped[str] = mapped_column(String(64), unique=True)  # one run per scheduled slot
    status: Mapped[str] = mapped_column(String(16), default=RUN_RUNNING)  # RUN_*
    source: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(default=utc_now)
    finished_at: Mapped[datetime | None]
    dataset_fingerprint: Mapped[str | None] = mapped_column(String(64))
    model_version: Mapped[int | None]
    promoted: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(Text)
