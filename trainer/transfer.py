"""Training a pretrained architecture: the backbone is frozen, so its features are computed once
per training image (and once for its mirror image: a face's mood survives a flip) and only the
linear head is fitted on them, every epoch a full batch, in seconds rather than an epoch of the
backbone each time. What is saved is the whole graph: backbone, feature standardisation, head.
"""

import numpy as np

from trainer.model import FEATURES_LAYER, RECIPES


def backbone_features(model, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """The frozen backbone's pooled features of `images` (the model's float input)."""
    import keras
    import tensorflow as tf

    features = keras.Model(model.input, model.get_layer(FEATURES_LAYER).output)
    signature = [tf.TensorSpec((None, *images.shape[1:]), tf.float32)]  # traced once
    run = tf.function(lambda batch: features(batch, training=False), input_signature=signature)
    chunks = [np.asarray(run(images[start:start + batch_size]))
              for start in range(0, len(images), batch_size)]
    return np.concatenate(chunks) if chunks else np.zeros((0, features.output.shape[-1]))


def fit_head(model, data, split, params, callbacks: list):
    """Fit `model`'s head on its backbone's features of the training split; returns the Keras
    History of the head's epochs (validated on the validation split, as the other recipes)."""
    import keras

    from trainer.model import output_units
    from trainer.train import class_weights

    recipe = RECIPES[params.architecture]
    class_count = len(data.class_names)
    images, labels = data.images[split.train], data.labels[split.train]
    train_features = backbone_features(model, images)
    if params.augment:
        train_features = np.concatenate([train_features,
                                         backbone_features(model, images[:, :, ::-1])])
        labels = np.concatenate([labels, labels])
    standardise = model.get_layer("feature_standardisation")
    standardise.adapt(train_features)
    validation = standardise(backbone_features(model, data.images[split.validation]))

    output = model.get_layer("class_probabilities")
    head = keras.Sequential([
        keras.Input((train_features.shape[1],)),
        keras.layers.Dense(output_units(class_count), activation=output.activation,
                           kernel_regularizer=keras.regularizers.L2(recipe.head_l2)),
    ])
    binary = class_count == 2
    head.compile(optimizer=keras.optimizers.Adam(params.learning_rate),
                 loss="binary_crossentropy" if binary else "sparse_categorical_crossentropy",
                 metrics=["accuracy"])
    as_targets = (lambda y: y.astype(np.float32)) if binary else (lambda y: y)
    history = head.fit(
        np.asarray(standardise(train_features)), as_targets(labels),
        validation_data=(np.asarray(validation), as_targets(data.labels[split.validation])),
        batch_size=len(labels), epochs=params.epochs, verbose=0, callbacks=callbacks,
        class_weight=class_weights(labels, class_count),
    )
    output.set_weights(head.layers[-1].get_weights())
    return history
