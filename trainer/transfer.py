"""Training a pretrained architecture: the backbone is frozen, so its features are computed once
per training image (and once for its mirror image: a face's mood survives a flip) and only the
linear parts are fitted on them, every epoch a full batch, in seconds rather than an epoch of the
backbone each time. A face-reading model (trainer.model.build_pretrained_faces) gets four more
steps: its face part fitted on the expression scores of the training photos' faces (and of
reviewed images' drawn faces), the reading of drawn faces that ships with the project
(trainer.drawn_prior) where its classes are happy and sad, its familiarity set from the
training folder's style statistics (reviewed images left out), and its temperature from the
validation split. What is saved is the whole graph.
"""

import numpy as np

from trainer.inputs import DRAWN_INPUT
from trainer.model import (DRAWN_PRIOR_LAYER, FACE_LOGITS_LAYER, FEATURES_LAYER,
                           FLAT_DRAWING_GATE, IMAGE_LOGITS_LAYER, RECIPES, STYLE_LAYER,
                           output_units)

MIN_FACES_PER_CLASS = 3  # fewer photo faces of a class in training: the face part stays zero
SPREAD_FLOOR = 0.1  # familiarity: the least spread of a principal component (features have 1)


def tensor_runner(model, input_names: list[str], tensor, batch_size: int = 32):
    """A function: arrays for `model`'s named inputs -> the value of `tensor` (a KerasTensor of
    its graph), computed in batches by one graph, traced once however often it is called."""
    import keras
    import tensorflow as tf

    part = keras.Model([model.get_layer(name).output for name in input_names], tensor)
    signature = [tf.TensorSpec((None, *model.get_layer(name).output.shape[1:]), tf.float32)
                 for name in input_names]
    graph = tf.function(lambda *batch: part(list(batch), training=False),
                        input_signature=signature)

    def run(*inputs: np.ndarray) -> np.ndarray:
        chunks = [np.asarray(graph(*[np.asarray(array[start:start + batch_size], np.float32)
                                     for array in inputs]))
                  for start in range(0, len(inputs[0]), batch_size)]
        return (np.concatenate(chunks) if chunks
                else np.zeros((0, part.output.shape[-1]), np.float32))

    return run


def layer_runner(model, input_names: list[str], layer_name: str, batch_size: int = 32):
    """tensor_runner for the output of `model`'s layer `layer_name`."""
    return tensor_runner(model, input_names, model.get_layer(layer_name).output, batch_size)


def fit_linear(inputs, labels, validation, validation_labels, class_count: int, params,
               callbacks: list | None = None):
    """A logistic (or softmax) regression fitted as the recipe says: full batches, its L2
    penalty, balanced class weights. Returns (Keras History, [kernel, bias])."""
    import keras

    from trainer.dataset import class_weights

    recipe = RECIPES[params.architecture]
    binary = class_count == 2
    head = keras.Sequential([
        keras.Input((inputs.shape[1],)),
        keras.layers.Dense(output_units(class_count), activation="sigmoid" if binary else
                           "softmax", kernel_regularizer=keras.regularizers.L2(recipe.head_l2)),
    ])
    head.compile(optimizer=keras.optimizers.Adam(params.learning_rate),
                 loss="binary_crossentropy" if binary else "sparse_categorical_crossentropy",
                 metrics=["accuracy"])
    as_targets = (lambda y: y.astype(np.float32)) if binary else (lambda y: y)
    history = head.fit(
        inputs, as_targets(labels),
        validation_data=(validation, as_targets(validation_labels)) if len(validation) else None,
        batch_size=len(labels), epochs=params.epochs, verbose=0, callbacks=callbacks or [],
        class_weight=class_weights(labels, class_count),
    )
    return history, head.layers[-1].get_weights()


