"""Inference engines: the fastest way this CPU runs a model that still gives fp32's answers.

"fp32" is the Keras model as one compiled graph (no `predict` loop). "bf16" is the same weights
under Keras's mixed_bfloat16 policy (float32 output head), offered only on CPUs that do bfloat16
in hardware (AMX or AVX512-BF16); elsewhere it is emulated and slower. Even so it must win a
speed race: on a VM that hides AMX, AVX512-BF16 alone was slower than fp32. TFLite is not a
candidate: `tf.lite.Interpreter` is deprecated in TensorFlow 2.21 in favour of LiteRT, a
separate package.

A candidate is used only if it passes a parity check against fp32 on a fixed probe set, and, when
chosen automatically, only if it is measurably faster here; otherwise fp32 is used.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from db.settings import InferenceEngine
from trainer.faces import (FACE_INPUT, FACE_SIZE, FOUND_INPUT, IMAGE_INPUT, face_inputs,
                           reads_faces)
from trainer.model import class_probabilities

logger = logging.getLogger(__name__)

ENGINE_CHOICES = tuple(InferenceEngine)  # declared once, with the setting
# Parity: the largest difference allowed in any class probability on any probe image. bfloat16
# keeps 8 bits of mantissa, which moves a probability by far less than this.
PROBABILITY_TOLERANCE = 0.02
PROBE_COUNT = 16  # also the timing batch: the worker calls the model on chunks of this size
# A candidate chosen automatically must beat fp32 by this factor (the median over interleaved
# timings), so noise on a busy machine does not pick it for no gain: with 1.05 and the best of
# three, a bf16 slower than fp32 was once picked under load; bf16 on AMX clears it easily.
REQUIRED_SPEEDUP = 1.2
BF16_CPU_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})

Infer = Callable[[np.ndarray], np.ndarray]  # uint8 RGB pixel batch -> raw model outputs
# (model, image size, input scale) -> Infer; the input scale is trainer.images.input_scale's.
Build = Callable[[object, int, float], Infer]


@dataclass
class Engine:
    name: str
    infer: Infer
    note: str = ""  # why this engine: parity and speed figures, or why a candidate was refused

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return self.infer(images)


@dataclass
class Parity:
    passed: bool
    max_difference: float
    label_mismatches: int

    def describe(self) -> str:
        return (f"max |dp| {self.max_difference:.4f} (tolerance {PROBABILITY_TOLERANCE}), "
                f"{self.label_mismatches} label mismatches on {PROBE_COUNT} probes")


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass  # not Linux: no flags, so only fp32
    return set()


def compile_graph(model, image_size: int, input_scale: float = 1.0) -> Infer:
    """The model as one graph with a fixed signature, traced once whatever the batch size. It
    takes uint8 pixels and casts them to float32 itself, as trainer.images.model_input does
    (in NumPy that conversion cost more than the JPEG decode, and a quarter of the bytes cross
    into TensorFlow). Models since preprocessing version 2 scale inside (input_scale 1); a
    version 1 model gets version 1's multiplication by 1/255 here."""
    import tensorflow as tf

    def scaled(pixels):
        floats = tf.cast(pixels, tf.float32)
        if input_scale != 1:
            floats = floats * tf.constant(np.float32(input_scale))
        return floats

    signature = [tf.TensorSpec((None, image_size, image_size, 3), tf.uint8)]
    if not reads_faces(model):
        graph = tf.function(lambda pixels: model(scaled(pixels), training=False),
                            input_signature=signature)
        return lambda pixels: np.asarray(graph(pixels), dtype=np.float32)

    # A face-reading model: the face crops are found outside the graph (MTCNN's own networks
    # and its box merging), from the same pixels, then the model runs as one graph.
    def with_faces(pixels, faces, found):
        inputs = {IMAGE_INPUT: scaled(pixels), FACE_INPUT: tf.cast(faces, tf.float32),
                  FOUND_INPUT: found}
        return model(inputs, training=False)

    signature += [tf.TensorSpec((None, FACE_SIZE, FACE_SIZE, 1), tf.uint8),
                  tf.TensorSpec((None, 1), tf.float32)]
    graph = tf.function(with_faces, input_signature=signature)
    return lambda pixels: np.asarray(graph(pixels, *face_inputs(pixels)), dtype=np.float32)


def bfloat16_model(model):
    """The same architecture and weights with every layer but the outputs in mixed_bfloat16:
    bfloat16 maths, float32 weights, and float32 probabilities at the head."""
    import keras

    config = model.get_config()
    outputs = config["output_layers"]  # [name, 0, 0] for one output, a list of those for more
    output_names = {outputs[0]} if isinstance(outputs[0], str) else {o[0] for o in outputs}
    for layer in config["layers"]:
        dtype = layer["config"].get("dtype")
        if isinstance(dtype, dict) and layer["config"].get("name") not in output_names:
            dtype["config"]["name"] = "mixed_bfloat16"
    rebuilt = keras.Model.from_config(config)
    rebuilt.set_weights(model.get_weights())
    return rebuilt


def default_candidates(flags: set[str]) -> list[tuple[str, Build]]:
    """(name, build) for the engines this CPU can run fast."""
    if BF16_CPU_FLAGS & flags:
        return [("bf16", lambda model, size, scale: compile_graph(bfloat16_model(model), size,
                                                                   scale))]
    return []


