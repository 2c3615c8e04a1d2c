"""Architectures: the tutorial's CNN (`baseline`) and a regularised one (`improved`).

Functional Keras models. Two classes get one sigmoid output (the probability of the second
class, as in the tutorial); more classes get a softmax. Training-time augmentation lives in the
input pipeline, so a saved model is exactly what serving runs.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Recipe:
    """How an architecture likes to be trained, when the user does not say otherwise."""

    image_size: int
    learning_rate: float
    weight_decay: float
    epochs: int
    patience: int


RECIPES = {
    "baseline": Recipe(image_size=256, learning_rate=1e-3, weight_decay=0.0, epochs=20, patience=5),
    "improved": Recipe(image_size=128, learning_rate=1e-3, weight_decay=1e-4, epochs=40, patience=8),
}
DEFAULT_ARCHITECTURE = "baseline"


def output_units(class_count: int) -> int:
    return 1 if class_count == 2 else class_count


def _classifier_head(features, class_count: int):
    import keras

    activation = "sigmoid" if class_count == 2 else "softmax"
    return keras.layers.Dense(output_units(class_count), activation=activation,
                              name="class_probabilities")(features)


def build_baseline(image_size: int, class_count: int):
    """The tutorial's CNN: Conv2D 16/32/16 + ReLU, each followed by MaxPooling, Dense 256."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=(image_size, image_size, 3), name="image")
    x = inputs
    for filters in (16, 32, 16):
        x = layers.Conv2D(filters, 3, activation="relu")(x)
        x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    x = layers.Dense(256, activation="relu")(x)
    return keras.Model(inputs, _classifier_head(x, class_count), name="baseline")


def build_improved(image_size: int, class_count: int):
    """Wider convolutions with batch normalisation, global pooling and dropout: far fewer
    parameters than the tutorial's Flatten+Dense, so a few hundred photos overfit it less."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=(image_size, image_size, 3), name="image")
    x = inputs
    for filters in (32, 64, 128, 256):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.MaxPooling2D()(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.5)(x)
    return keras.Model(inputs, _classifier_head(x, class_count), name="improved")


ARCHITECTURES = {"baseline": build_baseline, "improved": build_improved}


def build_model(architecture: str, image_size: int, class_count: int):
    if architecture not in ARCHITECTURES:
        raise ValueError(
            f"unknown architecture {architecture!r}; choose one of {', '.join(ARCHITECTURES)}"
        )
    return ARCHITECTURES[architecture](image_size, class_count)


def class_probabilities(raw_outputs, class_count: int):
    """Model outputs as an (n, class_count) array of probabilities per class."""
    import numpy as np

    raw = np.asarray(raw_outputs, dtype=np.float64)
    if class_count == 2:
        second = raw.reshape(-1)
        return np.stack([1.0 - second, second], axis=1)
    return raw
