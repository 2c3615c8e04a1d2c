"""Train one model on a labelled source: decode, split, fit (the whole model with its recipe,
early stopping only where it asks for it; or a pretrained backbone's head: trainer.transfer),
evaluate on the held-out test split."""

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from db.errors import InvalidInput
from trainer.dataset import LabelledImages, Split, class_weights, load_labelled_images
from trainer.dataset import stratified_split
from trainer.evaluate import classification_metrics
from trainer.images import DEFAULT_MAX_PIXELS
from trainer.model import ARCHITECTURES, DEFAULT_ARCHITECTURE, RECIPES, build_model
from trainer.model import class_probabilities

EpochCallback = Callable[[int, int, dict], None]


@dataclass
class TrainingParams:
    """What a run is asked for; None means the architecture's recipe decides."""

    architecture: str = DEFAULT_ARCHITECTURE
    epochs: int | None = None
    image_size: int | None = None
    batch_size: int = 32
    seed: int = 0
    augment: bool = True
    learning_rate: float | None = None
    patience: int | None = None

    def resolved(self) -> "TrainingParams":
        if self.architecture not in ARCHITECTURES:
            raise InvalidInput(f"unknown architecture {self.architecture!r}; "
                             f"choose one of {', '.join(ARCHITECTURES)}")
        recipe = RECIPES[self.architecture]
        for name, value in (("epochs", self.epochs), ("image_size", self.image_size),
                            ("batch_size", self.batch_size)):
            if value is not None and value < 1:
                raise InvalidInput(f"{name.replace('_', ' ')} must be at least 1, got {value}")
        if self.image_size is not None and self.image_size < 16:
            raise InvalidInput(f"image size must be at least 16 pixels, got {self.image_size}")
        return TrainingParams(
            architecture=self.architecture,
            epochs=self.epochs or recipe.epochs,
            image_size=self.image_size or recipe.image_size,
            batch_size=self.batch_size, seed=self.seed, augment=self.augment,
            learning_rate=self.learning_rate or recipe.learning_rate,
            patience=self.patience or recipe.patience,
        )


@dataclass
class TrainingResult:
    model: object
    params: TrainingParams
    data: LabelledImages
    split: Split
    metrics: dict
    history: dict[str, list[float]]
    train_seconds: float
    images_per_second: float
    test_probabilities: np.ndarray = field(repr=False, default=None)
    reviewed_images: int = 0  # of the training images, how many are reviewed images

    def params_record(self) -> dict:
        return asdict(self.params) | {"train_images": len(self.split.train),
                                      "reviewed_images": self.reviewed_images,
                                      "validation_images": len(self.split.validation),
                                      "test_images": len(self.split.test),
                                      "epochs_run": len(self.history.get("loss", []))}


AUGMENTATIONS = ("light", "strong")


def augmentation(seed: int, strength: str = "light"):
    """Random changes a photo's mood survives. "light" is the tutorial-era set (flips, small
    rotations and zoom, brightness); "strong" also crops in, shifts and changes contrast, which
    a from-scratch model on a few hundred photos needs so as not to memorise them."""
    import keras
    from keras import layers

    if strength not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {strength!r}; choose one of {AUGMENTATIONS}")
    if strength == "light":
        return keras.Sequential([
            layers.RandomFlip("horizontal", seed=seed),
            layers.RandomRotation(0.05, seed=seed + 1),
            layers.RandomZoom(0.1, seed=seed + 2),
            layers.RandomBrightness(0.1, value_range=(0.0, 255.0), seed=seed + 3),
        ], name="augmentation")
    return keras.Sequential([
        layers.RandomFlip("horizontal", seed=seed),
        layers.RandomRotation(0.08, seed=seed + 1),
        layers.RandomZoom((-0.3, 0.1), seed=seed + 2),  # mostly zoom in: random crops
        layers.RandomTranslation(0.1, 0.1, seed=seed + 3),
        layers.RandomContrast(0.2, seed=seed + 4),
        layers.RandomBrightness(0.1, value_range=(0.0, 255.0), seed=seed + 5),
    ], name="augmentation")


