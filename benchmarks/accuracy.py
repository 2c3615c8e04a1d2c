"""Accuracy on photos never seen: train on one labelled folder, classify others through the
real pipeline, side by side, in several directions.

For each architecture, seed and training folder: `trainer.train.train()` on the folder, the
model registered as a version, then each test folder submitted as a job pinned to that version
and labelled by real Celery workers on the embedded queue (the same decode, engine and SQL rows
a user gets), and each row scored against its image's class sub-folder. Prints a JSON document
(per-run figures; per direction and architecture, mean and standard deviation over seeds, the
training time and the end-to-end labelling rate), with, for trust, the expected calibration
error, the accuracy and share of labels given with confidence >= 0.9 and the mean familiarity,
and a Markdown table.

    python -m benchmarks.accuracy --seeds 0 1 2 --architectures pretrained-faces pretrained

By default the directions are every one among the three photo sets of ../shared/datasets/ and
from each of them to emoji-glyphs/; `--direction TRAIN=TEST` (repeatable) names others; `--datasets` is where relative names are looked up. The folders are only read. Everything runs under a temporary HAPPYSAD_HOME.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from trainer.model import ARCHITECTURES, DEFAULT_ARCHITECTURE

METRICS = ("accuracy", "precision", "recall")


def label_through_workers(test_folder: str, version: int, class_names: list[str], workers):
    """Submit the folder as a job pinned to `version`, wait for the workers, and return (true
    class indices, probabilities, familiarities (None for a model without), images that
    failed) for its rows."""
    from db import queries
    from db.session import session_scope
    from db.settings import get_settings
    from scheduler.submit import submit_source

    submission = submit_source(test_folder, model_version=version, settings=get_settings(),
                               sessions=session_scope)
    while True:
        with session_scope() as session:
            if queries.get_job(session, submission.job_id).status == "done":
                rows = [(row.uri, row.probabilities, row.error, row.familiarity) for row in
                        queries.iter_predictions(session, submission.job_id)]
                break
        if workers.poll() is not None:
            raise RuntimeError("the workers stopped: see worker.log in the run's HAPPYSAD_HOME")
        time.sleep(0.5)
    root = Path(submission.source)
    truth, probabilities, familiarities, failed = [], [], [], 0
    for uri, class_probabilities, error, familiarity in rows:
        true_class = Path(uri).relative_to(root).parts[0]
        if true_class not in class_names:
            raise ValueError(f"{test_folder} has a class the model does not know: {true_class}")
        if error:
            failed += 1
            continue
        truth.append(class_names.index(true_class))
        probabilities.append([class_probabilities[name] for name in class_names])
        familiarities.append(familiarity)
    return np.array(truth), np.array(probabilities), familiarities, failed


CONFIDENT = 0.9  # the "sure" labels a user would keep


def trust_metrics(truth: np.ndarray, probabilities: np.ndarray, familiarities: list) -> dict:
    """Whether confidence means what it says: the expected calibration error, and the accuracy
    and share of the labels given with confidence >= CONFIDENT; the mean familiarity."""
    from trainer.calibration import expected_calibration_error

    confident = probabilities.max(axis=1) >= CONFIDENT
    right = probabilities.argmax(axis=1) == truth
    known = [value for value in familiarities if value is not None]
    return {"ece": expected_calibration_error(probabilities, truth),
            "confident_accuracy": float(right[confident].mean()) if confident.any() else None,
            "confident_share": float(confident.mean()) if len(truth) else 0.0,
            "mean_familiarity": float(np.mean(known)) if known else None}


def run_once(train_folder: str, test_folders: list[str], architecture: str, seed: int,
             epochs: int | None, workers) -> list[dict]:
    """Train one model, register it, and score it on each test folder through the workers."""
    from db.session import session_scope
    from db.settings import get_settings
    from trainer.evaluate import classification_metrics
    from trainer.registry import register
    from trainer.train import TrainingParams, train

    result = train(train_folder, TrainingParams(architecture=architecture, seed=seed,
                                                epochs=epochs))
    class_names = result.data.class_names
    version = register(result, promote="never", settings=get_settings(),
                       sessions=session_scope).version
    runs = []
    for test_folder in test_folders:
        started = time.perf_counter()
        truth, probabilities, familiarities, failed = label_through_workers(
            test_folder, version, class_names, workers)
        seconds = time.perf_counter() - started
        metrics = classification_metrics(truth, probabilities, class_names)
        runs.append({
            "direction": f"{Path(train_folder).name} -> {Path(test_folder).name}",
            "architecture": architecture, "seed": seed, "model_version": version,
            "image_size": result.params.image_size,
            "epochs_run": len(result.history.get("loss", [])),
            "train_seconds": round(result.train_seconds, 1),
            "held_out_split_accuracy": result.metrics["accuracy"],
            "test_images": metrics["count"], "test_failed": failed,
            # submit to last row, the workers' model load for the new version included
            "labelling_images_per_second": round((metrics["count"] + failed) / seconds, 1),
            "positive_class": class_names[1],
            **{name: metrics[name] for name in METRICS},
            **trust_metrics(truth, probabilities, familiarities),
            "confusion_matrix": metrics["confusion_matrix"]})
    return runs


def summarize(runs: list[dict]) -> dict:
    """Per direction and architecture: mean and (sample) standard deviation over seeds."""
    summary = {}
    for key in dict.fromkeys((run["direction"], run["architecture"]) for run in runs):
        mine = [run for run in runs if (run["direction"], run["architecture"]) == key]
        entry = {"direction": key[0], "architecture": key[1], "seeds": len(mine)}
        for name in (*METRICS, *TRUST, "train_seconds", "labelling_images_per_second"):
            values = [run[name] for run in mine if run[name] is not None]
            if not values:
                continue
            entry[f"{name}_mean"] = statistics.mean(values)
            entry[f"{name}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        summary[" | ".join(key)] = entry
    return summary


TRUST = ("ece", "confident_accuracy", "confident_share", "mean_familiarity")


def markdown_table(summary: dict) -> str:
    lines = ["| direction | architecture | accuracy | precision | recall | ECE "
             f"| accuracy at >= {CONFIDENT} | share at >= {CONFIDENT} | mean familiarity "
             "| train s/run | labelling images/s |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for entry in summary.values():
        cells = [f"{100 * entry[f'{n}_mean']:.1f} ± {100 * entry[f'{n}_std']:.1f}%"
                 if f"{n}_mean" in entry else "-" for n in (*METRICS, *TRUST)]
        lines.append(f"| {entry['direction']} | {entry['architecture']} | {' | '.join(cells)} "
                     f"| {entry['train_seconds_mean']:.0f} "
                     f"| {entry['labelling_images_per_second_mean']:.0f} |")
    return "\n".join(lines)


PHOTO_SETS = ("seed-photos", "more-photos", "extra-photos")
# Every direction among the photo sets, and from each to the emoji: another domain.
DEFAULT_DIRECTIONS = tuple(f"{train}={test}" for train in PHOTO_SETS
                           for test in (*PHOTO_SETS, "emoji-glyphs") if test != train)


def directions_by_training_folder(directions: list[str], datasets: str) -> dict[str, list[str]]:
    """TRAIN=TEST pairs (relative names are under ../shared/datasets/) grouped by training
    folder, so each model is trained once and judged on every folder it is paired with."""
    grouped: dict[str, list[str]] = {}
    for direction in directions:
        train, _, test = direction.partition("=")
        if not test:
            raise SystemExit(f"--direction wants TRAIN=TEST, got {direction!r}")
        train, test = (folder if "://" in folder or os.sep in folder
                       else os.path.join(datasets, folder) for folder in (train, test))
        grouped.setdefault(train if "://" in train else os.path.abspath(train), []).append(
            test if "://" in test else os.path.abspath(test))
    return grouped


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--direction", action="append", dest="directions",
                        help="TRAIN=TEST labelled folders (repeatable; default: the three "
                        "directions of ../shared/datasets)")
    parser.add_argument("--datasets", default="../shared/datasets",
                        help="folder of the named photo sets (default: ../shared/datasets)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--architectures", nargs="+", default=[DEFAULT_ARCHITECTURE],
                        choices=list(ARCHITECTURES),
                        help="compared side by side (default: the default architecture)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="override every recipe's epochs (default: each recipe's own)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="happysad-accuracy-") as home:
        # Nothing the run writes lands in the project, and no HAPPYSAD_ setting of yours (a
        # broker, a database) is used: SQLite and the embedded queue under the temporary home.
        directions = directions_by_training_folder(args.directions or list(DEFAULT_DIRECTIONS),
                                                   args.datasets)
        for name in [key for key in os.environ if key.startswith("HAPPYSAD_")]:
            del os.environ[name]
        os.environ["HAPPYSAD_HOME"] = home
        os.chdir(home)  # nor a ./.env
        from db.settings import get_settings
        from scheduler.workers import start_local_workers, stop_local_workers

        workers = start_local_workers(get_settings().concurrency(),
                                            Path(home) / "worker.log")
        runs = []
        try:
            for architecture in args.architectures:
                for seed in args.seeds:
                    for train, tests in directions.items():
                        for run in run_once(train, tests, architecture, seed, args.epochs,
                                            workers):
                            print(json.dumps(run), file=sys.stderr, flush=True)  # progress
                            runs.append(run)
        finally:
            stop_local_workers(workers)
    summary = summarize(runs)
    print(json.dumps({"directions": directions, "seeds": args.seeds,
                      "runs": runs, "summary": summary}, indent=2))
    print()
    print(markdown_table(summary))


if __name__ == "__main__":
    main()
