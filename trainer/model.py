"""Architectures: the tutorial's CNN (`baseline`), a regularised one (`improved`), a deeper
variant of it (`deeper`), and `pretrained`: an ImageNet EfficientNet-Lite backbone, frozen, with
the user's classes as a trained linear head.

Functional Keras models. Each takes RGB pixels in [0, 255] and scales them itself (its first
layer), so the saved file carries its preprocessing (trainer.images, version 2). Two classes get
one sigmoid output (the probability of the second class, as in the tutorial); more classes get
a softmax. Training-time augmentation lives in the input pipeline, so a saved model is exactly
what serving runs.
"""

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Recipe:
    """How an architecture likes to be trained, when the user does not say otherwise."""

    image_size: int
    learning_rate: float
    weight_decay: float
    epochs: int
    patience: int | None  # early stopping on validation loss; None: run every epoch, keep the end
    # Below: defaults are the tutorial's training, which `baseline` keeps.
    augmentation: str = "light"  # a key of trainer.train.AUGMENTATIONS
    label_smoothing: float = 0.0
    cosine_decay: bool = False  # learning rate decays to zero over `epochs`
    # Pretrained architectures: the backbone is frozen, its features computed once per image
    # (and its mirror image), and only the head is fitted, with this L2 penalty on its weights.
    frozen_backbone: bool = False
    head_l2: float = 0.0
    # Face-reading architectures: how much the face's standardised expression scores weigh
    # against the image's standardised features in the head (the L2 penalty sees 8 of them
    # against 1280; the head can then lean on them without a large weight per feature).
    face_weight: float = 0.0


# For a few hundred web photos and no pretrained weights: strong augmentation, decoupled weight
# decay, label smoothing and a cosine schedule run to its end. No early stopping: a validation
# split of a few dozen photos is too noisy to pick the weights by, and the schedule's final
# weights scored better on independent photos (benchmarks/accuracy.py; figures in the README).
_REGULARISED = Recipe(image_size=128, learning_rate=2e-3, weight_decay=0.02, epochs=40,
                      patience=None, augmentation="strong", label_smoothing=0.1,
                      cosine_decay=True)

# The head is a logistic (or softmax) regression on standardised features: convex, so it is
# run to its end on full batches; the L2 penalty is what keeps 200 photos from being memorised.
PRETRAINED_BACKBONE = "lite2"
_PRETRAINED = Recipe(image_size=260, learning_rate=0.01, weight_decay=0.0, epochs=150,
                     patience=None, augmentation="mirror", frozen_backbone=True, head_l2=0.015)

# The same, plus the largest face's expression scores; their weight was the one of 3, 10 and 30
# that was ahead in all three directions of the shared photo sets (README).
_PRETRAINED_FACES = replace(_PRETRAINED, face_weight=10.0)

RECIPES = {
    "baseline": Recipe(image_size=256, learning_rate=1e-3, weight_decay=0.0, epochs=20, patience=5),
    "improved": _REGULARISED,
    "deeper": _REGULARISED,
    "pretrained": _PRETRAINED,
    "pretrained-faces": _PRETRAINED_FACES,
}
# The default is the architecture that scored best through the workers on photos it never saw,
# in all three directions of benchmarks/accuracy.py (the figures live in the README, not here).
DEFAULT_ARCHITECTURE = "pretrained-faces"


def output_units(class_count: int) -> int:
    return 1 if class_count == 2 else class_count


def _classifier_head(features, class_count: int):
    import keras

    activation = "sigmoid" if class_count == 2 else "softmax"
    return keras.layers.Dense(output_units(class_count), activation=activation,
                              name="class_probabilities")(features)


def image_input(image_size: int):
    """(the model's input, the pixels scaled to [0, 1] for the layers after it)."""
    import keras

    from trainer.faces import IMAGE_INPUT

    inputs = keras.Input(shape=(image_size, image_size, 3), name=IMAGE_INPUT)
    return inputs, keras.layers.Rescaling(1 / 255, name="unit_range")(inputs)


def build_baseline(image_size: int, class_count: int):
    """The tutorial's CNN: Conv2D 16/32/16 + ReLU, each followed by MaxPooling, Dense 256."""
    import keras
    from keras import layers

    inputs, x = image_input(image_size)
    for filters in (16, 32, 16):
        x = layers.Conv2D(filters, 3, activation="relu")(x)
        x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    x = layers.Dense(256, activation="relu")(x)
    return keras.Model(inputs, _classifier_head(x, class_count), name="baseline")


