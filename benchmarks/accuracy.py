"""Accuracy on photos never seen: train on one labelled folder, classify another, side by side.

For each architecture and seed: `trainer.train.train()` on the training folder, then every image
of the test folder goes through the one decode path (`trainer.images.decode_image`, via the
dataset loader) at the model's image size and through `predict_probabilities`, and is scored
with `classification_metrics` against the test folder's class sub-folders. Prints a JSON
document (per-seed runs, per-architecture mean and standard deviation) and a Markdown table.

    python -m benchmarks.accuracy --train /work/shared/datasets/seed-photos \
        --test /work/shared/datasets/more-photos --seeds 0 1 2 --architectures baseline improved

Both folders are only read. Training runs under a temporary HAPPYSAD_HOME.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile

import numpy as np

METRICS = ("accuracy", "precision", "recall")


def labelled_test_images(folder: str, image_size: int, class_names: list[str]):
    """(images, labels in the model's class order, skipped) for a folder labelled like training."""
    from trainer.dataset import load_labelled_images

    data = load_labelled_images(folder, image_size)
    unknown = set(data.class_names) - set(class_names)
    if unknown:
        raise ValueError(f"{folder} has classes the model does not know: {sorted(unknown)}")
    remap = np.array([class_names.index(name) for name in data.class_names])
    return data.images, remap[data.labels], data.skipped


def run_once(train_folder: str, test_folder: str, architecture: str, seed: int,
             epochs: int | None, test_cache: dict) -> dict:
    """Train one model and score it on the test folder."""
    from trainer.evaluate import classification_metrics
    from trainer.train import TrainingParams, predict_probabilities, train

    result = train(train_folder, TrainingParams(architecture=architecture, seed=seed,
                                                epochs=epochs))
    class_names = result.data.class_names
    size = result.params.image_size
    if size not in test_cache:  # decoding depends only on the size: do it once per size
        test_cache[size] = labelled_test_images(test_folder, size, class_names)
    images, labels, skipped = test_cache[size]
    probabilities = predict_probabilities(result.model, images, len(class_names))
    metrics = classification_metrics(labels, probabilities, class_names)
    return {"architecture": architecture, "seed": seed, "image_size": size,
            "epochs_run": len(result.history.get("loss", [])),
            "train_seconds": round(result.train_seconds, 1),
            "held_out_split_accuracy": result.metrics["accuracy"],
            "test_images": metrics["count"], "test_skipped": len(skipped),
            "positive_class": class_names[1],
            **{name: metrics[name] for name in METRICS},
            "confusion_matrix": metrics["confusion_matrix"]}


def summarize(runs: list[dict]) -> dict:
    """Mean and (sample) standard deviation per architecture."""
    summary = {}
    for architecture in dict.fromkeys(run["architecture"] for run in runs):
        mine = [run for run in runs if run["architecture"] == architecture]
        entry = {"seeds": len(mine), "train_seconds_mean":
                 round(statistics.mean(run["train_seconds"] for run in mine), 1)}
        for name in METRICS:
            values = [run[name] for run in mine]
            entry[f"{name}_mean"] = statistics.mean(values)
            entry[f"{name}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        summary[architecture] = entry
    return summary


def markdown_table(summary: dict) -> str:
    lines = ["| architecture | accuracy | precision | recall | train s/run |",
             "| --- | --- | --- | --- | --- |"]
    for architecture, entry in summary.items():
        cells = [f"{100 * entry[f'{n}_mean']:.1f} ± {100 * entry[f'{n}_std']:.1f}%"
                 for n in METRICS]
        lines.append(f"| {architecture} | {' | '.join(cells)} | "
                     f"{entry['train_seconds_mean']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", required=True, help="labelled folder to train on")
    parser.add_argument("--test", required=True, help="labelled folder never seen in training")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--architectures", nargs="+", default=["baseline", "improved"])
    parser.add_argument("--epochs", type=int, default=None,
                        help="override every recipe's epochs (default: each recipe's own)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="happysad-accuracy-") as home:
        os.environ["HAPPYSAD_HOME"] = home  # nothing the run writes lands in the project
        runs, test_cache = [], {}
        for architecture in args.architectures:
            for seed in args.seeds:
                run = run_once(args.train, args.test, architecture, seed, args.epochs,
                               test_cache)
                print(json.dumps(run), file=sys.stderr, flush=True)  # progress, one per run
                runs.append(run)
    summary = summarize(runs)
    print(json.dumps({"train": args.train, "test": args.test, "seeds": args.seeds,
                      "runs": runs, "summary": summary}, indent=2))
    print()
    print(markdown_table(summary))


if __name__ == "__main__":
    main()