def fit_converged(inputs: np.ndarray, labels: np.ndarray, class_count: int,
                  l2: float) -> list[np.ndarray]:
    """fit_linear's objective (mean balanced-class-weighted cross-entropy plus `l2` times the
    squared kernel) solved to its optimum by Newton's method from zero: [kernel, bias] of the
    one model the data define, whatever the random state. For a few features (the face
    part's): the Hessian is (features + 1) x units squared."""
    from trainer.dataset import class_weights

    binary, units = class_count == 2, output_units(class_count)
    rows = np.hstack([np.asarray(inputs, np.float64), np.ones((len(labels), 1))])
    targets = (labels[:, None].astype(np.float64) if binary
               else np.eye(class_count)[labels])
    weights = np.vectorize(class_weights(labels, class_count).get)(labels) / len(labels)
    penalty = np.full(rows.shape[1], 2 * l2)
    penalty[-1] = 0.0  # the bias is not penalised, as with Keras's kernel_regularizer
    theta = np.zeros((rows.shape[1], units))

    def outputs(theta):
        scores = rows @ theta
        if binary:
            return 1 / (1 + np.exp(-scores))
        scores = np.exp(scores - scores.max(axis=1, keepdims=True))
        return scores / scores.sum(axis=1, keepdims=True)

    def loss(theta):
        p = np.clip(outputs(theta), 1e-12, 1 - 1e-12)
        cross = targets * np.log(p) + ((1 - targets) * np.log(1 - p) if binary else 0)
        return -np.sum(weights[:, None] * cross) + np.sum(penalty[:, None] / 2 * theta ** 2)

    size = theta.size
    for _ in range(100):
        p = outputs(theta)
        gradient = rows.T @ (weights[:, None] * (p - targets)) + penalty[:, None] * theta
        # d2/dtheta_ik dtheta_jl: sum_n w_n x_ni x_nj (p_nk [k == l] - p_nk p_nl); binary: p(1-p)
        curvature = (p[:, :, None] * np.eye(units) - p[:, :, None] * p[:, None, :]
                     if not binary else (p * (1 - p))[:, :, None])
        hessian = np.einsum("n,ni,nkl,nj->ikjl", weights, rows, curvature, rows).reshape(
            size, size) + np.diag(np.repeat(penalty, units)) + 1e-9 * np.eye(size)
        step = np.linalg.solve(hessian, gradient.reshape(-1)).reshape(theta.shape)
        before, scale = loss(theta), 1.0
        while loss(theta - scale * step) > before and scale > 1e-4:  # damped where it overshoots
            scale /= 2
        theta -= scale * step
        if np.abs(scale * step).max() < 1e-10:
            break
    return [theta[:-1].astype(np.float32), theta[-1].astype(np.float32)]


def fit_head(model, data, split, params, callbacks: list):
    """Fit `model`'s trained parts on its frozen networks' outputs for the training split;
    returns the Keras History of the image part's epochs (validated on the validation split)."""
    from trainer.faces import face_inputs
    from trainer.inputs import IMAGE_INPUT, reads_faces

    class_count = len(data.class_names)
    images, labels = data.images[split.train], data.labels[split.train]
    image_features = layer_runner(model, [IMAGE_INPUT], FEATURES_LAYER)
    train_features = image_features(images)
    if params.augment:
        train_features = np.concatenate([train_features, image_features(images[:, :, ::-1])])
        labels = np.concatenate([labels, labels])
    standardise = model.get_layer("feature_standardisation")
    standardise.adapt(train_features)
    history, weights = fit_linear(
        np.asarray(standardise(train_features)), labels,
        np.asarray(standardise(image_features(data.images[split.validation]))),
        data.labels[split.validation], class_count, params, callbacks)
    if not reads_faces(model):
        model.get_layer("class_probabilities").set_weights(weights)
        return history
    model.get_layer(IMAGE_LOGITS_LAYER).set_weights(weights)
    train_faces = face_inputs(images)  # the face search once, for both parts that need it
    fit_faces(model, data, split, params, train_faces)
    set_drawn_prior(model, data.class_names)
    # Familiar means like the training folder's images: a few reviewed drawings must not make
    # every drawing familiar before the image part has learned them (docs/research.md).
    folder = ~np.isin(split.train, split.reviewed)
    fit_familiarity(model, images[folder], data.images[split.validation],
                    {name: value[folder] for name, value in train_faces.items()},
                    reviewed_drawings=int(np.sum(train_faces[DRAWN_INPUT][~folder] > 0)))
    fit_temperature_layer(model, data.images[split.validation], data.labels[split.validation])
    return history


