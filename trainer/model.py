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
    # Face-reading architectures: how much a photo face's score counts beside the image's;
    # familiarity from the style statistics' first `familiarity_components` principal
    # components, 1 up to the `familiar_quantile` of the validation images' distances and 0 from
    # `familiar_span` times that.
    face_weight: float = 0.0
    drawn_weight: float = 0.0  # the same for a drawn face (trainer.faces finds it)
    # The most an unfamiliar image's face alone may make the model sure of a class (the
    # temperature, fitted on photos, does not touch it): expression scores of a drawing are no
    # photo's evidence. A drawn face like the emoji trainer.drawn_prior learned on is that much
    # familiar, and as far as it is, the bound is emoji_confidence.
    unfamiliar_confidence: float = 1.0
    emoji_confidence: float = 1.0
    familiarity_components: int = 32
    familiar_quantile: float = 0.9
    familiar_span: float = 1.5
    # A face (drawn, or found by the photo finder) whose crop is flat (flat_share: the share of
    # its inner pixels level with their neighbours) is unfamiliar, however much clip art the
    # training folder holds: familiarity at most 1 below the first share, 0 from the second.
    # Photo faces' crops are at most 0.28 flat in 9 of 10 on all three photo sets; with style
    # statistics alone, a folder with clip art made every emoji familiar (docs/research.md).
    # Unless at least `drawings_familiar` of the training folder are drawn faces, or a person
    # reviewed at least `reviewed_drawings_learned` drawn faces: the image part then learned
    # them (a folder of drawings, the sample data; the review loop on a folder of emoji,
    # docs/research.md).
    flat_drawing: tuple[float, float] = (0.3, 0.5)
    drawings_familiar: float = 0.5
    reviewed_drawings_learned: int = 20
    # How much what drawn happy and sad faces look like (trainer.drawn_prior, learned from
    # emoji that packages ship) counts beside the expression network's reading of a drawn face
    # unlike the training photos: as much as a photo face's score counts beside the image's.
    drawn_prior_weight: float = 0.0


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

# The same, plus the largest face's expression scores and familiarity (build_pretrained_faces).
# A face's score counts twice the image's: of 1, 2 and 3, 2 and 3 were level and ahead of 1 in
# the six directions among the photo sets. A drawn face's counts once: web "photo" sets hold
# clip art, and the drawn finder's box there is often a whole figure, not a head; of 0, 1, 2
# and 4, 1 was ahead on the drawn sets from every training set for the least cost on photos
# (docs/research.md).
_PRETRAINED_FACES = replace(_PRETRAINED, face_weight=2.0, drawn_weight=1.0,
                            unfamiliar_confidence=0.85, emoji_confidence=0.97,
                            drawn_prior_weight=2.0)

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

    from trainer.inputs import IMAGE_INPUT

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
    from trainer.inputs import IMAGE_INPUT

    inputs = keras.Input(shape=(image_size, image_size, 3), name=IMAGE_INPUT)
    features = efficientnet_lite_features(inputs, backbone)
    standardised = keras.layers.Normalization(name="feature_standardisation")(features)
    model = keras.Model(inputs, _classifier_head(standardised, class_count), name="pretrained")
    if pretrained_weights:
        load_pretrained_weights(model, backbone)
    return model


# The layers a face-reading model is fitted through (trainer.transfer): each linear part's
# weights and each normalisation are set from the training data, the rest are fixed.
IMAGE_LOGITS_LAYER = "image_logits"  # the photo's features -> one score per class
FACE_LOGITS_LAYER = "face_logits"  # the face's expression scores -> one score per class
DRAWN_PRIOR_LAYER = "drawn_prior_logits"  # the image's features -> trainer.drawn_prior's score
STYLE_LAYER = "style"  # per-channel mean and mean absolute deviation of the first layer


def _style_statistics(first_layer):
    """Per channel of the backbone's first layer (edges and colours, before any meaning): the
    mean and the mean absolute deviation over the image. Photos and drawings differ here even
    where the deep features of an emoji sit among photos'; built from Keras's own layers only,
    so the saved model needs no code of ours to load."""
    from keras import layers

    mean = layers.GlobalAveragePooling2D(keepdims=True, name="style_mean")(first_layer)
    deviation = layers.Subtract(name="style_deviation")([first_layer, mean])
    absolute = layers.Add(name="style_absolute_deviation")(
        [layers.ReLU(name="style_above")(deviation),
         layers.ReLU(name="style_below")(layers.Rescaling(-1.0, name="style_negated")(deviation))])
    return layers.Concatenate(name=STYLE_LAYER)(
        [layers.Flatten(name="style_mean_flat")(mean),
         layers.GlobalAveragePooling2D(name="style_mean_absolute_deviation")(absolute)])


