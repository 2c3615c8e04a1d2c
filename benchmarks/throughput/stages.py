"""Per stage, per engine: what one image costs in decode, face search, graph and database
write, and how far the graph is from the physical limit (the model's multiply-adds at the
peak float32 rate this CPU reaches, measured in the same run by a big matrix product).

    PYTHONPATH=. .venv/bin/python -m benchmarks.throughput.stages FOLDER [--architecture NAME]
        [--images N] [--image-size N]

run alone trains nothing: it builds the architecture with its packaged weights (the backbone's
and the expression network's: the arithmetic is the trained model's), converts it as
registration does, and times it on the JPEGs of FOLDER (searched recursively).
"""

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

CHUNK = 16  # the worker's model call (worker.classify.INFERENCE_CHUNK)


def peak_gflops(seconds: float = 2.0, size: int = 2048) -> dict:
    """The best float32 GFLOP/s of a size x size matrix product (BLAS, every core), over
    `seconds`: the most this CPU does of the arithmetic a model is made of."""
    rng = np.random.default_rng(0)
    left, right = (rng.random((size, size), dtype=np.float32) for _ in range(2))
    left @ right
    best, started = 0.0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        began = time.perf_counter()
        left @ right
        best = max(best, 2 * size ** 3 / (time.perf_counter() - began) / 1e9)
    return {"gflops": round(best, 1), "matrix": size, "cores": os.cpu_count()}


def multiply_adds(model) -> int:
    """Multiply-adds per image of the model's convolutions and dense layers (nested models
    included): the arithmetic that dominates; the rest is a few percent."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += multiply_adds(layer)
            continue
        try:
            in_shape, out_shape = layer.input.shape, layer.output.shape
        except (AttributeError, ValueError):
            continue  # a layer without one defined input/output: not arithmetic we count
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            total += int(np.prod(out_shape[1:])) * int(np.prod(layer.kernel_size))
        elif isinstance(layer, keras.layers.Conv2D):
            total += (int(np.prod(out_shape[1:])) * int(np.prod(layer.kernel_size))
                      * in_shape[-1] // layer.groups)
        elif isinstance(layer, keras.layers.Dense):
            total += int(np.prod(out_shape[1:])) * in_shape[-1]
    return total


def stage_costs(model, engines: dict, paths: list[Path], image_size: int,
                write=None) -> dict:
    """{engine: {stage: ms per image}}: decode on one thread (CPU ms), then face search and
    graph on chunks of CHUNK (wall ms, every core), and `write` (rows -> None, the database
    write of a batch), the same for every engine."""
    from trainer.conversion import CLASS_OUTPUT
    from trainer.images import decode_pixels

    started = time.process_time()
    pixels = np.stack([decode_pixels(path.read_bytes(), image_size) for path in paths])
    decode_ms = (time.process_time() - started) / len(paths) * 1000
    chunks = [pixels[start:start + CHUNK] for start in range(0, len(pixels), CHUNK)]
    table = {}
    for name, engine in engines.items():
        engine(chunks[0])  # warm
        started = time.perf_counter()
        prepared = [engine.prepare(chunk) for chunk in chunks]
        face_ms = (time.perf_counter() - started) / len(pixels) * 1000
        started = time.perf_counter()
        outputs = [batch.outputs(engine.run) for batch in prepared]
        graph_ms = (time.perf_counter() - started) / len(pixels) * 1000
        table[name] = {"engine": engine.name, "decode_cpu_ms": round(decode_ms, 3),
                       "face_search_ms": round(face_ms, 3), "graph_ms": round(graph_ms, 3),
                       "labels": np.concatenate([o[CLASS_OUTPUT] for o in outputs])}
    reference = next(iter(table.values()))["labels"]
    for row in table.values():
        labels = row.pop("labels")
        row["labels_as_first_engine"] = round(float(np.mean(
            _labels(labels) == _labels(reference))), 4)
    if write is not None:
        started = time.perf_counter()
        write(len(pixels))
        write_ms = (time.perf_counter() - started) / len(pixels) * 1000
        for row in table.values():
            row["database_write_ms"] = round(write_ms, 3)
    return table


def stages_per_engine(model_path: str, source: Path, envs: dict) -> dict:
    """Decode, face search, graph (tensorflow, openvino, auto) and database write in ms per
    image, on the first 256 JPEGs of `source`; the write into Redis + PostgreSQL's database
    where that mode runs, else SQLite's."""
    from benchmarks.throughput.common import IMAGE_SIZE, engines_record
    from db import queries
    from db.session import session_scope
    from trainer.conversion import OPENVINO_FILES
    from worker.classify import write_batch
    from worker.engine import load_engine, openvino_candidates

    import keras

    model = keras.models.load_model(model_path, compile=False)
    folder = Path(model_path).parent
    env = envs.get("redis+postgresql") or envs["embedded"]
    candidates = openvino_candidates({name: (folder / name).read_bytes()
                                      for name in OPENVINO_FILES}, engines_record(env))
    engines = {choice: load_engine(model, 2, choice, candidates)
               for choice in ("tensorflow", "openvino", "auto")}

    def write(count: int) -> None:
        with session_scope() as session:
            version = queries.production_model_version(session).version
            job_id = queries.create_job(session, "stages", version, 64).id
        row = {"job_id": job_id, "model_version": version, "worker_host": "bench",
               "label": "happy", "confidence": 0.9, "probabilities": {"happy": 0.9, "sad": 0.1},
               "error": None}
        batches = range(0, count, 64)
        for batch, start in enumerate(batches):
            write_batch(session_scope, job_id, batch,
                        [row | {"uri": f"stages/{index}.jpg"}
                         for index in range(start, min(start + 64, count))], "bench")
        with session_scope() as session:  # sealed and done: no reconciler resumes it
            queries.seal_job(session, job_id, count, len(batches), 0)
            queries.finish_job(session, job_id)

    paths = sorted(source.iterdir())[:256]
    return stage_costs(model, engines, paths, IMAGE_SIZE, write)


