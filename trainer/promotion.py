"""Which version is production: champion against challenger on the same held-out images, the
promotion modes a training run may ask for, and the manual override (and rollback).

Light at import (NumPy, OpenCV and TensorFlow only inside `evaluate_version_on`): the CLI lists
the modes in its help.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from db import queries
from db.session import session_scope
from db.settings import get_settings
from db.tables import ModelVersion
from trainer.storage import open_storage

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from trainer.train import TrainingResult


class PromoteMode(StrEnum):
    AUTO = "auto"  # only if at least as good as production on the same test images
    ALWAYS = "always"
    NEVER = "never"


def evaluate_version_on(row: ModelVersion, result: TrainingResult) -> dict:
    """Score an existing version on the new run's test images, decoded at its own input size."""
    import numpy as np

    from trainer.evaluate import classification_metrics
    from trainer.images import decode_image
    from trainer.model_store import load_model
    from trainer.train import predict_probabilities

    model = load_model(row)
    storage = open_storage(result.data.source)
    test_uris = [result.data.uris[i] for i in result.split.test]
    images = np.stack([decode_image(storage.read_bytes(uri), row.image_size) for uri in test_uris])
    probabilities = predict_probabilities(model, images, len(row.class_names))
    return classification_metrics(result.data.labels[result.split.test], probabilities,
                                  row.class_names)


def promotion_decision(session: Session, result: TrainingResult, promote: str) -> tuple[bool, str]:
    """Champion against challenger, on the same held-out images."""
    settings = get_settings()
    metric, margin = settings.promotion_metric, settings.promotion_margin
    production = queries.production_model_version(session)
    if promote == PromoteMode.NEVER:
        return False, "promotion not requested (--promote never)"
    if promote == PromoteMode.ALWAYS:
        return True, "promoted on request (--promote always)"
    if production is None:
        return True, "first model version: promoted"
    if production.class_names != result.data.class_names:
        return False, (f"not comparable with production v{production.version}: classes "
                       f"{production.class_names} != {result.data.class_names}")
    champion = evaluate_version_on(production, result)[metric]
    challenger = result.metrics[metric]
    verdict = challenger >= champion + margin
    return verdict, (f"{metric} {challenger:.4f} vs production v{production.version} "
                     f"{champion:.4f} on the same {len(result.split.test)} test images "
                     f"(margin {margin:+.4f}): {'promoted' if verdict else 'kept production'}")


def promote_version(version: int, reason: str = "manual promotion") -> int | None:
    """Make `version` production (the manual override, and the rollback). Returns the previous."""
    with session_scope() as session:
        production = queries.production_model_version(session)
        kind = "rollback" if production and version < production.version else "manual"
        return queries.set_production(session, version, kind, reason).previous_version