def familiarity_output(style, components: int):
    """How familiar an image is, in [0, 1]: its style statistics' squared Mahalanobis distance
    from the training images' (in their first `components` principal components, averaged),
    turned into 1 up to the distance most validation images are within and 0 from FAMILIAR_SPAN
    times that (trainer.transfer sets the standardisation, the projection and the ramp)."""
    from keras import layers

    standardised = layers.Normalization(name="style_standardisation")(style)
    projected = layers.Dense(components, use_bias=False, name="style_projection")(standardised)
    squared = layers.Multiply(name="style_squared")([projected, projected])
    distance = layers.Dense(1, use_bias=False, name="style_distance")(squared)
    ramp = layers.Dense(1, name="familiarity_ramp")(distance)
    return layers.ReLU(max_value=1.0, name="style_familiarity")(ramp)


def emoji_likeness(features, components: int):
    """How like the emoji trainer.drawn_prior was fitted on an image is, in [0, 1]: familiarity's
    measure on the backbone's features (the mean squared projection on their whitened principal
    components, the standardisation folded into the projection) and its ramp; 0 until
    trainer.transfer.set_drawn_prior sets it."""
    from keras import layers

    projected = layers.Dense(components, kernel_initializer="zeros",
                             name="emoji_projection")(features)
    squared = layers.Multiply(name="emoji_squared")([projected, projected])
    distance = layers.Dense(1, use_bias=False, kernel_initializer="zeros",
                            name="emoji_distance")(squared)
    ramp = layers.Dense(1, kernel_initializer="zeros", name="emoji_ramp")(distance)
    return layers.ReLU(max_value=1.0, name="emoji_likeness")(ramp)


FLAT_BORDER = 8  # pixels of each edge of the face crop that flat_share leaves out
FLAT_TOLERANCE = 2  # grey levels: a pixel within this of its right and lower neighbours is flat


def flat_share(face):
    """The share of a face crop's inner pixels (FLAT_BORDER off each side) that are level with
    their right and lower neighbours, within FLAT_TOLERANCE grey levels: near 1 for a drawing's
    flat fills, low for a photo face's skin and noise, whatever the training images were. The
    crop holds whole grey levels, so the step to "level" is exact. Keras layers only."""
    from keras import layers

    inner = layers.Cropping2D(FLAT_BORDER, name="flat_inner")(face)
    here = layers.Cropping2D(((0, 1), (0, 1)), name="flat_here")(inner)

    def level_with(neighbour, name: str):
        step = layers.Subtract(name=f"flat_step_{name}")([neighbour, here])
        size = layers.Add(name=f"flat_size_{name}")(
            [layers.ReLU(name=f"flat_up_{name}")(step),
             layers.ReLU(name=f"flat_down_{name}")(
                 layers.Rescaling(-1.0, name=f"flat_negated_{name}")(step))])
        # 1 for a step of at most FLAT_TOLERANCE, 0 from one level more.
        margin = layers.Rescaling(-1.0, offset=FLAT_TOLERANCE + 1.0,
                                  name=f"flat_margin_{name}")(size)
        return layers.ReLU(max_value=1.0, name=f"flat_level_{name}")(margin)

    right = layers.Cropping2D(((0, 1), (1, 0)), name="flat_right_neighbour")(inner)
    below = layers.Cropping2D(((1, 0), (0, 1)), name="flat_lower_neighbour")(inner)
    flat = layers.Multiply(name="flat_pixels")(
        [level_with(right, "right"), level_with(below, "below")])
    return layers.GlobalAveragePooling2D(name="flat_share")(flat)


FLAT_DRAWING_GATE = "flat_drawing_gate"