def _conv_stages(inputs, widths, convs_per_stage: int):
    """Conv-BN-ReLU stages, each halving the resolution. BN momentum 0.9 rather than Keras's
    0.99: an epoch is only ~7 batches here, and slow running statistics made the validation
    loss explode early, so early stopping kept a model that said "sad" to everything."""
    from keras import layers

    x = inputs
    for filters in widths:
        for _ in range(convs_per_stage):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
            x = layers.BatchNormalization(momentum=0.9)(x)
            x = layers.Activation("relu")(x)
        x = layers.MaxPooling2D()(x)
    return layers.GlobalAveragePooling2D()(x)


def build_improved(image_size: int, class_count: int):
    """Wider convolutions (one per stage) with batch normalisation, global pooling and dropout:
    far fewer parameters than the tutorial's Flatten+Dense, so a few hundred photos overfit it
    less."""
    import keras
    from keras import layers

    inputs, x = image_input(image_size)
    x = _conv_stages(x, (32, 64, 128, 256), convs_per_stage=1)
    x = layers.Dropout(0.4)(x)
    return keras.Model(inputs, _classifier_head(x, class_count), name="improved")


def build_deeper(image_size: int, class_count: int):
    """The improved network with two convolutions per stage: more capacity, about twice as slow to train."""
    import keras
    from keras import layers

    inputs, x = image_input(image_size)
    x = _conv_stages(x, (32, 64, 128, 256), convs_per_stage=2)
    x = layers.Dropout(0.5)(x)
    return keras.Model(inputs, _classifier_head(x, class_count), name="deeper")


FEATURES_LAYER = "backbone_pooling"  # the pretrained models' features, the head's input


def build_pretrained(image_size: int, class_count: int, backbone: str = PRETRAINED_BACKBONE,
                     pretrained_weights: bool = True):
    """EfficientNet-Lite with its ImageNet weights (from its package, read offline), its
    features standardised (a Normalization layer, set from the training images' features)
    and a linear head. The backbone's own input normalisation is its first layer. With
    `pretrained_weights=False` the backbone keeps random weights (tests, tiny sizes)."""
    import keras

    from trainer.backbones.efficientnet_lite import (efficientnet_lite_features,
                                                     load_pretrained_weights)
    from trainer.faces import IMAGE_INPUT

    inputs = keras.Input(shape=(image_size, image_size, 3), name=IMAGE_INPUT)
    features = efficientnet_lite_features(inputs, backbone)
    standardised = keras.layers.Normalization(name="feature_standardisation")(features)
    model = keras.Model(inputs, _classifier_head(standardised, class_count), name="pretrained")
    if pretrained_weights:
        load_pretrained_weights(model, backbone)
    return model


FACE_FEATURES_LAYER = "face_features"  # the expression scores (zero without a face) and found


def build_pretrained_faces(image_size: int, class_count: int,
                           backbone: str = PRETRAINED_BACKBONE):
    """`pretrained`, reading faces too: beside the image, the largest face's 64x64 grey crop
    and whether there was one (trainer.faces makes both from the decoded image). The crop goes
    through a facial-expression network (trainer.backbones.expression); its seven scores, zero
    without a face, and the found flag are standardised, weighted by the recipe's face_weight
    and put beside the image's features before the linear head. Both networks are frozen and
    saved inside the model."""
    import keras

    from trainer.backbones.efficientnet_lite import (efficientnet_lite_features,
                                                     load_pretrained_weights)
    from trainer.backbones.expression import expression_scores_model
    from trainer.faces import FACE_INPUT, FACE_SIZE, FOUND_INPUT, IMAGE_INPUT

    image = keras.Input(shape=(image_size, image_size, 3), name=IMAGE_INPUT)
    face = keras.Input(shape=(FACE_SIZE, FACE_SIZE, 1), name=FACE_INPUT)
    found = keras.Input(shape=(1,), name=FOUND_INPUT)
    features = efficientnet_lite_features(image, backbone)
    standardised = keras.layers.Normalization(name="feature_standardisation")(features)
    expression = expression_scores_model()
    expression.trainable = False
    scores = expression(
        keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="face_normalisation")(face))
    face_features = keras.layers.Concatenate(name=FACE_FEATURES_LAYER)(
        [keras.layers.Multiply(name="face_scores_if_found")([scores, found]), found])
    weighted = keras.layers.Rescaling(RECIPES["pretrained-faces"].face_weight, name="face_weight")(
        keras.layers.Normalization(name="face_standardisation")(face_features))
    head_input = keras.layers.Concatenate(name="head_features")([standardised, weighted])
    model = keras.Model([image, face, found], _classifier_head(head_input, class_count),
                        name="pretrained_faces")
    load_pretrained_weights(model, backbone)
    return model


ARCHITECTURES = {"baseline": build_baseline, "improved": build_improved, "deeper": build_deeper,
                 "pretrained": build_pretrained, "pretrained-faces": build_pretrained_faces}


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