def fit_faces(model, data, split, params, train_faces: dict | None = None) -> None:
    """The face part: a linear map from the expression network's scores to the classes, fitted
    on the faces found in the training photos (and their mirror images) and solved to its
    optimum (fit_converged). Keras's 150 full-batch steps left it near its random start: a
    retrain in a worker process that had built the face networks before got another face part
    than `happysad train` from the same folder and seed (docs/research.md). A drawn face
    counts only in an image a person reviewed: a training folder's drawn finds are often whole
    figures, not heads, while a person's verdicts on a folder of drawings are what teaches the
    face part to read them (docs/research.md). With too few faces of a class it stays zero:
    faces then add nothing. `train_faces`: the training split's face inputs
    (trainer.faces.face_inputs), found here when not given."""
    from trainer.faces import face_inputs
    from trainer.inputs import FACE_INPUT, FOUND_INPUT

    class_count = len(data.class_names)
    scores_of = tensor_runner(model, [FACE_INPUT],
                              model.get_layer("face_standardisation").input)

    faces = face_inputs(data.images[split.train]) if train_faces is None else train_faces
    drawn_reviewed = (faces[DRAWN_INPUT][:, 0] > 0) & np.isin(split.train, split.reviewed)
    used = (faces[FOUND_INPUT][:, 0] > 0) | drawn_reviewed
    crops, labels = faces[FACE_INPUT][used], data.labels[split.train][used]
    if params.augment:
        crops, labels = np.concatenate([crops, crops[:, :, ::-1]]), np.concatenate(
            [labels, labels])
    scores = scores_of(crops)
    face_logits = model.get_layer(FACE_LOGITS_LAYER)
    standardise = model.get_layer("face_standardisation")
    counts = np.bincount(labels, minlength=class_count)
    if counts.min() < MIN_FACES_PER_CLASS:
        standardise.adapt(np.zeros((2, scores.shape[1]), np.float32))
        face_logits.set_weights([np.zeros_like(w) for w in face_logits.get_weights()])
        return
    standardise.adapt(scores)
    face_logits.set_weights(fit_converged(np.asarray(standardise(scores)), labels, class_count,
                                          RECIPES[params.architecture].head_l2))


def set_drawn_prior(model, class_names: list[str], prior=None) -> bool:
    """The model's reading of drawn faces (DRAWN_PRIOR_LAYER) and how like its emoji an image
    is (trainer.model.emoji_likeness): trainer.drawn_prior's, where the classes are happy and
    sad and the model's features, image size and components are the ones it was fitted on;
    else zero, so it adds nothing. The likeness ramp is familiarity's: 1 up to the distance
    most of the emoji are within, 0 from the recipe's familiar_span times that. `prior`: a
    loaded DrawnPrior (default: the shipped one). Returns whether it was set."""
    from trainer import drawn_prior
    from trainer.inputs import IMAGE_INPUT

    reading, projection = model.get_layer(DRAWN_PRIOR_LAYER), model.get_layer("emoji_projection")
    distance, ramp = model.get_layer("emoji_distance"), model.get_layer("emoji_ramp")
    prior = prior if prior is not None else drawn_prior.load()
    image_size = next(int(tensor.shape[1]) for tensor in model.inputs
                      if tensor.name == IMAGE_INPUT)
    fits = (drawn_prior.applies(class_names) and image_size == prior.image_size
            and prior.kernel.shape == reading.get_weights()[0].shape
            and prior.projection.shape == projection.get_weights()[0].shape)
    if not fits:
        for layer in (reading, projection, distance, ramp):
            layer.set_weights([np.zeros_like(weight) for weight in layer.get_weights()])
        return False
    components = prior.projection.shape[1]
    reading.set_weights([prior.kernel, prior.bias])
    projection.set_weights([prior.projection, prior.projection_bias])
    distance.set_weights([np.full((components, 1), 1 / components, np.float32)])
    ramp.set_weights(ramp_weights(prior.likely_within, RECIPES["pretrained-faces"].familiar_span))
    return True