def drawing_familiarity(style_familiarity, face, any_face, flat_drawing: tuple[float, float]):
    """(familiarity, flat drawing): familiarity from the style statistics, at most 1 minus how
    surely the image is a face with flat fills, a drawing ("flat_drawing": `any_face` times
    flat_share's ramp from flat_drawing[0] (0) to flat_drawing[1] (1)), unless
    FLAT_DRAWING_GATE's scale is 0; and that flat drawing, before the gate. Any face, whichever
    finder found it: the photo finder fires on some line-drawn emoji, which then kept the
    style's familiarity and got confident photo labels (docs/research.md)."""
    from keras import layers

    low, high = flat_drawing
    scaled = layers.Rescaling(1 / (high - low), offset=-low / (high - low),
                              name="flat_drawing_scale")(flat_share(face))
    flatness = layers.ReLU(max_value=1.0, name="flat_drawing_ramp")(scaled)
    drawing = layers.Multiply(name="flat_drawing")([flatness, any_face])
    # 1, or 0 where the training folder is mostly drawn faces (trainer.transfer sets it).
    gated = layers.Rescaling(1.0, name=FLAT_DRAWING_GATE)(drawing)
    return layers.Minimum(name="photo_familiarity")(
        [style_familiarity, layers.Rescaling(-1.0, offset=1.0, name="not_flat_drawing")(gated)]
    ), drawing


def score_limit(confidence: float, class_count: int) -> float:
    """The bound on every class's score that keeps the top probability at or below
    `confidence` (< 1): a sigmoid's single score, or a softmax's, one class at the bound and
    every other at minus it."""
    import math

    if class_count == 2:
        return math.log(confidence / (1 - confidence))
    return 0.5 * math.log(confidence * (class_count - 1) / (1 - confidence))


def bounded(scores, limit: float, name: str):
    """`scores` clipped to [-limit, limit], from Keras's own layers (named `name`_raised,
    _clipped, _limited)."""
    from keras import layers

    raised = layers.Rescaling(1.0, offset=limit, name=f"{name}_raised")(scores)
    clipped = layers.ReLU(max_value=2 * limit, name=f"{name}_clipped")(raised)
    return layers.Rescaling(1.0, offset=-limit, name=f"{name}_limited")(clipped)


