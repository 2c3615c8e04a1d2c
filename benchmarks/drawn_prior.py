"""Fits trainer/data/drawn_prior.npz, trainer.drawn_prior's reading of drawn happy and sad faces,
on labelled happy/sad folders of drawn faces (benchmarks.emoji_styles draws them from the
packages; docs/research.md gives the commands): the default model's backbone features of each
image, at its size; a logistic regression on them, standardised, solved to its optimum
(trainer.transfer.fit_converged) and folded into one layer; and how like those emoji an image
is, as familiarity measures it (a distance in the whitened principal components of their
standardised features, 1 up to the distance most of them are within).

    python -m benchmarks.drawn_prior trainer/data/drawn_prior.npz FOLDER [FOLDER ...]
"""

import argparse
from pathlib import Path

import numpy as np

from trainer.drawn_prior import applies

L2 = 1.0  # of 0.3, 1, 3 and 10, 1 read held-out source styles best (docs/research.md)
VARIANCE_FLOOR = 1e-4  # a feature that barely varies over the emoji is not blown up elsewhere


def standardisation(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, scale) of each feature, its variance floored at VARIANCE_FLOOR."""
    return features.mean(axis=0), np.sqrt(features.var(axis=0) + VARIANCE_FLOOR)


def fit(features: np.ndarray, labels: np.ndarray, l2: float = L2) -> tuple[np.ndarray,
                                                                           np.ndarray]:
    """(kernel, bias) on raw features: a logistic regression on the standardised features
    (fit_converged's objective, solved to its optimum), folded back so one Dense layer on the
    backbone's features gives its logit (of "sad")."""
    from trainer.transfer import fit_converged

    features = np.asarray(features, np.float64)
    mean, scale = standardisation(features)
    kernel, bias = fit_converged((features - mean) / scale, np.asarray(labels), 2, l2)
    kernel = kernel.astype(np.float64) / scale[:, None]
    return kernel.astype(np.float32), (bias - mean @ kernel).astype(np.float32)


def likeness(features: np.ndarray, components: int, quantile: float):
    """(projection kernel (features, components), its bias (components,), the distance
    `quantile` of the images are within): the mean squared projection of an image's features
    is its distance from these, in their first `components` whitened principal components of
    the standardised features (folded into the one projection)."""
    features = np.asarray(features, np.float64)
    mean, scale = standardisation(features)
    standard = (features - mean) / scale
    _, spreads, axes = np.linalg.svd(standard, full_matrices=False)
    projection = axes[:components].T / (spreads[:components] / np.sqrt(len(standard)))
    kernel = projection / scale[:, None]
    bias = -(mean / scale) @ projection
    distances = np.mean((features @ kernel + bias) ** 2, axis=1)
    return (kernel.astype(np.float32), bias.astype(np.float32),
            float(np.quantile(distances, quantile)))


def folder_features(folders: list[str], backbone: str, image_size: int):
    """The backbone's features of every image of labelled happy/sad folders, and their labels
    (1 for sad), decoded as training decodes them."""
    from trainer.dataset import DatasetError, load_labelled_images
    from trainer.inputs import IMAGE_INPUT
    from trainer.model import FEATURES_LAYER, build_pretrained
    from trainer.transfer import layer_runner

    model = build_pretrained(image_size, 2, backbone)
    features_of = layer_runner(model, [IMAGE_INPUT], FEATURES_LAYER)
    features, labels = [], []
    for folder in folders:
        data = load_labelled_images(folder, image_size)
        if not applies(data.class_names):
            raise DatasetError(f"{folder} must hold exactly the classes happy and sad, "
                               f"found {', '.join(data.class_names)}")
        features.append(features_of(data.images))
        labels.append(data.labels)
    return np.concatenate(features), np.concatenate(labels)


def main(argv: list[str] | None = None) -> None:
    from trainer.model import PRETRAINED_BACKBONE, RECIPES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the .npz to write")
    parser.add_argument("folders", nargs="+", help="labelled happy/sad folders of drawn faces")
    args = parser.parse_args(argv)
    recipe = RECIPES["pretrained-faces"]
    image_size = recipe.image_size
    features, labels = folder_features(args.folders, PRETRAINED_BACKBONE, image_size)
    kernel, bias = fit(features, labels)
    projection, projection_bias, within = likeness(features, recipe.familiarity_components,
                                                   recipe.familiar_quantile)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, backbone=PRETRAINED_BACKBONE, image_size=image_size, kernel=kernel,
             bias=bias, projection=projection, projection_bias=projection_bias,
             likely_within=within,
             sources=np.array([Path(folder).name for folder in args.folders]))
    print(f"{args.out}: fitted on {len(labels)} images of {len(args.folders)} folders")


if __name__ == "__main__":
    main()
