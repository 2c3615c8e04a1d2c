"""Classify one batch of a job: read, decode (threads), one model call, one transaction.

Pure of Celery: the task hands over ids and URIs; tests call `classify_batch` directly.
"""

import os
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from db import queries
from db.session import session_scope
from db.settings import get_settings
from trainer.images import ImageError, decode_image
from trainer.model import class_probabilities
from trainer.registry import load_model
from trainer.storage import StorageError, open_storage

_DECODE_THREADS = 4


@dataclass
class LoadedModel:
    version: int
    class_names: list[str]
    image_size: int
    infer: object  # callable: float32 batch -> raw outputs

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        return class_probabilities(np.asarray(self.infer(images)), len(self.class_names))


class ModelCache:
    """Model versions loaded in this process, newest use last; a few are kept warm.

    Each process loads the versions its jobs are pinned to on first use, so a promotion reaches
    new jobs without a restart while running jobs keep their own version.
    """

    def __init__(self, capacity: int = 2):
        self.capacity = capacity
        self._models: dict[int, LoadedModel] = {}

    def get(self, version: int) -> LoadedModel:
        if version in self._models:
            self._models[version] = self._models.pop(version)
            return self._models[version]
        configure_threads()
        with session_scope() as session:
            row = queries.get_model_version(session, version)
        model = load_model(row)
        loaded = LoadedModel(version=row.version, class_names=list(row.class_names),
                             image_size=row.image_size, infer=compiled_inference(model))
        self._models[version] = loaded
        while len(self._models) > self.capacity:
            self._models.pop(next(iter(self._models)))
        return loaded


_threads_configured = False


def configure_threads() -> None:
    """TensorFlow threads per process, so processes x threads fit the cores. Once per process,
    before TensorFlow builds its thread pools."""
    global _threads_configured
    if _threads_configured:
        return
    import tensorflow as tf

    threads = get_settings().inference_threads or int(
        os.environ.get("HAPPYSAD_INFERENCE_THREADS", "0")) or (os.cpu_count() or 1)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(2, threads))
    except RuntimeError:
        pass  # TensorFlow already initialised in this process: keep its settings
    _threads_configured = True


def compiled_inference(model):
    """The model called as one compiled graph per batch shape: no `predict` loop overhead."""
    import tensorflow as tf

    graph = tf.function(lambda images: model(images, training=False), reduce_retracing=True)
    return lambda images: graph(tf.convert_to_tensor(images)).numpy()


def read_and_decode(storage, uris: list[str], image_size: int, max_pixels: int):
    """(images, errors): decoded arrays for readable images, a reason for every other URI."""

    def one(uri: str):
        try:
            return decode_image(storage.read_bytes(uri), image_size, max_pixels), None
        except (ImageError, StorageError) as error:
            return None, str(error)
        except FileNotFoundError:
            return None, "file disappeared before it could be read"
        except PermissionError:
            return None, "permission denied"
        except OSError as error:
            return None, f"cannot read: {error.strerror or error}"

    with ThreadPoolExecutor(_DECODE_THREADS) as pool:  # OpenCV and file reads release the GIL
        results = list(pool.map(one, uris))
    return [pixels for pixels, _ in results], [error for _, error in results]


def prediction_rows(job_id: int, model: LoadedModel, uris: list[str], decoded, errors,
                    worker_host: str) -> list[dict]:
    good = [index for index, error in enumerate(errors) if error is None]
    probabilities = model.probabilities(np.stack([decoded[i] for i in good])) if good else []
    rows = []
    for index, uri in enumerate(uris):
        row = {"job_id": job_id, "uri": uri, "model_version": model.version,
               "worker_host": worker_host, "label": None, "confidence": None,
               "probabilities": None, "error": errors[index]}
        rows.append(row)
    for position, index in enumerate(good):
        class_probs = probabilities[position]
        best = int(np.argmax(class_probs))
        rows[index] |= {"label": model.class_names[best], "confidence": float(class_probs[best]),
                        "probabilities": {name: float(p) for name, p in
                                          zip(model.class_names, class_probs)}}
    return rows


def error_rows(job_id: int, model_version: int, uris: list[str], error: str,
               worker_host: str) -> list[dict]:
    return [{"job_id": job_id, "uri": uri, "model_version": model_version,
             "worker_host": worker_host, "label": None, "confidence": None,
             "probabilities": None, "error": error} for uri in uris]


def default_worker_host() -> str:
    return f"{socket.gethostname()}/{os.getpid()}"


def classify_batch(job_id: int, batch_index: int, uris: list[str], cache: ModelCache,
                   worker_host: str | None = None) -> bool | None:
    """Classify and store one batch. Returns whether it completed the job (None: already done)."""
    worker_host = worker_host or default_worker_host()
    with session_scope() as session:
        job = queries.get_job(session, job_id)
        source, model_version = job.source, job.model_version
    model = cache.get(model_version)
    storage = open_storage(source)
    decoded, errors = read_and_decode(storage, uris, model.image_size,
                                      get_settings().max_image_pixels)
    rows = prediction_rows(job_id, model, uris, decoded, errors, worker_host)
    return write_batch(job_id, batch_index, rows, worker_host)


def write_batch(job_id: int, batch_index: int, rows: list[dict], worker_host: str) -> bool | None:
    with session_scope() as session:
        return queries.record_batch(session, job_id, batch_index, rows, worker_host)