def build_pretrained_faces(image_size: int, class_count: int,
                           backbone: str = PRETRAINED_BACKBONE):
    """`pretrained`, reading faces and knowing what it has not seen. Inputs: the image; the
    largest face's 64x64 grey crop; whether it is a photo's face; whether a drawn one
    (trainer.faces makes all three from the decoded image). Outputs: the class probabilities
    and the image's familiarity.

    Scores per class (logits) come from two linear parts: one on the image's standardised
    features (all images), one on the probabilities of the face's expressions from fer's
    network (fitted on photo faces). A photo's score is the image's plus the recipe's
    face_weight times the face's where there is a photo's face (drawn_weight times it for a
    drawn face): no face adds nothing, so a missing face is no evidence for any class. The final
    score weighs that photo score by familiarity and the face's score by the rest: a drawing
    unlike the training photos, or a face with flat fills (drawing_familiarity), is read
    by what knows expressions (and a drawing also by what drawn happy and sad faces look like,
    trainer.drawn_prior), and an unfamiliar image without any face by its photo score,
    both within the recipe's unfamiliar_confidence: an unfamiliar image never gets a confident
    label. A drawing like the emoji of trainer.drawn_prior is familiar as far as it is like
    them (the familiarity output is the larger of the two), and read within emoji_confidence.
    A temperature fitted on the validation split calibrates the photo's scores."""
    import keras
    from keras import layers

    from trainer.backbones.efficientnet_lite import (efficientnet_lite_features,
                                                     load_pretrained_weights)
    from trainer.backbones.expression import expression_scores_model
    from trainer.inputs import DRAWN_INPUT, FACE_INPUT, FACE_SIZE, FOUND_INPUT, IMAGE_INPUT

    recipe = RECIPES["pretrained-faces"]
    image = keras.Input(shape=(image_size, image_size, 3), name=IMAGE_INPUT)
    face = keras.Input(shape=(FACE_SIZE, FACE_SIZE, 1), name=FACE_INPUT)
    found = keras.Input(shape=(1,), name=FOUND_INPUT)
    drawn = keras.Input(shape=(1,), name=DRAWN_INPUT)
    features = efficientnet_lite_features(image, backbone)
    backbone_part = keras.Model(image, features)
    units = output_units(class_count)
    image_logits = layers.Dense(units, name=IMAGE_LOGITS_LAYER)(
        layers.Normalization(name="feature_standardisation")(features))

    expression = expression_scores_model()
    expression.trainable = False
    scores = expression(layers.Rescaling(1 / 127.5, offset=-1.0, name="face_normalisation")(face))
    # Probabilities, not raw scores: an expression photos rarely show (disgust, say) has a raw
    # score that barely varies on photo faces, so standardised it swings wildly on a drawing;
    # as a probability it stays in [0, 1] (docs/research.md).
    face_logits = layers.Dense(units, name=FACE_LOGITS_LAYER)(
        layers.Normalization(name="face_standardisation")(
            layers.Softmax(name="expression_probabilities")(scores)))

    photo_logits = layers.Add(name="photo_logits")([
        image_logits,
        layers.Rescaling(recipe.face_weight, name="face_gain")(
            layers.Multiply(name="face_logits_if_found")([face_logits, found])),
        layers.Rescaling(recipe.drawn_weight, name="drawn_gain")(
            layers.Multiply(name="face_logits_if_drawn")([face_logits, drawn]))])
    familiarity = familiarity_output(_style_statistics(
        backbone_part.get_layer("stem_relu6").output), recipe.familiarity_components)
    any_face = layers.Add(name="any_face")([found, drawn])
    photo_familiarity, flat_drawing = drawing_familiarity(familiarity, face, any_face,
                                                          recipe.flat_drawing)
    unfamiliarity = layers.Rescaling(-1.0, offset=1.0, name="unfamiliarity")(photo_familiarity)
    # A drawn face (either finder's, if its fills are flat) is also read by what drawn happy
    # and sad faces look like, as far as the image is like the emoji that reading was learned
    # on (trainer.drawn_prior; zero until trainer.transfer.set_drawn_prior sets it, and for
    # classes other than happy and sad).
    drawing = layers.Maximum(name="drawing")([drawn, flat_drawing])
    emoji_like = layers.Multiply(name="emoji_like_drawing")(
        [drawing, emoji_likeness(features, recipe.familiarity_components)])
    drawn_prior = layers.Multiply(name="drawn_prior_if_drawing")([
        layers.Rescaling(recipe.drawn_prior_weight, name="drawn_prior_gain")(
            layers.Dense(units, kernel_initializer="zeros", name=DRAWN_PRIOR_LAYER)(features)),
        emoji_like])
    reading = layers.Add(name="drawing_read")([face_logits, drawn_prior])
    # An unfamiliar image's face is read within the recipe's unfamiliar_confidence, or, as far
    # as it is a drawing like the emoji the drawn reading was learned on, its emoji_confidence.
    limited_face_logits = layers.Add(name="face_reading")([
        layers.Multiply(name="face_reading_if_unlike")([
            bounded(reading, score_limit(recipe.unfamiliar_confidence, class_count),
                    "face_logits"),
            layers.Rescaling(-1.0, offset=1.0, name="emoji_unlike_drawing")(emoji_like)]),
        layers.Multiply(name="face_reading_if_like")([
            bounded(reading, score_limit(recipe.emoji_confidence, class_count), "emoji_logits"),
            emoji_like])])
    # An unfamiliar image without any face keeps its photo's reading, bounded the same way: a
    # score near zero there was a coin toss on the photos the style statistics find unusual.
    limit = score_limit(recipe.unfamiliar_confidence, class_count)
    limited_photo_logits = bounded(photo_logits, limit, "photo_logits")
    no_face = layers.Rescaling(-1.0, offset=1.0, name="no_face")(any_face)
    # The temperature (fitted on the validation photos) calibrates what the photo's features
    # say; a face read for an unfamiliar image comes after it, its bound its own.
    photo_scores = layers.Add(name="photo_scores")([
        layers.Multiply(name="familiar_photo_logits")([photo_logits, photo_familiarity]),
        layers.Multiply(name="unfamiliar_faceless_logits")(
            [limited_photo_logits, no_face, unfamiliarity])])
    calibrated = layers.Add(name="logits")([
        layers.Rescaling(1.0, name="temperature")(photo_scores),
        layers.Multiply(name="unfamiliar_face_logits")(
            [limited_face_logits, any_face, unfamiliarity])])
    # What the image is like: the training photos, or the emoji of the drawn reading.
    familiarity = layers.Maximum(name="familiarity")([photo_familiarity, emoji_like])
    probabilities = layers.Activation("sigmoid" if class_count == 2 else "softmax",
                                      name="class_probabilities")(calibrated)
    model = keras.Model([image, face, found, drawn],
                        {"class_probabilities": probabilities, "familiarity": familiarity},
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