def _labels(probabilities: np.ndarray) -> np.ndarray:
    return (probabilities.ravel() > 0.5) if probabilities.shape[-1] == 1 else \
        probabilities.argmax(-1)


def physical_limit(model, peak: dict) -> dict:
    """The graph's least wall ms per image on every core: 2 x multiply-adds at the peak."""
    macs = multiply_adds(model)
    return {"multiply_adds_per_image": macs, "peak": peak,
            "graph_ms_at_peak": round(2 * macs / (peak["gflops"] * 1e9) * 1000, 3),
            "images_per_second_at_peak": round(peak["gflops"] * 1e9 / (2 * macs), 1)}


def with_ratios(table: dict, limit: dict) -> dict:
    for row in table.values():
        row["graph_ratio_to_physical_limit"] = round(limit["graph_ms_at_peak"] /
                                                     row["graph_ms"], 3)
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--architecture", default="pretrained-faces")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--image-size", type=int, default=260)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from trainer.conversion import convert_openvino
    from trainer.model import build_model
    from worker.engine import load_engine, openvino_candidates

    paths = sorted(path for path in args.folder.rglob("*") if path.suffix.lower() in
                   (".jpg", ".jpeg", ".png"))[:args.images]
    model = build_model(args.architecture, args.image_size, 2)
    candidates = openvino_candidates(convert_openvino(model), {})
    engines = {choice: load_engine(model, 2, choice, candidates)
               for choice in ("tensorflow", "openvino", "auto")}
    peak = peak_gflops()
    limit = physical_limit(model, peak)
    table = with_ratios(stage_costs(model, engines, paths, args.image_size), limit)
    print(json.dumps({"architecture": args.architecture, "image_size": args.image_size,
                      "images": len(paths), "stages_ms_per_image": table,
                      "auto_note": engines["auto"].note, "physical_limit": limit,
                      "peak_after": peak_gflops()}, indent=2))


if __name__ == "__main__":
    main()
