"""Which version is production after a training run: champion against challenger on the same
held-out images, and the promotion modes a run may ask for (the manual override and the
rollback are happysad.promotions').

Light at import (NumPy, OpenCV and TensorFlow only inside `evaluate_version_on`): the CLI lists
the modes in its help.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from db import queries
from db.settings import Settings
from db.tables import ModelVersion
from trainer.storage import open_storage

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from trainer.train import TrainingResult


class PromoteMode(StrEnum):
    AUTO = "auto"  # only if at least as good as production on the same test images
    ALWAYS = "always"
    NEVER = "never"


def evaluate_version_on(row: ModelVersion, result: TrainingResult, cache_folder: Path) -> dict:
    """Score an existing version on the new run's test images, decoded at its own input size
    (its file fetched into `cache_folder` if it lives in a bucket)."""
    import numpy as np

    from trainer.evaluate import classification_metrics
    from trainer.images import decode_pixels, model_input
    from trainer.model_store import load_model
    from trainer.train import predict_probabilities

    model = load_model(row, cache_folder)
    storage = open_storage(result.data.source)
    test_uris = [result.data.uris[i] for i in result.split.test]
    images = np.stack([model_input(decode_pixels(storage.read_bytes(uri), row.image_size),
                                   row.preprocessing_version) for uri in test_uris])
    probabilities = predict_probabilities(model, images, len(row.class_names))
    return classification_metrics(result.data.labels[result.split.test], probabilities,
                                  row.class_names)


def majority_warning(result: TrainingResult) -> str | None:
    """Why a model must not be promoted automatically, if it is no better on its own test split
    than always answering the class that split has most of (a model that says "sad" to every
    image scores 0.5 on a balanced split, and would otherwise become production unnoticed)."""
    import numpy as np

    labels = result.data.labels[result.split.test]
    counts = np.bincount(labels, minlength=len(result.data.class_names))
    majority = int(counts.argmax())
    baseline = float(counts[majority] / max(counts.sum(), 1))
    accuracy = result.metrics["accuracy"]
    if accuracy > baseline + 1e-9:
        return None
    return (f"no better than always answering {result.data.class_names[majority]!r}: accuracy "
            f"{accuracy:.3f} against {baseline:.3f} for that on its {len(labels)} test images")


def production_version(session: Session) -> ModelVersion | None:
    """The production row, detached: the caller reads it in a short session and closes that
    before evaluating it, which needs no transaction (on SQLite an open write transaction
    would stop every worker's writes)."""
    row = queries.production_model_version(session)
    if row is not None:
        session.expunge(row)
    return row


def promotion_decision(result: TrainingResult, promote: str, production: ModelVersion | None,
                       settings: Settings) -> tuple[bool, str]:
    """Champion against challenger, on the same held-out images; never, automatically, a model
    no better than the majority class, even as the first version. Runs no query: the caller
    reads `production` first and writes the outcome after, so no transaction is open while the
    production model computes. `settings` name the metric and margin (HAPPYSAD_PROMOTION_*)."""
    metric, margin = settings.promotion_metric, settings.promotion_margin
    if promote == PromoteMode.NEVER:
        return False, "promotion not requested (--promote never)"
    if promote == PromoteMode.ALWAYS:
        return True, "promoted on request (--promote always)"
    if warning := majority_warning(result):
        return False, f"{warning}: not promoted (`happysad models promote` overrides)"
    if production is None:
        return True, "first model version: promoted"
    if production.class_names != result.data.class_names:
        return False, (f"not comparable with production v{production.version}: classes "
                       f"{production.class_names} != {result.data.class_names}")
    champion = evaluate_version_on(production, result, settings.home_folder("cache"))[metric]
    challenger = result.metrics[metric]
    verdict = challenger >= champion + margin
    return verdict, (f"{metric} {challenger:.4f} vs production v{production.version} "
                     f"{champion:.4f} on the same {len(result.split.test)} test images "
                     f"(margin {margin:+.4f}): {'promoted' if verdict else 'kept production'}")

