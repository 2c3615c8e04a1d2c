"""Model versions: files in the model store (a folder or a bucket) plus a row in `model_versions`.

A version's folder holds `model.keras`, `metadata.json` (the contract: class names, input size,
preprocessing version) and its plots. Versions are numbered 1, 2, 3... and never change once
written; exactly one is production.
"""

import hashlib
import json
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path


from db import queries
from db.session import Sessions
from db.settings import Settings
from db.tables import ModelVersion
from trainer.formats import PREPROCESSING_VERSION
from trainer.model_store import version_folder
from trainer.plots import (confusion_matrix_plot, figure_png, history_curves,
                           reliability_diagram, sample_grid)
from trainer.promotion import (PromoteMode, majority_warning, production_version,
                               promotion_decision)
from trainer.storage import open_storage
from trainer.train import TrainingResult

logger = logging.getLogger(__name__)


@dataclass
class Registration:
    version: int
    path: str
    promoted: bool
    reason: str
    warning: str | None = None  # e.g. no better than always answering the majority class


def _model_bytes(model) -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.keras"
        model.save(path)
        return path.read_bytes()


def _engine_files(result: TrainingResult) -> tuple[dict, dict]:
    """(files, record) of the runtimes beyond TensorFlow: the OpenVINO IR and the verdict on
    reduced precision, made once per version here, never by a worker. Made once per trained
    model too (the same result registered in several stores converts once). A model that
    cannot be converted is still registered: workers serve it with TensorFlow."""
    key = _model_key(result.model)
    if key not in _CONVERTED:
        _CONVERTED.clear()  # one model at a time: the files are megabytes
        _CONVERTED[key] = _convert(result)
    return _CONVERTED[key]


def _model_key(model) -> str:
    """What a conversion depends on: the graph and its weights. Not model.keras's bytes: Keras
    writes the time of saving into them, so no two saves matched and every registration of
    the same model converted it again (the slowest step of registering)."""
    import numpy as np

    digest = hashlib.sha256(model.to_json().encode())
    for weights in model.get_weights():
        digest.update(np.ascontiguousarray(weights).tobytes())
    return digest.hexdigest()


_CONVERTED: dict[str, tuple[dict, dict]] = {}


def _convert(result: TrainingResult) -> tuple[dict, dict]:
    from trainer.conversion import (convert_openvino, file_hashes, openvino_runner,
                                    tensorflow_runner)
    from trainer.precision import (REDUCED_PRECISION_FLAGS, check_fp32_parity,
                                   check_reduced_precision, cpu_flags)

    try:
        files = convert_openvino(result.model)
    except Exception as error:  # the converter raises many types; TensorFlow still serves
        logger.warning("no OpenVINO conversion of this model (%s): workers will use "
                       "TensorFlow", error)
        return {}, {"openvino": {"error": str(error)}}
    flags = cpu_flags()
    candidates = {precision: openvino_runner(files, precision)
                  for precision, needed in REDUCED_PRECISION_FLAGS.items() if needed & flags}
    test = result.split.test
    reference = tensorflow_runner(result.model)
    fp32 = check_fp32_parity(result.model, openvino_runner(files, "fp32"), reference,
                             result.data.images[test])
    reduced = check_reduced_precision(result.model, candidates, reference,
                                      result.data.images[test], result.data.labels[test],
                                      len(result.data.class_names), flags)
    return files, {"openvino": {"files": file_hashes(files), "fp32_parity": fp32,
                                "reduced_precision": reduced}}


def _write_version_files(store: str, version: int, result: TrainingResult,
                         model_bytes: bytes, engine_files: dict, engines: dict) -> str:
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
    calibration = result.metrics.get("calibration")
    if calibration:
        plots["reliability.png"] = reliability_diagram(calibration["reliability"],
                                                       calibration["ece"])
    for name, figure in plots.items():
        storage.write_bytes(f"{folder}/plots/{name}", figure_png(figure))
    metadata = {
        "version": version, "class_names": data.class_names,
        "image_size": result.params.image_size, "preprocessing_version": PREPROCESSING_VERSION,
        "architecture": result.params.architecture, "dataset_source": data.source,
        "dataset_fingerprint": data.fingerprint, "metrics": result.metrics,
        "params": result.params_record(), "history": result.history,
        "skipped_files": data.skipped, "engines": engines,
    }
    storage.write_bytes(f"{folder}/metadata.json", json.dumps(metadata, indent=2).encode())
    for name, data_bytes in engine_files.items():  # before model.keras: its path is the row's
        storage.write_bytes(f"{folder}/{name}", data_bytes)
    return storage.write_bytes(f"{folder}/model.keras", model_bytes)


def register(result: TrainingResult, promote: str = PromoteMode.AUTO, *, settings: Settings,
             sessions: Sessions) -> Registration:
    """Claim a version number, write its files, decide promotion (evaluating production with no
    transaction open), then write its row and the promotion in one short transaction. Two
    trainers at once get two numbers: neither writes into the other's folder. Each step is a
    transaction of its own from `sessions`; `settings` name the model store and the gate."""
    promote = PromoteMode(promote)  # a bad mode is a bug of the caller: the CLI offers these
    model_bytes = _model_bytes(result.model)
    engine_files, engines = _engine_files(result)
    version = claim_version(sessions)
    path = _write_version_files(settings.effective_model_store, version, result, model_bytes,
                                engine_files, engines)  # the folder is ours
    for attempt in range(DECISION_ATTEMPTS):
        with sessions() as session:
            production = production_version(session)
        promoted, reason = promotion_decision(result, promote, production, settings)  # computes
        with sessions() as session:
            current = queries.production_model_version(session)
            if (_number(current) != _number(production) and promote == PromoteMode.AUTO
                    and attempt < DECISION_ATTEMPTS - 1):
                continue  # production changed while it was evaluated: decide again, on it
            session.add(_version_row(version, path, model_bytes, result, engines))
            session.flush()
            if promoted:
                queries.set_production(session, version, "auto" if promote == PromoteMode.AUTO
                                       else "manual", reason)
        return Registration(version=version, path=path, promoted=promoted, reason=reason,
                            warning=majority_warning(result))


# Decisions taken again when production changes during the evaluation; the last one stands.
DECISION_ATTEMPTS = 3


def _number(row: ModelVersion | None) -> int | None:
    return None if row is None else row.version


def _version_row(version: int, path: str, model_bytes: bytes, result: TrainingResult,
                 engines: dict) -> ModelVersion:
    return ModelVersion(
        version=version, path=path, model_sha256=hashlib.sha256(model_bytes).hexdigest(),
        architecture=result.params.architecture,
        class_names=result.data.class_names, image_size=result.params.image_size,
        preprocessing_version=PREPROCESSING_VERSION, dataset_source=result.data.source,
        dataset_fingerprint=result.data.fingerprint, metrics=result.metrics, is_production=False,
        # The conversions' hashes live in the row beside model.keras's: checked the same way.
        params=result.params_record() | {"engines": engines})


def claim_version(sessions: Sessions) -> int:
    """A version number of this run's own, claimed in SQL before any file is written (each try
    committed on its own)."""
    claimed_by = f"{socket.gethostname()}:{os.getpid()}"
    for _attempt in range(20):
        with sessions() as session:
            version = queries.claim_model_version(session, claimed_by)
        if version is not None:
            return version
    raise RuntimeError("could not claim a model version number after 20 attempts")
