"""Classify one batch of a job: read and decode in threads, overlapped with model calls on
chunks of the batch, then every row in one bulk insert and one transaction.

Pure of Celery: the task hands over ids and URIs, and its process's settings (in the
ModelCache) and transactions; tests call `classify_batch` directly.
"""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from db import queries
from db.session import Sessions
from db.settings import Settings
from trainer.images import ImageError, decode_pixels, input_scale
from trainer.model import class_probabilities
from trainer.model_store import load_model, verified_engine_files
from trainer.storage import StorageError, open_storage
from worker.engine import load_engine, openvino_candidates
from worker.identity import worker_identity

# Images per model call. Small enough that the rest of the batch decodes while a chunk is
# classified, and that TensorFlow's activation memory (megabytes an image at 256 px) stays the
# same whatever HAPPYSAD_BATCH_SIZE is. Chunks of 16 beat 32 and one call of 64 when timed side
# by side (benchmarks/throughput).
INFERENCE_CHUNK = 16


@dataclass
class LoadedModel:
    version: int
    class_names: list[str]
    image_size: int
    infer: object  # callable: uint8 pixel batch -> {output name: array} (worker.engine.Engine)

    def outputs(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(class probabilities, familiarity or None) for a batch of pixels."""
        return model_outputs(self.infer(pixels), len(self.class_names))

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        return self.outputs(pixels)[0]


def model_outputs(raw, class_count: int) -> tuple[np.ndarray, np.ndarray | None]:
    """An engine's outputs as (n, class_count) probabilities and n familiarities in [0, 1], or
    None where the model has no "familiarity" output. Takes either one array of class
    probabilities (models and engines before familiarity) or a dict by output name."""
    if not isinstance(raw, dict):
        return class_probabilities(np.asarray(raw), class_count), None
    if "class_probabilities" not in raw:
        raise ValueError(f"model outputs {sorted(raw)} have no 'class_probabilities'")
    probabilities = class_probabilities(np.asarray(raw["class_probabilities"]), class_count)
    familiarity = raw.get("familiarity")
    if familiarity is None:
        return probabilities, None
    return probabilities, np.clip(np.asarray(familiarity, np.float64).reshape(-1), 0.0, 1.0)


class ModelCache:
    """This process's warm state: model versions loaded (newest use last; a few are kept) and
    the decode threads, made as its `settings` say (the worker process's: HAPPYSAD_ENGINE,
    HAPPYSAD_INFERENCE_THREADS, HAPPYSAD_MAX_IMAGE_PIXELS, the cache folder).

    Each process loads the versions its jobs are pinned to on first use, so a promotion reaches
    new jobs without a restart while running jobs keep their own version.
    """

    def __init__(self, settings: Settings, capacity: int = 2):
        self.settings = settings
        self.capacity = capacity
        self._models: dict[int, LoadedModel] = {}
        self._decode_pool: ThreadPoolExecutor | None = None

    @property
    def inference_threads(self) -> int:
        """TensorFlow threads for this process: the celery parent sets cores / processes."""
        return self.settings.threads_per_process()

    def get(self, version: int, sessions: Sessions) -> LoadedModel:
        """The version's model, loaded on first use (its row read in a transaction of its own)."""
        if version in self._models:
            self._models[version] = self._models.pop(version)
            return self._models[version]
        configure_threads(self.inference_threads)
        with sessions() as session:
            row = queries.get_model_version(session, version)
        cache_folder, choice = self.settings.home_folder("cache"), self.settings.engine
        model = load_model(row, cache_folder)
        files, unavailable = None, ""
        if choice != "tensorflow":  # the IR, hash-checked like model.keras; never converted here
            files, unavailable = verified_engine_files(row, "openvino", cache_folder)
        candidates = openvino_candidates(files, (row.params or {}).get("engines", {}),
                                         self.inference_threads)
        engine = load_engine(model, len(row.class_names), choice, candidates,
                             input_scale(row.preprocessing_version),
                             unavailable and f"v{row.version}'s OpenVINO IR {unavailable}")
        loaded = LoadedModel(version=row.version, class_names=list(row.class_names),
                             image_size=row.image_size, infer=engine)
        self._models[version] = loaded
        while len(self._models) > self.capacity:
            self._models.pop(next(iter(self._models)))
        return loaded

    @property
    def decode_pool(self) -> ThreadPoolExecutor:
        """Made on first use, in the process that uses it (never inherited across a fork)."""
        if self._decode_pool is None:
            self._decode_pool = ThreadPoolExecutor(decode_threads(self.inference_threads),
                                                   "decode")
        return self._decode_pool


def decode_threads(inference_threads: int) -> int:
    # Two per TensorFlow thread: one image is read while another decodes. Timed side by side on
    # 2 cores, one process per core with two decode threads beat one and four.
    return 2 * inference_threads


_threads_configured = False


def configure_threads(threads: int) -> None:
    """TensorFlow threads per process, so processes x threads fit the cores, and OpenCV single
    threaded: decoding is parallel across images in our pool, and OpenCV's own threads would
    fight TensorFlow's for the same cores. Once per process, before TensorFlow builds its pools."""
    global _threads_configured
    if _threads_configured:
        return
    import cv2
    import tensorflow as tf

    cv2.setNumThreads(1)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        # The models are a chain of layers: nothing for a second inter-op thread to run.
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass  # TensorFlow already initialised in this process: keep its settings
    _threads_configured = True


def read_one(storage, uri: str, image_size: int, max_pixels: int):
    """(uint8 pixels, None) for a readable image, else (None, why)."""
    try:
        return decode_pixels(storage.read_stored(uri), image_size, max_pixels), None
    except (ImageError, StorageError) as error:
        return None, str(error)


def classify_images(storage, uris: list[str], model: LoadedModel, max_pixels: int,
                    pool: ThreadPoolExecutor) -> tuple[list, list, list]:
    """(probabilities or None, error or None, familiarity or None) per URI. Every image is
    queued for decoding at once; the model takes them a chunk at a time as they are ready, so
    decoding of the next chunk overlaps inference on this one (TensorFlow and OpenCV both
    release the GIL)."""
    pending = [pool.submit(read_one, storage, uri, model.image_size, max_pixels) for uri in uris]
    probabilities, errors = [None] * len(uris), [None] * len(uris)
    familiarity = [None] * len(uris)
    for start in range(0, len(uris), INFERENCE_CHUNK):
        good, pixels = [], []
        for index in range(start, min(start + INFERENCE_CHUNK, len(uris))):
            image, errors[index] = pending[index].result()
            if image is not None:
                good.append(index)
                pixels.append(image)
        if good:
            chunk_probabilities, chunk_familiarity = model.outputs(np.stack(pixels))
            for position, index in enumerate(good):
                probabilities[index] = chunk_probabilities[position]
                if chunk_familiarity is not None:
                    familiarity[index] = float(chunk_familiarity[position])
    return probabilities, errors, familiarity


def prediction_rows(job_id: int, model: LoadedModel, uris: list[str], probabilities, errors,
                    worker_host: str, familiarity: list | None = None) -> list[dict]:
    """One row per URI, all written in one bulk insert: a label or the reason there is none,
    and the familiarity where the model gives one."""
    rows = error_rows(job_id, model.version, uris, None, worker_host)
    familiarity = familiarity or [None] * len(uris)
    for row, error, class_probs, familiar in zip(rows, errors, probabilities, familiarity):
        row["error"] = error
        if class_probs is not None:
            best = int(np.argmax(class_probs))
            row |= {"label": model.class_names[best], "confidence": float(class_probs[best]),
                    "probabilities": dict(zip(model.class_names, map(float, class_probs))),
                    "familiarity": familiar}
    return rows


def error_rows(job_id: int, model_version: int, uris: list[str], error: str | None,
               worker_host: str) -> list[dict]:
    return [{"job_id": job_id, "uri": uri, "model_version": model_version,
             "worker_host": worker_host, "label": None, "confidence": None,
             "probabilities": None, "familiarity": None, "error": error} for uri in uris]


def classify_batch(job_id: int, batch_index: int, uris: list[str], cache: ModelCache,
                   sessions: Sessions, worker_host: str | None = None) -> bool | None:
    """Classify and store one batch. Returns whether it completed the job (None: already done).
    The job is read in one transaction and the rows written in another (`sessions`), with no
    transaction open while the images are classified."""
    worker_host = worker_host or worker_identity()
    with sessions() as session:
        job = queries.get_job(session, job_id)
        source, model_version = job.source, job.model_version
    model = cache.get(model_version, sessions)
    storage = open_storage(source)
    probabilities, errors, familiarity = classify_images(
        storage, uris, model, cache.settings.max_image_pixels, cache.decode_pool)
    rows = prediction_rows(job_id, model, uris, probabilities, errors, worker_host, familiarity)
    return write_batch(sessions, job_id, batch_index, rows, worker_host)


def write_batch(sessions: Sessions, job_id: int, batch_index: int, rows: list[dict],
                worker_host: str) -> bool | None:
    with sessions() as session:
        return queries.record_batch(session, job_id, batch_index, rows, worker_host)
