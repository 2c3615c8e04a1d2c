"""Inference engines: the fastest runtime on this CPU that still gives TensorFlow fp32's answers.

HAPPYSAD_ENGINE picks: "tensorflow" (the Keras model as one traced graph, always available),
"openvino" (the version's OpenVINO IR, converted once at registration: trainer.conversion), or
"auto": every runtime that passes a parity check against TensorFlow on fixed probes, on every
output of the model, is timed against it here, and the fastest is used if it beats TensorFlow
by REQUIRED_SPEEDUP. A missing or damaged conversion, or one that fails parity, falls back to
TensorFlow with one log line.

Precision is always explicit: fp32, or bf16 only for a version whose registration allowed it
(trainer.precision: labels and accuracy held on its test split) and on a CPU with bf16 in
hardware.

An engine takes uint8 RGB pixels and returns every named output of the model as
{output name: (n, ...) array}; `prepare` (the face search of trainer.faces.model_batch: a row
per face read, several for a sticker sheet) and `run` (the graph, on those rows) are apart so
the speed race and the benchmark time the graph alone; an image's outputs are the mean of its
rows'.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from db.settings import InferenceEngine
from trainer.conversion import CLASS_OUTPUT, Run, openvino_runner, tensorflow_runner
from trainer.faces import ModelBatch
from trainer.model import class_probabilities
from trainer.precision import (OUTPUT_TOLERANCES, PROBABILITY_TOLERANCE, PROBE_COUNT,
                               REDUCED_PRECISION_FLAGS, cpu_flags, image_size, named_batch,
                               output_differences, probe_images)

logger = logging.getLogger(__name__)

ENGINE_CHOICES = tuple(InferenceEngine)  # declared once, with the setting
# A candidate chosen automatically must beat TensorFlow by this factor (the median over
# interleaved timings), so noise on a busy machine does not pick it for no gain.
REQUIRED_SPEEDUP = 1.1

Build = Callable[[], Run]  # makes a candidate's runner; may raise (it is then not used)


@dataclass
class Engine:
    name: str
    run: Run  # named model inputs -> {output name: array}
    prepare: Callable[[np.ndarray], ModelBatch]  # uint8 pixels -> named inputs, a row per face
    note: str = ""  # why this engine: parity and speed figures, or why others were refused

    def __call__(self, pixels: np.ndarray) -> dict[str, np.ndarray]:
        return self.prepare(pixels).outputs(self.run)


@dataclass
class Parity:
    passed: bool
    max_difference: float
    label_mismatches: int
    outputs: int

    def describe(self) -> str:
        return (f"max |d| {self.max_difference:.2g} over {self.outputs} output(s) (tolerance "
                f"{PROBABILITY_TOLERANCE}, familiarity {OUTPUT_TOLERANCES['familiarity']}), "
                f"{self.label_mismatches} label changes on "
                f"{PROBE_COUNT} probes")


def input_preparer(model) -> Callable[[np.ndarray], ModelBatch]:
    """uint8 pixels -> the model's inputs by name (trainer.precision.named_batch)."""
    return lambda pixels: named_batch(model, pixels)


def check_parity(reference: dict, candidate: dict, class_count: int) -> Parity:
    """Every output within PROBABILITY_TOLERANCE, and the same labels. A probe on which the
    reference itself is a near-tie (top two within twice the tolerance) may change label."""
    if set(reference) != set(candidate) or any(
            np.shape(reference[name]) != np.shape(candidate[name])
            or not np.all(np.isfinite(candidate[name])) for name in reference):
        return Parity(False, float("inf"), PROBE_COUNT, len(reference))
    differences, within = output_differences(reference, candidate)
    difference = max(differences.values(), default=0.0)
    mismatches = 0
    if CLASS_OUTPUT in reference:
        before = class_probabilities(reference[CLASS_OUTPUT], class_count)
        after = class_probabilities(candidate[CLASS_OUTPUT], class_count)
        top_two = np.sort(before, axis=1)[:, -2:]
        decisive = (top_two[:, 1] - top_two[:, 0]) > 2 * PROBABILITY_TOLERANCE
        mismatches = int(np.sum(decisive & (before.argmax(1) != after.argmax(1))))
    return Parity(within and mismatches == 0, difference,
                  mismatches, len(reference))


