"""Query functions for reviews (a person's verdict on a prediction) and the review queue.
Like db.queries: each takes the caller's session and never commits."""

from itertools import zip_longest
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, func, select, update
from sqlalchemy.orm import Session

from db.errors import InvalidInput
from db.queries import NotFound, get_job, get_model_version, get_prediction
from db.tables import UNFAMILIAR_BELOW, Job, Prediction, Review, utc_now

QUEUE_POOL_FACTOR = 4  # candidates per class, as a multiple of what is asked for
# At most this share of the queue goes to unfamiliar images (however confident): a model is
# often sure and wrong on what it was not trained on, and the margin alone never offers those.
QUEUE_UNFAMILIAR_SHARE = 0.5


class NotReviewable(InvalidInput):
    """A review that cannot be recorded: an image the model could not read, an unknown class."""


@dataclass(frozen=True)
class ReviewedImage:
    """One image's current verdict, where its bytes are: what training on corrections reads."""

    review_id: int
    job_id: int
    source: str
    uri: str
    label: str
    reviewed_at: datetime


def review_prediction(session: Session, prediction_id: int, label: str,
                      reviewer: str) -> Review:
    """Record a verdict: the same label as the model's confirms it, another corrects it. An
    earlier verdict on the same prediction is kept as history, no longer current."""
    prediction = get_prediction(session, prediction_id)
    if prediction.label is None:
        raise NotReviewable(f"prediction {prediction_id} has no label to review: the image "
                            "could not be read")
    job = get_job(session, prediction.job_id)
    class_names = list(get_model_version(session, job.model_version).class_names)
    if label not in class_names:
        raise NotReviewable(f"unknown label {label!r}: job {job.id}'s model knows "
                            f"{', '.join(class_names)}")
    # Lock the prediction row, so two verdicts at once are recorded one after the other.
    session.execute(select(Prediction.id).where(Prediction.id == prediction_id).with_for_update())
    now = utc_now()
    session.execute(update(Review).where(Review.prediction_id == prediction_id,
                                         Review.superseded_at.is_(None))
                    .values(superseded_at=now))
    review = Review(prediction_id=prediction_id, job_id=job.id, model_label=prediction.label,
                    reviewed_label=label, reviewer=reviewer, reviewed_at=now)
    session.add(review)
    session.flush()
    return review


def current_reviews(session: Session, prediction_ids: Iterable[int]) -> dict[int, Review]:
    """The current verdict of each of these predictions that has one."""
    ids = list(prediction_ids)
    if not ids:
        return {}
    rows = session.scalars(select(Review).where(Review.prediction_id.in_(ids),
                                                Review.superseded_at.is_(None)))
    return {row.prediction_id: row for row in rows}


def list_reviews(session: Session, job_id: int | None = None, history: bool = False,
                 after_id: int = 0, limit: int = 100) -> Sequence[Review]:
    """Verdicts in the order given (current only, unless `history`); page with `after_id`."""
    query = select(Review).where(Review.id > after_id)
    if job_id is not None:
        get_job(session, job_id)
        query = query.where(Review.job_id == job_id)
    if not history:
        query = query.where(Review.superseded_at.is_(None))
    return session.scalars(query.order_by(Review.id).limit(limit)).all()


def prediction_uris(session: Session, prediction_ids: Iterable[int]) -> dict[int, str]:
    ids = list(prediction_ids)
    if not ids:
        return {}
    return dict(session.execute(select(Prediction.id, Prediction.uri)
                                .where(Prediction.id.in_(ids))).all())


def prediction_job(session: Session, prediction_id: int) -> int:
    return get_prediction(session, prediction_id).job_id


def review_counts(session: Session, job_id: int) -> dict[str, int]:
    reviewed, corrected = session.execute(
        select(func.count(), func.count().filter(Review.reviewed_label != Review.model_label))
        .where(Review.job_id == job_id, Review.superseded_at.is_(None))
    ).one()
    return {"reviewed": reviewed, "corrected": corrected}


