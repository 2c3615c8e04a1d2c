"""MTCNN (the `mtcnn` package, 1.0) run cheaply: the package's own networks, weights and box
arithmetic, each stage one call on the whole batch instead of one eager call per layer.

The package's `MTCNN.detect_faces` spends most of its time outside arithmetic: every layer of
every network, every pyramid level and every crop is a separate eager call with Keras and
TensorFlow dispatch around it. Here a stage is a traced TensorFlow graph for the pixel work the
package does in TensorFlow (normalising, the pyramid's area shrinking, the crops: the same ops)
and one OpenVINO call for its network (its networks converted on first use, run in float32; the
conversions are kept in HAPPYSAD_CACHE_DIR for the next process). Between the stages, proposals
become boxes, are filtered and merged by the package's own functions (mtcnn.utils.bboxes) or,
for the merge, the same arithmetic in fewer calls (suppress_overlaps), in the package's order:
the boxes are the package's, to float rounding in the networks.

Two things the package does are left out because they cannot change a box here: the batch is
one array of equal-sized images (no padding to undo), and ONet's landmarks are not computed
into the result (they never decide a box's order, its confidence or whether it is kept).
"""

import hashlib
import os
import tempfile
import threading
from pathlib import Path

import numpy as np

# The package's defaults (mtcnn.MTCNN.detect_faces), which trainer.faces relies on.
SCALE_FACTOR = 0.709
PYRAMID_MIN_SIZE = 12  # PNet's input window
THRESHOLDS = (0.6, 0.7, 0.8)  # PNet, RNet, ONet confidence
PNET_NMS = (0.5, 0.7)  # within each pyramid level, then across levels
RNET_NMS = 0.7
ONET_NMS = 0.7
RNET_SIZE, ONET_SIZE = 24, 48


