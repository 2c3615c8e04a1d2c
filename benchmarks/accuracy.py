"""Accuracy on photos never seen: train on one labelled folder, classify another through the
real pipeline, side by side.

For each architecture and seed: `trainer.train.train()` on the training folder, the model
registered as a version, then the test folder submitted as a job pinned to that version and
labelled by real Celery workers on the embedded queue (the same decode, engine and SQL rows a
user gets), and each row scored against its image's class sub-folder. Prints a JSON document
(per-seed runs, per-architecture mean and standard deviation) and a Markdown table.

    python -m benchmarks.accuracy --train ../shared/datasets/seed-photos \
        --test ../shared/datasets/more-photos --seeds 0 1 2 --architectures baseline improved

Both folders are only read. Everything runs under a temporary HAPPYSAD_HOME.
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

from trainer.model import ARCHITECTURES

METRICS = ("accuracy", "precision", "recall")


def label_through_workers(test_folder: str, version: int, class_names: list[str], workers):
    """Submit the folder as a job pinned to `version`, wait for the workers, and return (true
    class indices, probabilities, images that failed) for its rows."""
    from db import queries
    from db.session import session_scope
    from scheduler.submit import submit_source

    submission = submit_source(test_folder, model_version=version)
    while True:
        with session_scope() as session:
            if queries.get_job(session, submission.job_id).status == "done":
                rows = [(row.uri, row.probabilities, row.error) for row in
                        queries.iter_predictions(session, submission.job_id)]
                break
        if workers.poll() is not None:
            raise RuntimeError("the workers stopped: see worker.log in the run's HAPPYSAD_HOME")
        time.sleep(0.5)
    root = Path(submission.source)
    truth, probabilities, failed = [], [], 0
    for uri, class_probabilities, error in rows:
        true_class = Path(uri).relative_to(root).parts[0]
        if true_class not in class_names:
            raise ValueError(f"{test_folder} has a class the model does not know: {true_class}")
        if error:
            failed += 1
            continue
        truth.append(class_names.index(true_class))
        probabilities.append([class_probabilities[name] for name in class_names])
    return np.array(truth), np.array(probabilities), failed


def run_once(train_folder: str, test_folder: str, architecture: str, seed: int,
             epochs: int | None, workers) -> dict:
    """Train one model, register it, and score it on the test folder through the workers."""
    from trainer.evaluate import classification_metrics
    from trainer.registry import register
    from trainer.train import TrainingParams, train

    result = train(train_folder, TrainingParams(architecture=architecture, seed=seed,
                                                epochs=epochs))
    class_names = result.data.class_names
    version = register(result, promote="never").version
    truth, probabilities, failed = label_through_workers(test_folder, version, class_names,
                                                         workers)
    metrics = classification_metrics(truth, probabilities, class_names)
    return {"architecture": architecture, "seed": seed, "model_version": version,
            "image_size": result.params.image_size,
            "epochs_run": len(result.history.get("loss", [])),
            "train_seconds": round(result.train_seconds, 1),
            "held_out_split_accuracy": result.metrics["accuracy"],
            "test_images": metrics["count"], "test_failed": failed,
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
    parser.add_argument("--architectures", nargs="+", default=["baseline", "improved"],
                        choices=list(ARCHITECTURES))
    parser.add_argument("--epochs", type=int, default=None,
                        help="override every recipe's epochs (default: each recipe's own)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="happysad-accuracy-") as home:
        # Nothing the run writes lands in the project, and no HAPPYSAD_ setting of yours (a
        # broker, a database) is used: SQLite and the embedded queue under the temporary home.
        train, test = (folder if "://" in folder else os.path.abspath(folder)
                       for folder in (args.train, args.test))
        for name in [key for key in os.environ if key.startswith("HAPPYSAD_")]:
            del os.environ[name]
        os.environ["HAPPYSAD_HOME"] = home
        os.chdir(home)  # nor a ./.env
        from db.settings import get_settings
        from worker import local

        workers = local.start_local_workers(get_settings().concurrency(),
                                            Path(home) / "worker.log")
        runs = []
        try:
            for architecture in args.architectures:
                for seed in args.seeds:
                    run = run_once(train, test, architecture, seed, args.epochs, workers)
                    print(json.dumps(run), file=sys.stderr, flush=True)  # progress, per run
                    runs.append(run)
        finally:
            local.stop_local_workers(workers)
    summary = summarize(runs)
    print(json.dumps({"train": args.train, "test": args.test, "seeds": args.seeds,
                      "runs": runs, "summary": summary}, indent=2))
    print()
    print(markdown_table(summary))


if __name__ == "__main__":
    main()