def reviewed_images(session: Session) -> list[ReviewedImage]:
    """Every current verdict with its job's source, oldest first (a later verdict on the same
    image wins where the caller deduplicates)."""
    rows = session.execute(
        select(Review.id, Review.job_id, Job.source, Prediction.uri, Review.reviewed_label,
               Review.reviewed_at)
        .join(Prediction, Prediction.id == Review.prediction_id)
        .join(Job, Job.id == Review.job_id)
        .where(Review.superseded_at.is_(None))
        .order_by(Review.reviewed_at, Review.id))
    return [ReviewedImage(*row) for row in rows]


def margin(probabilities: dict[str, float] | None) -> float:
    """Distance from the decision boundary: the top class's probability minus the runner-up's."""
    values = sorted((probabilities or {}).values(), reverse=True)
    if len(values) < 2:
        return 1.0
    return values[0] - values[1]


def review_queue(session: Session, job_id: int, limit: int = 20) -> list[Prediction]:
    """The job's unreviewed images whose verdict should teach the model most, two kinds taken
    in turn (least sure first):

    - the least sure: closest to the decision boundary (smallest margin), in turn from each
      predicted class so that no class crowds out the others;
    - the most unfamiliar: familiarity below UNFAMILIAR_BELOW, lowest first, whatever their
      confidence; at most QUEUE_UNFAMILIAR_SHARE of the queue. Images without a familiarity
      (models that do not give it) are never among them: the queue is then the least sure only.
    """
    job = get_job(session, job_id)
    unreviewed = ~exists().where(Review.prediction_id == Prediction.id,
                                 Review.superseded_at.is_(None))
    unfamiliar = session.scalars(  # on ix_predictions_job_familiarity_id
        select(Prediction).where(Prediction.job_id == job.id, Prediction.label.is_not(None),
                                 Prediction.familiarity < UNFAMILIAR_BELOW, unreviewed)
        .order_by(Prediction.familiarity, Prediction.id)
        .limit(int(limit * QUEUE_UNFAMILIAR_SHARE))).all()
    least_sure = _least_sure(session, job.id, limit, unreviewed)
    # The two kinds in turn, an image offered once whichever kind it is. Each list is in its
    # own fixed order, so a longer queue begins with the shorter one: the page asks for 20 and
    # shows the first, the same first as a queue of 5.
    queue: list[Prediction] = []
    offered: set[int] = set()
    for pair in zip_longest(least_sure, unfamiliar):
        for row in pair:
            if row is not None and row.id not in offered:
                offered.add(row.id)
                queue.append(row)
    return queue[:limit]


def _least_sure(session: Session, job_id: int, limit: int, eligible) -> list[Prediction]:
    """Up to `limit` images by margin, in rounds over the predicted classes.

    Per class, the `limit x QUEUE_POOL_FACTOR` least confident images are the candidates (on
    the job/label/confidence index), ranked by margin; each round takes the next of every
    class, the round in margin order.
    """
    labels = session.scalars(select(Prediction.label).distinct()
                             .where(Prediction.job_id == job_id, Prediction.label.is_not(None))
                             ).all()
    per_label = []
    for label in sorted(labels):
        candidates = session.scalars(
            select(Prediction).where(Prediction.job_id == job_id, Prediction.label == label,
                                     Prediction.confidence.is_not(None), eligible)
            .order_by(Prediction.confidence, Prediction.id)
            .limit(limit * QUEUE_POOL_FACTOR)).all()
        per_label.append(sorted(candidates, key=lambda row: (margin(row.probabilities), row.id)))
    queue: list[Prediction] = []
    for round_index in range(limit):
        round_rows = [rows[round_index] for rows in per_label if round_index < len(rows)]
        if not round_rows:
            break
        queue += sorted(round_rows, key=lambda row: (margin(row.probabilities), row.id))
    return queue[:limit]


__all__ = ["NotFound", "NotReviewable", "ReviewedImage", "current_reviews", "list_reviews",
           "margin", "prediction_job", "prediction_uris", "review_counts", "review_prediction", "review_queue", "reviewed_images"]