class FaceDetector:
    """MTCNN on batches of equal-sized uint8 RGB images. Made from the package's networks
    (`MTCNN().stages`), so their weights are the package's files."""

    def __init__(self, stages, cache_dir: Path | None = None):
        pnet, rnet, onet = (stage.model for stage in stages)
        self._cache_dir = cache_dir  # the networks' OpenVINO conversions; None: never kept
        self._pnet = pnet
        self._refiners = {RNET_SIZE: rnet, ONET_SIZE: onet}
        self._pyramids = {}  # (height, width, min_face_size) -> the traced pyramid + PNet
        self._crop_runners = {}  # patch size -> the traced crop + network

    def detect(self, images: np.ndarray, min_face_size: int = 20,
               thresholds: tuple = THRESHOLDS) -> np.ndarray:
        """(m, 6) float64 rows [image index, x1, y1, x2, y2, confidence] of the faces found in
        `images` (n, height, width, 3) uint8, as the package's `detect_faces` finds them (its
        box coordinates before rounding), in its order."""
        from mtcnn.utils.bboxes import limit_bboxes

        images = np.ascontiguousarray(images, np.uint8)
        normalized, boxes = self._proposals(images, min_face_size, thresholds[0])
        for size, threshold, nms, method in ((RNET_SIZE, thresholds[1], RNET_NMS, "union"),
                                             (ONET_SIZE, thresholds[2], ONET_NMS, "min")):
            if not len(boxes):
                return np.empty((0, 6))
            boxes = self._refine(normalized, boxes, size, threshold, nms, method)
        if not len(boxes):
            return np.empty((0, 6))
        return limit_bboxes(boxes, images_shapes=np.asarray([images.shape[1:]] * len(images)),
                            limit_landmarks=False)

    def _proposals(self, images, min_face_size, threshold):
        """PNet's square candidate boxes (the package's StagePNet), and the normalised images
        for the next stages' crops."""
        import tensorflow as tf
        from mtcnn.utils.bboxes import generate_bounding_box, resize_to_square, upscale_bboxes

        height, width = images.shape[1:3]
        scales, pyramid = self._pyramid(height, width, min_face_size)
        normalized, outputs = pyramid(images)
        found = []
        for scale, (regression, scores) in zip(scales, zip(outputs[::2], outputs[1::2])):
            # the package's function reads TensorFlow tensors
            boxes = generate_bounding_box(tf.constant(regression), tf.constant(scores), threshold)
            boxes = upscale_bboxes(boxes, np.asarray([scale] * len(images)))
            found.append(suppress_overlaps(boxes, PNET_NMS[0], "union", initial_sort=False))
        boxes = np.concatenate(found, axis=0) if found else np.empty((0, 6))
        boxes = suppress_overlaps(boxes, PNET_NMS[1], "union", initial_sort=True)
        return normalized, resize_to_square(boxes)

    def _refine(self, normalized, boxes, size, threshold, nms, method):
        """One of the package's StageRNet / StageONet on `boxes` (landmarks left out)."""
        from mtcnn.utils.bboxes import (adjust_bboxes, pick_matches, replace_confidence,
                                        resize_to_square)

        height, width = normalized.shape[1:3]
        corners = boxes[:, [2, 1, 4, 3]] / np.asarray([[height, width, height, width]])
        offsets, scores = self._crop_runner(size)(normalized, corners.astype(np.float32),
                                                  boxes[:, 0].astype(np.int32))
        boxes = replace_confidence(boxes, scores)
        boxes = adjust_bboxes(boxes, offsets)
        boxes = pick_matches(boxes, score_threshold=threshold)
        boxes = suppress_overlaps(boxes, nms, method, initial_sort=True)
        return resize_to_square(boxes) if size == RNET_SIZE else boxes

    def _pyramid(self, height, width, min_face_size):
        """The package's scales for this image size, and a function of a uint8 batch that
        returns the batch normalised, then each level's PNet box regression and scores: one
        traced TensorFlow call normalises the batch and shrinks it to every scale (area
        averaging, as the package; OpenVINO has no such operation), one compiled call runs PNet
        on every level."""
        key = (height, width, min_face_size)
        if key not in self._pyramids:
            import tensorflow as tf
            from mtcnn.utils.images import build_scale_pyramid, normalize_images, scale_images

            scales = build_scale_pyramid(width, height, min_face_size=min_face_size,
                                         scale_factor=SCALE_FACTOR, min_size=PYRAMID_MIN_SIZE)

            @tf.function(input_signature=[tf.TensorSpec((None, height, width, 3), tf.uint8)])
            def levels(images):
                # (x - 127.5) / 128 of a uint8 is exact in float32: the package's float64 values
                normalized = normalize_images(tf.cast(images, tf.float32))
                return [normalized] + [scale_images(normalized, scale) for scale in scales]

            shapes = [level.shape[1:] for level in levels.get_concrete_function().outputs[1:]]

            @tf.function(input_signature=[tf.TensorSpec((None, *shape), tf.float32)
                                          for shape in shapes])
            def pnet(*shrunk):
                return [output for level in shrunk for output in self._pnet(level)]

            run_pnet = compiled(pnet, self._cache_dir, self._pnet)

            def pyramid(images):
                normalized, *shrunk = levels(images)
                return normalized, run_pnet(*shrunk)

            self._pyramids[key] = scales, pyramid
        return self._pyramids[key]

    def _crop_runner(self, size):
        """A function of the normalised batch and the boxes (as tf.image.crop_and_resize takes
        them) that returns that stage's box offsets and scores: one traced TensorFlow call cuts
        the patches at `size` (as the package; OpenVINO's crop is twice as slow), one compiled
        call runs the network on them."""
        if size not in self._crop_runners:
            import tensorflow as tf

            network = self._refiners[size]

            @tf.function(input_signature=[tf.TensorSpec((None, None, None, 3), tf.float32),
                                          tf.TensorSpec((None, 4), tf.float32),
                                          tf.TensorSpec((None,), tf.int32)])
            def crop(normalized, corners, indices):
                return tf.image.crop_and_resize(normalized, corners, indices, (size, size))

            @tf.function(input_signature=[tf.TensorSpec((None, size, size, 3), tf.float32)])
            def refine(patches):
                outputs = network(patches)
                return outputs[0], outputs[-1]

            run_network = compiled(refine, self._cache_dir, network)

            def run(normalized, corners, indices):
                return run_network(crop(normalized, corners, indices))

            self._crop_runners[size] = run
        return self._crop_runners[size]


