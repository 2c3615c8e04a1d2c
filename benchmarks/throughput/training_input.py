"""Training input: the tutorial's image_dataset_from_directory against the project's pipeline,
same data and model, images/s per epoch."""

import time
from pathlib import Path

import numpy as np

from benchmarks.throughput.common import IMAGE_SIZE


def fit_epochs(dataset, images: int, epochs: int, extra_first_epoch: float = 0.0) -> list[float]:
    """Images/s of each epoch of the baseline model on `dataset` (same seed every time)."""
    import keras

    from trainer.model import build_model

    keras.utils.set_random_seed(0)
    model = build_model("baseline", IMAGE_SIZE, 2)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    marks = []
    timer = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda *_: marks.append(time.perf_counter()),
        on_epoch_end=lambda *_: marks.append(time.perf_counter()))
    model.fit(dataset, epochs=epochs, verbose=0, callbacks=[timer], shuffle=False)
    seconds = [end - begin for begin, end in zip(marks[::2], marks[1::2])]
    seconds[0] += extra_first_epoch  # a pipeline that decodes up front pays for it in epoch 1
    return [round(images / s, 1) for s in seconds]


def training_input(folder: Path, epochs: int) -> dict:
    """The tutorial's input pipeline against the project's, on the same images and model."""
    import keras

    from trainer.dataset import load_labelled_images
    from trainer.train import TrainingParams, training_dataset

    tutorial = keras.utils.image_dataset_from_directory(
        str(folder), image_size=(IMAGE_SIZE, IMAGE_SIZE), batch_size=32, seed=0, verbose=False)
    tutorial = tutorial.map(lambda x, y: (x / 255, y))  # decodes every file, every epoch
    started = time.perf_counter()
    data = load_labelled_images(str(folder), IMAGE_SIZE)  # parallel decode, kept in memory
    decode_seconds = time.perf_counter() - started
    params = TrainingParams(architecture="baseline", image_size=IMAGE_SIZE,
                            augment=False).resolved()
    project = training_dataset(data.images, data.labels.astype(np.float32), params)
    images = len(data.labels)
    return {"images": images, "epochs": epochs, "model": "baseline", "batch_size": 32,
            "tutorial_image_dataset_from_directory_images_per_second":
                fit_epochs(tutorial, images, epochs),
            "project_pipeline_images_per_second":
                fit_epochs(project, images, epochs, extra_first_epoch=decode_seconds),
            "project_decode_seconds": round(decode_seconds, 2)}