def training_dataset(images: np.ndarray, labels: np.ndarray, params: TrainingParams):
    """tf.data: shuffled, batched, augmented on the fly, prefetched while the model trains."""
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    dataset = dataset.shuffle(len(labels), seed=params.seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(params.batch_size)
    if params.augment:
        augment = augmentation(params.seed, RECIPES[params.architecture].augmentation)
        dataset = dataset.map(lambda x, y: (augment(x, training=True), y),
                              num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def predict_outputs(model, images: np.ndarray, batch_size: int = 64) -> dict[str, np.ndarray]:
    """Every named output of the model for these images, called on batches directly (no
    per-call `predict` overhead); a face-reading model is given the face inputs of each batch
    (trainer.faces.model_batch: a sticker sheet is read by each of its faces, and its outputs
    are their mean). A model with one unnamed output gives it as "class_probabilities"."""
    from trainer.faces import model_batch

    def run(inputs) -> dict:
        outputs = model(inputs, training=False)
        return outputs if isinstance(outputs, dict) else {"class_probabilities": outputs}

    chunks: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(images), batch_size):
        outputs = model_batch(model, images[start:start + batch_size]).outputs(run)
        for name, value in outputs.items():
            chunks.setdefault(name, []).append(np.asarray(value))
    return {name: np.concatenate(values) for name, values in chunks.items()}


def predict_probabilities(model, images: np.ndarray, class_count: int,
                          batch_size: int = 64) -> np.ndarray:
    """(n, class_count) probabilities of the model for these images."""
    outputs = predict_outputs(model, images, batch_size)
    if "class_probabilities" not in outputs:
        return np.zeros((0, class_count))
    return class_probabilities(outputs["class_probabilities"], class_count)


def calibration_record(model, labels: np.ndarray, probabilities: np.ndarray,
                       familiarity: np.ndarray | None) -> dict:
    """How well the test split's confidence matches its accuracy: the expected calibration
    error, the reliability diagram's bins, the model's temperature (1 for a model without
    one) and the test images' mean familiarity (None for a model without it)."""
    from trainer.calibration import expected_calibration_error, reliability_bins

    try:
        temperature = 1 / float(model.get_layer("temperature").scale)
    except ValueError:  # an architecture without a temperature
        temperature = 1.0
    return {"ece": expected_calibration_error(probabilities, labels),
            "reliability": reliability_bins(probabilities, labels),
            "temperature": temperature,
            "mean_familiarity": None if familiarity is None else float(np.mean(familiarity))}


def compile_model(model, params: TrainingParams, class_count: int, steps_per_epoch: int) -> None:
    """Optimizer and loss from the architecture's recipe."""
    import keras

    recipe = RECIPES[params.architecture]
    learning_rate = params.learning_rate
    if recipe.cosine_decay:  # large steps early, fine ones late, without a schedule to tune
        learning_rate = keras.optimizers.schedules.CosineDecay(
            learning_rate, decay_steps=params.epochs * steps_per_epoch)
    optimizer = (keras.optimizers.AdamW(learning_rate, weight_decay=recipe.weight_decay)
                 if recipe.weight_decay else keras.optimizers.Adam(learning_rate))
    if class_count == 2:  # label smoothing: web photos' labels are themselves uncertain
        loss = keras.losses.BinaryCrossentropy(label_smoothing=recipe.label_smoothing)
    else:  # Keras's sparse loss has no smoothing; the labels would have to be one-hot
        loss = keras.losses.SparseCategoricalCrossentropy()
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])


def fit_whole_model(model, data: LabelledImages, split: Split, params: TrainingParams,
                    callbacks: list):
    """Every layer trained on the augmented training split; returns Keras's History."""
    class_count = len(data.class_names)
    compile_model(model, params, class_count,
                  steps_per_epoch=math.ceil(len(split.train) / params.batch_size))
    train_labels = data.labels[split.train]
    labels_for_loss = (lambda y: y.astype(np.float32)) if class_count == 2 else (lambda y: y)
    return model.fit(
        training_dataset(data.images[split.train], labels_for_loss(train_labels), params),
        validation_data=(data.images[split.validation],
                         labels_for_loss(data.labels[split.validation])),
        epochs=params.epochs, callbacks=callbacks, verbose=0, shuffle=False,
        class_weight=class_weights(train_labels, class_count),
    )


def train(source: str, params: TrainingParams, log_dir: Path | None = None,
          on_epoch: EpochCallback | None = None, corrections: list | None = None,
          max_pixels: int = DEFAULT_MAX_PIXELS) -> TrainingResult:
    """Decode the source, split it 70/20/10, fit, and evaluate on the test split. Images over
    `max_pixels` are refused, as workers refuse them (the caller's HAPPYSAD_MAX_IMAGE_PIXELS).

    `corrections` (trainer.corrections.Correction: reviewed images) join the training split
    only; the validation and test splits are the source's, as without them.
    """
    from trainer.corrections import add_to_training

    params = params.resolved()
    data = load_labelled_images(source, params.image_size, max_pixels)
    split = stratified_split(data.labels, params.seed)
    reviewed = add_to_training(data, split, corrections, params.image_size) if corrections else 0

    import keras

    keras.utils.set_random_seed(params.seed)
    class_count = len(data.class_names)
    model = build_model(params.architecture, params.image_size, class_count)
    callbacks = []
    if params.patience:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=params.patience, restore_best_weights=True))
    if log_dir is not None:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(log_dir)))
    if on_epoch is not None:
        callbacks.append(keras.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs: on_epoch(epoch + 1, params.epochs, dict(logs or {}))))

    started = time.perf_counter()
    if RECIPES[params.architecture].frozen_backbone:
        from trainer.transfer import fit_head

        history = fit_head(model, data, split, params, callbacks)
    else:
        history = fit_whole_model(model, data, split, params, callbacks)
    train_seconds = time.perf_counter() - started
    epochs_run = len(history.history.get("loss", []))

    test_outputs = predict_outputs(model, data.images[split.test])
    test_probabilities = class_probabilities(test_outputs["class_probabilities"], class_count)
    metrics = classification_metrics(data.labels[split.test], test_probabilities, data.class_names)
    metrics["calibration"] = calibration_record(model, data.labels[split.test], test_probabilities,
                                                test_outputs.get("familiarity"))
    return TrainingResult(
        model=model, params=params, data=data, split=split, metrics=metrics,
        history={key: [float(v) for v in values] for key, values in history.history.items()},
        train_seconds=train_seconds,
        images_per_second=len(split.train) * epochs_run / train_seconds if train_seconds else 0.0,
        test_probabilities=test_probabilities, reviewed_images=reviewed,
    )