def suppress_overlaps(boxes: np.ndarray, threshold: float, method: str,
                      initial_sort: bool) -> np.ndarray:
    """The package's merge (mtcnn.utils.bboxes.smart_nms_from_bboxes) in fewer numpy calls, the
    same arithmetic: rows [image, x1, y1, x2, y2, confidence, ...], sorted by confidence if
    asked (the package's sort), then per image in image order, a box is dropped when any box
    before it (kept or not) overlaps it by more than `threshold` (intersection over union, or
    over the smaller box for "min")."""
    from mtcnn.utils.bboxes import sort_by_scores

    if initial_sort:
        boxes = sort_by_scores(boxes, scores=boxes[:, 5], ascending=False)
    boxes = boxes[np.argsort(boxes[:, 0], kind="stable")]  # by image, each in its order
    starts = np.flatnonzero(np.r_[True, boxes[1:, 0] != boxes[:-1, 0]]) if len(boxes) else []
    kept = []
    for start, end in zip(starts, [*starts[1:], len(boxes)]):
        left, top, right, bottom = boxes[start:end, 1:5].T
        areas = (right - left) * (bottom - top)
        across = np.minimum(right, right[:, None]) - np.maximum(left, left[:, None])
        down = np.minimum(bottom, bottom[:, None]) - np.maximum(top, top[:, None])
        overlap = np.maximum(0, across) * np.maximum(0, down)
        if method == "union":
            overlap = overlap / (areas[:, None] + areas[None, :] - overlap)
        else:
            overlap = overlap / np.minimum(areas[:, None], areas[None, :])
        kept.append(boxes[start:end][~np.triu(overlap > threshold, k=1).any(axis=0)])
    return np.concatenate(kept, axis=0) if kept else np.empty((0, 6))


def compiled(function, cache_dir: Path | None = None, network=None):
    """A traced function (fixed input signature) as OpenVINO runs it on this CPU in float32 with
    this process's TensorFlow thread count (a worker's HAPPYSAD_INFERENCE_THREADS). Converted on
    first use; with a `cache_dir`, the conversion is kept there (keyed on the traced graph, the
    Keras `network`'s weights and the versions that convert it) and read back by the next
    process instead of converting again (a second per process). It returns numpy arrays in the
    function's output order. Without OpenVINO installed, the traced function runs in
    TensorFlow."""
    import tensorflow as tf

    concrete = function.get_concrete_function()
    try:
        import openvino as ov
    except ImportError:
        return lambda *inputs: [output.numpy() for output in function(*inputs)]
    core = ov.Core()
    if cache_dir is None:
        converted = ov.convert_model(concrete)
    else:
        converted = _cached_conversion(core, concrete, cache_dir, network)
    config = {"INFERENCE_PRECISION_HINT": "f32", "NUM_STREAMS": 1}
    threads = tf.config.threading.get_intra_op_parallelism_threads()
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    runnable = core.compile_model(converted, "CPU", config)
    request = runnable.create_infer_request()
    # The IR's inputs are named as the function's arguments ("images"), its outputs as the
    # traced graph's tensors ("Identity_1:0").
    arguments = [tensor for tensor in concrete.inputs if tensor.dtype != tf.resource]
    inputs = [next(port for port in runnable.inputs if tensor.name.split(":")[0]
                   in port.get_names()) for tensor in arguments]
    outputs = [next(port for port in runnable.outputs if tensor.name in port.get_names())
               for tensor in concrete.outputs]

    lock = threading.Lock()  # one infer request: calls from several threads take turns

    def run(*arrays):
        feeds = {port: np.ascontiguousarray(array) for port, array in zip(inputs, arrays)}
        with lock:  # copied out: the request's output memory is reused by its next call
            results = request.infer(feeds)
            return [np.array(results[port]) for port in outputs]

    return run


def _cached_conversion(core, concrete, cache_dir: Path, network):
    """The OpenVINO model of a traced function, read from `cache_dir` when an earlier process
    converted the same one, else converted and written there (whole or not at all: written
    aside, then renamed, the weights first). A folder that cannot be read or written only
    costs the conversion."""
    import openvino as ov

    path = cache_dir / f"{_conversion_key(concrete, network)}.xml"
    try:
        if path.exists():
            return core.read_model(path)
    except (OSError, RuntimeError):  # damaged or unreadable: convert again, and replace it
        pass
    converted = ov.convert_model(concrete)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache_dir) as folder:
            ov.save_model(converted, Path(folder) / path.name, compress_to_fp16=False)
            os.replace(Path(folder) / path.with_suffix(".bin").name, path.with_suffix(".bin"))
            os.replace(Path(folder) / path.name, path)
    except (OSError, RuntimeError):
        pass
    return converted


def _conversion_key(concrete, network) -> str:
    """What a conversion depends on: the traced graph's operations and shapes, the network's
    weights, and the versions of what traces and converts it."""
    from importlib.metadata import version

    digest = hashlib.sha256()
    for package in ("mtcnn", "openvino", "tensorflow", "keras"):
        digest.update(f"{package} {version(package)};".encode())
    for operation in concrete.graph.get_operations():
        digest.update(f"{operation.type}{[str(t.shape) for t in operation.outputs]};".encode())
    for weights in network.get_weights() if network is not None else []:
        digest.update(np.ascontiguousarray(weights).tobytes())
    return digest.hexdigest()[:32]