def probe_images(image_size: int) -> np.ndarray:
    """Fixed, deterministic probes (uint8 pixels): seeded noise, smooth blobs, gradients and
    flat fields."""
    rng = np.random.default_rng(20240601)
    axis = np.linspace(0.0, 1.0, image_size, dtype=np.float32)
    across, down = np.meshgrid(axis, axis)
    fields = [across, down, (across + down) / 2, np.hypot(across - 0.5, down - 0.5) * 1.4]
    probes = [rng.random((image_size, image_size, 3), dtype=np.float32) for _ in range(4)]
    for _ in range(4):
        blobs = rng.random((4, 4, 3), dtype=np.float32)
        probes.append(np.kron(blobs, np.ones((image_size // 4 + 1,) * 2 + (1,)))[
            :image_size, :image_size].astype(np.float32))
    for index, field in enumerate(fields):
        probes.append(np.stack([field, 1 - field, np.roll(field, index, 0)], axis=-1))
        colour = rng.random(3, dtype=np.float32)
        probes.append(np.clip(colour * field[..., None] + 0.1 * rng.standard_normal(
            (image_size, image_size, 3), dtype=np.float32), 0, 1))
    unit = np.clip(np.stack(probes[:PROBE_COUNT]), 0.0, 1.0)
    return np.round(unit * 255).astype(np.uint8)


def check_parity(reference_outputs, candidate_outputs, class_count: int) -> Parity:
    """Same labels and probabilities within PROBABILITY_TOLERANCE. A probe on which fp32 itself
    is a near-tie (top two classes within twice the tolerance) may change label, since a change
    within the tolerance is allowed there; every other probe must keep its label."""
    reference = class_probabilities(reference_outputs, class_count)
    candidate = class_probabilities(candidate_outputs, class_count)
    if reference.shape != candidate.shape or not np.all(np.isfinite(candidate)):
        return Parity(False, float("inf"), len(reference))
    top_two = np.sort(reference, axis=1)[:, -2:]
    decisive = (top_two[:, 1] - top_two[:, 0]) > 2 * PROBABILITY_TOLERANCE
    mismatches = int(np.sum(decisive & (reference.argmax(1) != candidate.argmax(1))))
    difference = float(np.max(np.abs(reference - candidate)))
    return Parity(difference <= PROBABILITY_TOLERANCE and mismatches == 0, difference, mismatches)


def median_speedup(reference: Infer, candidate: Infer, images: np.ndarray,
                   repeats: int = 5) -> float:
    """How many times faster the candidate is: the median over pairs of calls made back to
    back, so both of a pair see the same load on a shared machine."""
    reference(images)
    candidate(images)  # warm: first calls allocate
    ratios = []
    for _ in range(repeats):
        started = time.perf_counter()
        reference(images)
        middle = time.perf_counter()
        candidate(images)
        ratios.append((middle - started) / max(time.perf_counter() - middle, 1e-9))
    return float(np.median(ratios))


def load_engine(model, image_size: int, class_count: int, choice: str = "auto",
                candidates: list[tuple[str, Build]] | None = None,
                input_scale: float = 1.0) -> Engine:
    """The engine for a loaded Keras model. `choice`: "auto" (the first candidate that passes
    parity and beats fp32 here), "fp32", or a candidate's name (forced, but still
    parity-checked: on failure, fp32). `input_scale`: trainer.images.input_scale of the model's
    preprocessing version. Logged, with the reason, once per model per process."""
    fp32 = Engine("fp32", compile_graph(model, image_size, input_scale))
    candidates = default_candidates(cpu_flags()) if candidates is None else candidates
    names = [name for name, _ in candidates]
    if choice not in ENGINE_CHOICES and choice not in names:
        raise ValueError(f"inference engine must be one of {', '.join(ENGINE_CHOICES)}, "
                         f"got {choice!r}")
    probes = probe_images(image_size)
    reference = fp32(probes)  # also traces the graph: the first real batch runs warm
    if choice == "fp32":
        return _chosen(fp32, "requested")
    if choice != "auto" and choice not in names:
        return _chosen(fp32, f"{choice} not available on this CPU", warn=True)
    refusals, warn = [], False
    for name, build in candidates:
        if choice not in ("auto", name):
            continue
        infer, note, failed = _try_candidate(name, lambda m, size: build(m, size, input_scale),
                                             model, image_size, class_count, probes, reference,
                                             fp32 if choice == "auto" else None)
        if infer is not None:
            return _chosen(Engine(name, infer), note)
        refusals.append(note)
        warn = warn or failed
    return _chosen(fp32, "; ".join(refusals) or "no faster engine for this CPU", warn)


def _try_candidate(name, build, model, image_size, class_count, probes, reference, race_with):
    """(infer or None, note, whether it failed rather than merely lost the race)."""
    try:
        infer = build(model, image_size)
        parity = check_parity(reference, infer(probes), class_count)
    except Exception as error:  # a candidate that cannot even run is simply not used
        return None, f"{name} failed to build: {error}", True
    if not parity.passed:
        return None, f"{name} failed parity: {parity.describe()}", True
    note = f"parity {parity.describe()}"
    if race_with is not None:
        speedup = median_speedup(race_with, infer, probes)
        note += f"; {speedup:.2f}x fp32 on probes (needs {REQUIRED_SPEEDUP}x)"
        if speedup < REQUIRED_SPEEDUP:
            return None, f"{name} not faster: {note}", False
    return infer, note, False


def _chosen(engine: Engine, note: str, warn: bool = False) -> Engine:
    engine.note = note
    logger.log(logging.WARNING if warn else logging.INFO, "inference engine %s chosen (%s)",
               engine.name, note)
    return engine
