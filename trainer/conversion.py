"""A model version as graphs the inference runtimes run: TensorFlow's traced function, and the
OpenVINO IR converted from it once per version, at registration (worker.engine picks).

Both take the model's inputs by name, the image as uint8 pixels (cast, and scaled for a
preprocessing version 1 model, inside the graph), and give every named output of the model.
The IR is converted from the very function TensorFlow serves, so the two cannot differ in what
they compute; it is saved in float32 (no fp16 weight compression) and always compiled with its
precision set explicitly: OpenVINO's default runs bf16 on CPUs that have it, silently.
"""

import hashlib
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from trainer.inputs import IMAGE_INPUT

CLASS_OUTPUT = "class_probabilities"  # every model's labels (trainer.model's head layer)
OPENVINO_FILES = ("model.openvino.xml", "model.openvino.bin")  # beside model.keras
OPENVINO_PRECISIONS = {"fp32": "f32", "bf16": "bf16"}  # ours -> INFERENCE_PRECISION_HINT

Run = Callable[[dict], dict]  # named model inputs -> {output name: (n, ...) float32 array}


def image_input_name(model) -> str:
    """The input that takes the decoded image: "image", or a one-input model's only input."""
    names = [tensor.name for tensor in model.inputs]
    return IMAGE_INPUT if IMAGE_INPUT in names or len(names) != 1 else names[0]


def output_names(model) -> list[str]:
    """The model's outputs by layer name, in the model's order ("class_probabilities", ...)."""
    names = getattr(model, "output_names", None)  # functional models; Sequential has none
    return list(names) if names else [model.layers[-1].name]


def serving_function(model, input_scale: float = 1.0):
    """The model as one tf.function over named inputs, traced once whatever the batch size:
    the image as uint8 (a quarter of the bytes cross into TensorFlow, and the cast is the
    graph's; in NumPy it cost more than the JPEG decode), every other input as float32.
    Returns {output name: tensor}."""
    import tensorflow as tf

    image, names = image_input_name(model), [tensor.name for tensor in model.inputs]
    outputs = output_names(model)
    specs = [tf.TensorSpec((None, *tensor.shape[1:]), tf.uint8 if name == image else tf.float32,
                           name=name) for name, tensor in zip(names, model.inputs)]

    def serve(*tensors):
        inputs = {name: tf.cast(tensor, tf.float32) for name, tensor in zip(names, tensors)}
        if input_scale != 1:  # preprocessing version 1 models were fed [0, 1] from outside
            inputs[image] = inputs[image] * tf.constant(np.float32(input_scale))
        results = model(inputs if len(names) > 1 else inputs[image], training=False)
        if isinstance(results, dict):
            return {name: results[name] for name in outputs}
        results = results if isinstance(results, (list, tuple)) else [results]
        return dict(zip(outputs, results))

    return tf.function(serve, input_signature=specs)


def tensorflow_runner(model, input_scale: float = 1.0) -> Run:
    """TensorFlow fp32: the serving function, called on named inputs."""
    graph = serving_function(model, input_scale)
    names = [tensor.name for tensor in model.inputs]

    def run(inputs: dict) -> dict:
        results = graph(*(inputs[name] for name in names))
        return {name: np.asarray(value, np.float32) for name, value in results.items()}

    return run


def convert_openvino(model, input_scale: float = 1.0) -> dict[str, bytes]:
    """{file name: bytes} of the OpenVINO IR of the serving function, float32 weights."""
    import openvino as ov

    converted = ov.convert_model(serving_function(model, input_scale).get_concrete_function())
    with tempfile.TemporaryDirectory() as folder:
        xml = Path(folder) / OPENVINO_FILES[0]
        ov.save_model(converted, xml, compress_to_fp16=False)
        return {name: (Path(folder) / name).read_bytes() for name in OPENVINO_FILES}


def file_hashes(files: dict[str, bytes]) -> dict[str, str]:
    return {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}


def openvino_runner(files: dict[str, bytes], precision: str = "fp32", threads: int = 0) -> Run:
    """The IR compiled for this CPU from the (already verified) bytes themselves, so what runs
    is what was checked. Loading an IR runs no code of the file's. `threads` 0: OpenVINO's
    choice."""
    import openvino as ov

    core = ov.Core()
    weights = ov.Tensor(np.frombuffer(files[OPENVINO_FILES[1]], np.uint8))
    graph = core.read_model(files[OPENVINO_FILES[0]].decode(), weights)
    config = {"INFERENCE_PRECISION_HINT": OPENVINO_PRECISIONS[precision], "NUM_STREAMS": 1}
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    compiled = core.compile_model(graph, "CPU", config)
    request = compiled.create_infer_request()
    # A traced dict's keys become the IR's output tensor names: the model's output names.
    ports = {port.get_any_name(): port for port in compiled.outputs}

    def run(inputs: dict) -> dict:
        results = request.infer({name: np.ascontiguousarray(value)
                                 for name, value in inputs.items()})
        return {name: np.array(results[port], np.float32) for name, port in ports.items()}

    return run