def fit_familiarity(model, train_images: np.ndarray, validation_images: np.ndarray,
                    train_faces: dict | None = None, reviewed_drawings: int = 0) -> None:
    """Familiarity's standardisation and projection from the training images' style statistics
    (whitened principal components), and its ramp from the validation images' distances: 1 up
    to the recipe's quantile of them, 0 from its span times that. A drawn face with flat fills
    stays unfamiliar (trainer.model.drawing_familiarity) unless most of the training images
    are drawn faces, by `train_faces` (trainer.faces.face_inputs of `train_images`, found here
    when not given), or `reviewed_drawings` (drawn faces among the reviewed images trained on)
    reach the recipe's reviewed_drawings_learned."""
    from trainer.faces import face_inputs
    from trainer.inputs import IMAGE_INPUT

    recipe = RECIPES["pretrained-faces"]
    drawn = (face_inputs(train_images) if train_faces is None else train_faces)[DRAWN_INPUT]
    learned = (len(drawn) > 0 and np.mean(drawn) >= recipe.drawings_familiar
               or reviewed_drawings >= recipe.reviewed_drawings_learned)
    model.get_layer(FLAT_DRAWING_GATE).scale = 0.0 if learned else 1.0
    style_of = layer_runner(model, [IMAGE_INPUT], STYLE_LAYER)
    style = style_of(train_images)
    standardise = model.get_layer("style_standardisation")
    standardise.adapt(style)
    # A statistic the training images barely vary in (a channel that is almost always zero)
    # would divide rounding by almost nothing: its spread is floored at a tenth of the median's.
    mean, variance, *rest = standardise.get_weights()
    floor = (SPREAD_FLOOR ** 2) * float(np.median(variance))
    standardise.set_weights([mean, np.maximum(variance, floor).astype(variance.dtype), *rest])
    standardise.finalize_state()
    centred = np.asarray(standardise(style), np.float64)
    centred -= centred.mean(axis=0)
    _, singular, directions = np.linalg.svd(centred, full_matrices=False)
    projection = model.get_layer("style_projection")
    width = projection.get_weights()[0].shape[1]
    kept = int(min(width, np.sum(singular > 1e-6 * max(singular.max(initial=0), 1e-12))))
    kernel = np.zeros((centred.shape[1], width))
    # Each component's spread, floored at a tenth of a standardised feature's own: a direction
    # the training images barely vary in would otherwise turn rounding into distance.
    spread = np.sqrt(singular[:kept] ** 2 / max(len(centred) - 1, 1) + SPREAD_FLOOR ** 2)
    kernel[:, :kept] = (directions[:kept] / spread[:, None]).T
    projection.set_weights([kernel.astype(np.float32)])
    averaging = np.zeros((width, 1), np.float32)
    averaging[:kept] = 1 / max(kept, 1)
    model.get_layer("style_distance").set_weights([averaging])
    distance_of = layer_runner(model, [IMAGE_INPUT], "style_distance")
    distances = distance_of(validation_images if len(validation_images) else train_images)
    near = max(float(np.quantile(distances, recipe.familiar_quantile)), 1e-6)
    model.get_layer("familiarity_ramp").set_weights(ramp_weights(near, recipe.familiar_span))


def ramp_weights(near: float, span: float) -> list[np.ndarray]:
    """[kernel, bias] of a Dense(1) that, clipped to [0, 1], is 1 up to the distance `near` and
    0 from `span` times it: familiarity's ramp, and the drawn prior's likeness."""
    far = near * span
    return [np.full((1, 1), -1 / (far - near), np.float32),
            np.full(1, far / (far - near), np.float32)]


def fit_temperature_layer(model, images: np.ndarray, labels: np.ndarray) -> float:
    """Set the model's temperature from its scores on these (validation) images: those it
    scales, beside those added after it (an unfamiliar image's face)."""
    import keras

    from trainer.calibration import fit_temperature
    from trainer.faces import model_batch

    names = [tensor.name for tensor in model.inputs]
    temperature = model.get_layer("temperature")
    units = temperature.input.shape[-1]
    both = keras.layers.Concatenate()(  # one pass over the images for both
        [temperature.input, model.get_layer("unfamiliar_face_logits").output])
    batch = model_batch(model, images)
    # (an image read by several faces, a sticker sheet, by the mean of their scores)
    scores = batch.per_image(tensor_runner(model, names, both)(
        *[batch.inputs[name] for name in names]))
    # Softening only: a validation split of a few dozen images that the model happens to get
    # all right asks for ever sharper scores, which drawings then pay for (docs/research.md).
    fitted = fit_temperature(scores[:, :units], labels, lowest=1.0, offset=scores[:, units:])
    temperature.scale = 1 / fitted
    return fitted
