"""Training a pretrained architecture: the backbone is frozen, so its features are computed once
per training image (and once for its mirror image: a face's mood survives a flip) and only the
linear head is fitted on them, every epoch a full batch, in seconds rather than an epoch of the
backbone each time. A face-reading model's expression scores are computed once the same way,
from the face crops of trainer.faces (mirrored with their image). What is saved is the whole
graph: backbone, expression network, feature standardisation, head.
"""

import numpy as np

from trainer.model import FACE_FEATURES_LAYER, FEATURES_LAYER, RECIPES


def layer_runner(model, input_names: list[str], layer_name: str, batch_size: int = 32):
    """A function: arrays for `model`'s named inputs -> its layer `layer_name`'s output, computed
    in batches by one graph, traced once however often it is called."""
    import keras
    import tensorflow as tf

    part = keras.Model([model.get_layer(name).output for name in input_names],
                       model.get_layer(layer_name).output)
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


def face_features(run, images: np.ndarray, mirrored: bool = False) -> np.ndarray:
    """A face-reading model's face features (expression scores, zero without a face, and the
    found flag) of `images` through `run` (its layer_runner), from the crops serving will make;
    `mirrored`: followed by those of the crops' mirror images, which the mirrored photos give."""
    from trainer.faces import face_inputs

    faces, found = face_inputs(np.asarray(images).astype(np.uint8))
    if mirrored:
        faces = np.concatenate([faces, faces[:, :, ::-1]])
        found = np.concatenate([found, found])
    return run(faces, found)


def fit_head(model, data, split, params, callbacks: list):
    """Fit `model`'s head on its backbone's features of the training split; returns the Keras
    History of the head's epochs (validated on the validation split, as the other recipes)."""
    import keras

    from trainer.faces import IMAGE_INPUT, reads_faces
    from trainer.model import output_units
    from trainer.dataset import class_weights

    recipe = RECIPES[params.architecture]
    class_count = len(data.class_names)
    images, labels = data.images[split.train], data.labels[split.train]
    validation_images = data.images[split.validation]
    image_features = layer_runner(model, [IMAGE_INPUT], FEATURES_LAYER)
    train_features = image_features(images)
    if params.augment:
        train_features = np.concatenate([train_features, image_features(images[:, :, ::-1])])
        labels = np.concatenate([labels, labels])
    standardise = model.get_layer("feature_standardisation")
    standardise.adapt(train_features)
    train_inputs = np.asarray(standardise(train_features))
    validation = np.asarray(standardise(image_features(validation_images)))
    if reads_faces(model):
        from trainer.faces import FACE_INPUT, FOUND_INPUT

        faces_run = layer_runner(model, [FACE_INPUT, FOUND_INPUT], FACE_FEATURES_LAYER)
        train_faces = face_features(faces_run, images, mirrored=params.augment)
        standardise_faces = model.get_layer("face_standardisation")
        standardise_faces.adapt(train_faces)
        weigh = model.get_layer("face_weight")

        def with_faces(image_part, face_part):
            return np.concatenate([image_part, np.asarray(weigh(standardise_faces(face_part)))],
                                  axis=1)

        train_inputs = with_faces(train_inputs, train_faces)
        validation = with_faces(validation, face_features(faces_run, validation_images))

    output = model.get_layer("class_probabilities")
    head = keras.Sequential([
        keras.Input((train_inputs.shape[1],)),
        keras.layers.Dense(output_units(class_count), activation=output.activation,
                           kernel_regularizer=keras.regularizers.L2(recipe.head_l2)),
    ])
    binary = class_count == 2
    head.compile(optimizer=keras.optimizers.Adam(params.learning_rate),
                 loss="binary_crossentropy" if binary else "sparse_categorical_crossentropy",
                 metrics=["accuracy"])
    as_targets = (lambda y: y.astype(np.float32)) if binary else (lambda y: y)
    history = head.fit(
        train_inputs, as_targets(labels),
        validation_data=(validation, as_targets(data.labels[split.validation])),
        batch_size=len(labels), epochs=params.epochs, verbose=0, callbacks=callbacks,
        class_weight=class_weights(labels, class_count),
    )
    output.set_weights(head.layers[-1].get_weights())
    return history
