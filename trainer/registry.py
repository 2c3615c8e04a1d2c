"""Model versions: files in the model store (a folder or a bucket) plus a row in `model_versions`.

A version's folder holds `model.keras`, `metadata.json` (the contract: class names, input size,
preprocessing version) and its plots. Versions are numbered 1, 2, 3... and never change once
written; exactly one is production.
"""

import hashlib
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy.orm import Session

from db import queries
from db.session import session_scope
from db.settings import get_settings
from db.tables import ModelVersion
from trainer.evaluate import classification_metrics
from trainer.formats import PREPROCESSING_VERSION
from trainer.images import decode_image
from trainer.model_store import load_model, version_folder
from trainer.plots import confusion_matrix_plot, figure_png, history_curves, sample_grid
from trainer.storage import open_storage
from trainer.train import TrainingResult, predict_probabilities

PROMOTE_CHOICES = ("auto", "always", "never")


@dataclass
class Registration:
    version: int
    path: str
    promoted: bool
    reason: str


def _model_bytes(model) -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.keras"
        model.save(path)
        return path.read_bytes()


def _write_version_files(store: str, version: int, result: TrainingResult,
                         model_bytes: bytes) -> str:
    storage = open_storage(store)
    folder = version_folder(version)
    data, split = result.data, result.split
    sample = split.train[:16]
    plots = {
        "samples.png": sample_grid(data.images[sample],
                                   [data.class_names[i] for i in data.labels[sample]]),
        "history.png": history_curves(result.history),
        "confusion_matrix.png": confusion_matrix_plot(result.metrics["confusion_matrix"],
                                                      data.class_names),
    }
    for name, figure in plots.items():
        storage.write_bytes(f"{folder}/plots/{name}", figure_png(figure))
    metadata = {
        "version": version, "class_names": data.class_names,
        "image_size": result.params.image_size, "preprocessing_version": PREPROCESSING_VERSION,
        "architecture": result.params.architecture, "dataset_source": data.source,
        "dataset_fingerprint": data.fingerprint, "metrics": result.metrics,
        "params": result.params_record(), "history": result.history,
        "skipped_files": data.skipped,
    }
    storage.write_bytes(f"{folder}/metadata.json", json.dumps(metadata, indent=2).encode())
    return storage.write_bytes(f"{folder}/model.keras", model_bytes)


def evaluate_version_on(row: ModelVersion, result: TrainingResult) -> dict:
    """Score an existing version on the new run's test images, decoded at its own input size."""
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
    if promote == "never":
        return False, "promotion not requested (--promote never)"
    if promote == "always":
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


def register(result: TrainingResult, promote: str = "auto") -> Registration:
    """Claim a version number, write its files, then its row; decide promotion. Two trainers
    at once get two numbers: neither writes into the other's folder."""
    if promote not in PROMOTE_CHOICES:
        raise ValueError(f"--promote must be one of {', '.join(PROMOTE_CHOICES)}")
    model_bytes = _model_bytes(result.model)
    store = get_settings().effective_model_store
    version = claim_version()
    path = _write_version_files(store, version, result, model_bytes)  # the folder is ours
    with session_scope() as session:
        session.add(ModelVersion(
            version=version, path=path, model_sha256=hashlib.sha256(model_bytes).hexdigest(),
            architecture=result.params.architecture,
            class_names=result.data.class_names, image_size=result.params.image_size,
            preprocessing_version=PREPROCESSING_VERSION,
            dataset_source=result.data.source,
            dataset_fingerprint=result.data.fingerprint,
            metrics=result.metrics, params=result.params_record(), is_production=False,
        ))
        session.flush()
        promoted, reason = promotion_decision(session, result, promote)
        if promoted:
            queries.set_production(session, version, "auto" if promote == "auto"
                                   else "manual", reason)
    return Registration(version=version, path=path, promoted=promoted, reason=reason)


def claim_version() -> int:
    """A version number of this run's own, claimed in SQL before any file is written."""
    claimed_by = f"{socket.gethostname()}:{os.getpid()}"
    for _attempt in range(20):
        with session_scope() as session:
            version = queries.claim_model_version(session, claimed_by)
        if version is not None:
            return version
    raise RuntimeError("could not claim a model version number after 20 attempts")


def promote_version(version: int, reason: str = "manual promotion") -> int | None:
    """Make `version` production (the manual override, and the rollback). Returns the previous."""
    with session_scope() as session:
        production = queries.production_model_version(session)
        kind = "rollback" if production and version < production.version else "manual"
        return queries.set_production(session, version, kind, reason).previous_version