def median_speedup(reference: Run, candidate: Run, inputs: dict, repeats: int = 5) -> float:
    """How many times less CPU the candidate takes: the median over pairs of calls made back
    to back. CPU time, this process's, not the wall clock: a worker's processes start together
    and race at once, each on a machine the other keeps busy, and what sets throughput on
    saturated cores is the CPU an image costs. (Wall-clock ratios measured in that race swung
    from 0.78x to 1.35x for a graph that is 1.85x faster alone.)"""
    reference(inputs)
    candidate(inputs)  # warm: first calls allocate
    ratios = []
    for _ in range(repeats):
        started = time.process_time()
        reference(inputs)
        middle = time.process_time()
        candidate(inputs)
        ratios.append((middle - started) / max(time.process_time() - middle, 1e-9))
    return float(np.median(ratios))


def openvino_candidates(files: dict | None, engines_record: dict, threads: int = 0,
                        flags: set[str] | None = None) -> list[tuple[str, Build]]:
    """(name, build) of the OpenVINO engines a version's verified IR offers on this CPU: fp32,
    and bf16 only where its registration allowed it and this CPU has bf16 in hardware; none
    where its registration found the IR's fp32 answers unlike TensorFlow's on its test split
    (the probes here are unlike any training image: the default model answers them all alike)."""
    if files is None:
        return []
    if engines_record.get("openvino", {}).get("fp32_parity", {}).get("passed") is False:
        return []  # the IR did not give TensorFlow's answers on the version's test split
    flags = cpu_flags() if flags is None else flags
    candidates = [("openvino", lambda: openvino_runner(files, "fp32", threads))]
    reduced = engines_record.get("openvino", {}).get("reduced_precision", {})
    for precision, needed in REDUCED_PRECISION_FLAGS.items():
        if reduced.get(precision, {}).get("passed") and needed & flags:
            candidates.append((f"openvino-{precision}",
                               lambda precision=precision: openvino_runner(files, precision,
                                                                           threads)))
    return candidates


def load_engine(model, class_count: int, choice: str = "auto",
                candidates: list[tuple[str, Build]] | None = None, input_scale: float = 1.0,
                unavailable: str = "") -> Engine:
    """The engine for a loaded Keras model. `choice`: a HAPPYSAD_ENGINE value. `candidates`:
    the runtimes beyond TensorFlow (openvino_candidates), `unavailable` why there are none.
    `input_scale`: trainer.images.input_scale of the model's preprocessing version. Logged,
    with its figures, once per model per process."""
    if choice not in ENGINE_CHOICES:
        raise ValueError(f"inference engine must be one of {', '.join(ENGINE_CHOICES)}, "
                         f"got {choice!r}")
    prepare = input_preparer(model)
    tensorflow = Engine("tensorflow", tensorflow_runner(model, input_scale), prepare)
    probes = prepare(probe_images(image_size(model))).inputs
    reference = tensorflow.run(probes)  # also traces the graph: the first batch runs warm
    if choice == InferenceEngine.TENSORFLOW:
        return _chosen(tensorflow, "requested")
    candidates = [(name, build) for name, build in candidates or []
                  if choice == InferenceEngine.AUTO or name.split("-")[0] == choice]
    if not candidates:
        why = f"no usable conversion: {unavailable}" if unavailable else "no other runtime offered"
        return _chosen(tensorflow, why, warn=bool(unavailable))
    passed, refusals = [], []
    for name, build in candidates:
        run, note = _try_candidate(name, build, probes, reference, class_count, tensorflow.run)
        (passed if run is not None else refusals).append((name, run, note))
    if not passed:
        return _chosen(tensorflow, "; ".join(note for _, _, note in refusals), warn=True)
    name, run, note = max(passed, key=lambda entry: entry[2][1])
    if choice == InferenceEngine.AUTO and note[1] < REQUIRED_SPEEDUP:
        return _chosen(tensorflow, f"none faster by {REQUIRED_SPEEDUP}x: " + "; ".join(
            f"{other} {figures[0]}" for other, _, figures in passed))
    return _chosen(Engine(name, run, prepare), "; ".join(
        [f"{other} {figures[0]}" for other, _, figures in passed] +
        [note for _, _, note in refusals]))


def _try_candidate(name, build, probes, reference, class_count, tensorflow):
    """(run, (note, speedup)) of a candidate that passes parity, else (None, why not)."""
    try:
        run = build()
        parity = check_parity(reference, run(probes), class_count)
    except Exception as error:  # a candidate that cannot even run is simply not used
        return None, f"{name} failed to build: {error}"
    if not parity.passed:
        return None, f"{name} failed parity: {parity.describe()}"
    speedup = median_speedup(tensorflow, run, probes)
    return run, (f"parity {parity.describe()}; {speedup:.2f}x tensorflow on the probes' graph",
                 speedup)


def _chosen(engine: Engine, note: str, warn: bool = False) -> Engine:
    engine.note = note
    logger.log(logging.WARNING if warn else logging.INFO, "inference engine %s chosen (%s)",
               engine.name, note)
    return engine
