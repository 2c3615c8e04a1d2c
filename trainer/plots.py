"""Training plots as pure matplotlib Figures (Agg canvas, no global pyplot state)."""

import io

import numpy as np
from matplotlib.figure import Figure


def figure_png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def sample_grid(images: np.ndarray, captions: list[str], columns: int = 4) -> Figure:
    """A grid of images with a caption each (the tutorial's first look at the data)."""
    count = len(images)
    rows = max(1, -(-count // columns))
    figure = Figure(figsize=(3 * columns, 3 * rows))
    for index in range(count):
        axes = figure.add_subplot(rows, columns, index + 1)
        axes.imshow(np.clip(images[index], 0, 255).astype(np.uint8))  # model input: [0, 255]
        axes.set_title(captions[index], fontsize=9)
        axes.axis("off")
    return figure


def history_curves(history: dict[str, list[float]]) -> Figure:
    """Loss and accuracy per epoch, train against validation."""
    figure = Figure(figsize=(11, 4))
    for position, metric in enumerate(("loss", "accuracy"), start=1):
        axes = figure.add_subplot(1, 2, position)
        epochs = range(1, len(history.get(metric, [])) + 1)
        axes.plot(epochs, history.get(metric, []), color="teal", label=f"train {metric}")
        axes.plot(epochs, history.get(f"val_{metric}", []), color="orange",
                  label=f"validation {metric}")
        axes.set_xlabel("epoch")
        axes.set_title(metric.capitalize())
        axes.legend(loc="best")
    return figure


def confusion_matrix_plot(matrix: list[list[int]], class_names: list[str]) -> Figure:
    figure = Figure(figsize=(1.6 * len(class_names) + 2.5, 1.6 * len(class_names) + 2))
    axes = figure.add_subplot(1, 1, 1)
    values = np.asarray(matrix)
    axes.imshow(values, cmap="Blues")
    axes.set_xticks(range(len(class_names)), class_names)
    axes.set_yticks(range(len(class_names)), class_names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    threshold = values.max() / 2 if values.size else 0
    for (row, column), value in np.ndenumerate(values):
        axes.text(column, row, str(value), ha="center", va="center",
                  color="white" if value > threshold else "black")
    axes.set_title("Confusion matrix (test split)")
    return figure


def reliability_diagram(bins: list[dict], ece: float) -> Figure:
    """Accuracy against confidence per bin (trainer.calibration.reliability_bins), with the
    diagonal a calibrated model follows and each bin's count."""
    figure = Figure(figsize=(5, 4.5))
    axes = figure.add_subplot(1, 1, 1)
    filled = [row for row in bins if row["count"]]
    low = bins[0]["low"] if bins else 0.5
    axes.plot([low, 1], [low, 1], color="grey", linestyle="--", label="calibrated")
    axes.bar([(row["low"] + row["high"]) / 2 for row in filled],
             [row["accuracy"] for row in filled],
             width=[0.9 * (row["high"] - row["low"]) for row in filled], color="teal",
             alpha=0.7, label="accuracy")
    axes.plot([row["confidence"] for row in filled], [row["accuracy"] for row in filled], "o",
              color="orange", label="mean confidence")
    for row in filled:
        axes.text((row["low"] + row["high"]) / 2, 0.02, str(row["count"]), ha="center",
                  fontsize=8)
    axes.set_xlim(low, 1)
    axes.set_ylim(0, 1.02)
    axes.set_xlabel("confidence")
    axes.set_ylabel("accuracy")
    axes.set_title(f"Reliability (test split), ECE {100 * ece:.1f} points")
    axes.legend(loc="upper left")
    return figure
