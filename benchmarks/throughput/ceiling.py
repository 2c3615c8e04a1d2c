"""(a) The raw ceiling, the model alone on in-memory batches, (c) the tutorial's
one-image-at-a-time loop, and the worker's decode cost on its own. A ceiling runs in child processes of its own:
`python -m benchmarks.throughput.ceiling MODEL THREADS SECONDS ENGINE ENGINES_JSON` (the version's
engine record: its reduced-precision verdicts).
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.throughput.common import IMAGE_SIZE, clean_env


def ceiling_child(model_path: str, threads: int, seconds: float, choice: str,
                  engines: dict) -> None:
    """In a child process: warm, say ready, then for each "go" call each engine on in-memory
    uint8 batches of 16 (the worker's chunk) and of 64 for `seconds` each; the faster counts.
    The engine is `choice` (a HAPPYSAD_ENGINE value), from the IR beside the model file."""
    import keras
    import tensorflow as tf

    from trainer.conversion import OPENVINO_FILES
    from worker.classify import INFERENCE_CHUNK
    from worker.engine import load_engine, openvino_candidates

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    model = keras.models.load_model(model_path, compile=False)
    folder = Path(model_path).parent
    files = {name: (folder / name).read_bytes() for name in OPENVINO_FILES
             if (folder / name).exists()}
    candidates = openvino_candidates(files if len(files) == 2 else None, engines, threads)
    engines = {"chosen": load_engine(model, 2, choice, candidates)}
    if engines["chosen"].name != "tensorflow":  # TensorFlow too, to show what the engine gains
        engines["tensorflow"] = load_engine(model, 2, "tensorflow")
    pixels = np.random.default_rng(0).integers(0, 256, (64, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
    batches = {size: pixels[:size] for size in (INFERENCE_CHUNK, 64)}
    for engine in engines.values():
        for batch in batches.values():
            engine(batch)
    print("ready", flush=True)
    while sys.stdin.readline().strip() == "go":
        result = {"engine": engines["chosen"].name, "engine_note": engines["chosen"].note}
        for key, engine in engines.items():
            rates = {}
            for size, batch in batches.items():
                count, started = 0, time.perf_counter()
                while time.perf_counter() - started < seconds:
                    engine(batch)
                    count += size
                rates[size] = count / (time.perf_counter() - started)
            result[f"{key}_images_per_second"] = max(rates.values())
            result[f"{key}_by_batch_size"] = rates
        result.setdefault("tensorflow_images_per_second", result["chosen_images_per_second"])
        print(json.dumps(result), flush=True)


class Ceiling:
    """The model alone, in `processes` processes at once, each with its share of the cores.
    The processes stay up (idle between measurements), so a ceiling can be taken right before
    and right after each end-to-end run without paying TensorFlow's start-up every time."""

    def __init__(self, model_path: str, processes: int, seconds: float, engine: str = "auto",
                 engines: dict | None = None):
        self.processes = processes
        self.threads = max(1, (os.cpu_count() or 1) // processes)
        command = [sys.executable, "-m", "benchmarks.throughput.ceiling", model_path,
                   str(self.threads), str(seconds), engine, json.dumps(engines or {})]
        self.children = [subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          text=True, env=clean_env()) for _ in range(processes)]
        for child in self.children:  # all warm before any is timed: they share the cores
            if child.stdout.readline().strip() != "ready":
                raise RuntimeError("ceiling child failed to start")

    def measure(self) -> dict:
        for child in self.children:
            child.stdin.write("go\n")
            child.stdin.flush()
        results = [json.loads(child.stdout.readline()) for child in self.children]
        return {"processes": self.processes, "threads_per_process": self.threads,
                "engine": results[0]["engine"], "engine_note": results[0]["engine_note"],
                "images_per_second": round(sum(r["chosen_images_per_second"] for r in results), 1),
                "images_per_second_by_batch_size": {
                    size: round(sum(r["chosen_by_batch_size"][size] for r in results), 1)
                    for size in results[0]["chosen_by_batch_size"]},
                "tensorflow_images_per_second": round(sum(r["tensorflow_images_per_second"]
                                                          for r in results), 1)}

    def close(self) -> None:
        for child in self.children:
            child.communicate("stop\n")


# --- (c) the tutorial's loop ---------------------------------------------------------------

def one_image_at_a_time(model_path: str, source: Path, count: int) -> dict:
    """The tutorial's serving loop: imread, tf.image.resize, predict on a batch of one (the
    tutorial's /255 is inside today's models)."""
    import cv2
    import keras
    import tensorflow as tf

    from trainer.faces import model_batch  # a face-reading model gets its face crop too

    model = keras.models.load_model(model_path, compile=False)
    paths = sorted(source.iterdir())[:count]
    model.predict(model_batch(model, np.zeros((1, IMAGE_SIZE, IMAGE_SIZE, 3),
                                           np.float32)).inputs, verbose=0)
    started = time.perf_counter()
    for path in paths:
        image = cv2.imread(str(path))
        resized = np.asarray(tf.image.resize(image, (IMAGE_SIZE, IMAGE_SIZE)))
        model.predict(model_batch(model, np.expand_dims(resized, 0)).inputs, verbose=0)
    return {"images": len(paths),
            "images_per_second": round(len(paths) / (time.perf_counter() - started), 1)}

if __name__ == "__main__":
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    ceiling_child(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4],
                  json.loads(sys.argv[5]))


def decode_cost(source: Path, count: int) -> dict:
    """CPU milliseconds per image of the worker's read-and-decode step (`worker.classify.read_one`)
    on one thread. Decoding needs the same cores as inference, so with the ceiling's inference
    cost per image it bounds end to end: ceiling x inference / (inference + decode)."""
    import cv2

    from trainer.storage import open_storage
    from worker.classify import read_one

    cv2.setNumThreads(1)
    storage = open_storage(str(source))
    uris = [str(path) for path in sorted(source.iterdir())[:count]]
    read_one(storage, uris[0], IMAGE_SIZE, 10**9)
    started = time.process_time()
    for uri in uris:
        read_one(storage, uri, IMAGE_SIZE, 10**9)
    return {"images": len(uris),
            "cpu_ms_per_image": round((time.process_time() - started) / len(uris) * 1000, 3)}
