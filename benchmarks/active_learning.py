"""Active learning on real photos: do corrections chosen by the review queue teach the model
more than as many chosen at random?

For each seed: a base model trained on --seed-photos (the default architecture, or
--architecture) and registered; --pool (photos never trained on) labelled as a job by real
Celery workers on the embedded queue; then, for each strategy, in a fresh HAPPYSAD_HOME with
that same base model:

- queue: a simulated reviewer (who knows each image's true folder label) reviews the images
  the review queue serves (`db.queries.reviews.review_queue`, on a job of the pool labelled
  by the newest model, skipping images already reviewed), until 20, 40, 80 are reviewed in all;
- random: the same numbers, drawn at random (seeded) from the pool.

After each step the retrain runs as a forced retrain does (`worker.retrain.run_retrain`:
HAPPYSAD_TRAIN_DATA = --seed-photos plus every reviewed image, on the production model's
recipe), and the version it trained labels --test (never trained on, never reviewed) through
the workers, and so do the pool's images not yet reviewed (what a user who reviewed some of a
folder gets on the rest of it); both accuracies are reported per step, strategy and seed, with
mean, standard deviation and gain over no review per step. Prints JSON.

    nice -n 10 python -m benchmarks.active_learning --seed-photos ../shared/datasets/seed-photos \\
        --pool ../shared/datasets/emoji-glyphs --test ../shared/datasets/more-photos \\
        --seeds 0 1 2 --steps 20 40 80

Every folder is only read. Everything runs under temporary HAPPYSAD_HOMEs (SQLite, embedded
queue). A benchmark, not a test: it takes about 7 trainings per seed.
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

STRATEGIES = ("queue", "random")


def use_home(home: str) -> None:
    """Point every setting of this process at a fresh home (SQLite, embedded queue)."""
    from db.session import dispose_engines
    from db.settings import reset_settings

    dispose_engines()
    os.environ["HAPPYSAD_HOME"] = home
    reset_settings()


def label(folder: str, version: int, workers) -> int:
    """A job over `folder` pinned to `version`, labelled by the workers; its id."""
    from db import queries
    from db.session import session_scope
    from db.settings import get_settings
    from scheduler.submit import submit_source

    job_id = submit_source(folder, model_version=version, settings=get_settings(),
                           sessions=session_scope).job_id
    while True:
        with session_scope() as session:
            if queries.get_job(session, job_id).status == "done":
                return job_id
        if workers.poll() is not None:
            from db.settings import get_settings

            log = (get_settings().home / "worker.log").read_text(errors="replace")
            raise RuntimeError("the workers stopped:\n" + "\n".join(log.splitlines()[-15:]))
        time.sleep(0.5)


def true_label(folder: str, uri: str) -> str:
    return Path(uri).relative_to(folder).parts[0]


def accuracy_on(folder: str, version: int, workers, leave_out: set[str] = frozenset()) -> float:
    """The version's accuracy on the folder labelled as a job, the images in `leave_out` (those
    already reviewed) not counted."""
    from db import queries
    from db.session import session_scope

    job_id = label(folder, version, workers)
    with session_scope() as session:
        rows = [(p.uri, p.label) for p in queries.iter_predictions(session, job_id)]
    scored = [predicted == true_label(folder, uri) for uri, predicted in rows
              if predicted and uri not in leave_out]
    return sum(scored) / len(scored)


def predictions_by_uri(job_id: int) -> dict[str, int]:
    from db import queries
    from db.session import session_scope

    with session_scope() as session:
        return {p.uri: p.id for p in queries.iter_predictions(session, job_id) if p.label}


def review(prediction_ids: list[int], pool: str) -> None:
    """The simulated reviewer: each image's true label is its folder's name."""
    from db import queries
    from db.queries.reviews import review_prediction
    from db.session import session_scope

    with session_scope() as session:
        for prediction_id in prediction_ids:
            uri = queries.get_prediction(session, prediction_id).uri
            review_prediction(session, prediction_id, true_label(pool, uri), "simulated")


def choose_from_queue(job_id: int, reviewed: set[str], count: int) -> list[int]:
    """The next `count` images of the job's review queue not reviewed in an earlier job."""
    from db.queries.reviews import review_queue
    from db.session import session_scope

    with session_scope() as session:
        queue = review_queue(session, job_id, limit=count + len(reviewed))
        fresh = [p.id for p in queue if p.uri not in reviewed][:count]
    if len(fresh) < count:
        raise RuntimeError("the pool has too few images for this step")
    return fresh


def run_strategy(strategy: str, base, args, seed: int) -> list[dict]:
    """One strategy from the base model: review, retrain, score, per step."""
    from db import queries
    from db.session import session_scope
    from db.settings import get_settings
    from trainer.registry import register
    from scheduler.workers import start_local_workers, stop_local_workers
    from worker.retrain import run_retrain

    steps = []
    with tempfile.TemporaryDirectory(prefix=f"happysad-al-{strategy}-") as home:
        use_home(home)
        workers = start_local_workers(args.workers, Path(home) / "worker.log")
        try:
            version = register(base, promote="always", settings=get_settings(),
                               sessions=session_scope).version
            steps.append({"reviewed": 0, "model_version": version,
                          "pool_unreviewed_accuracy": accuracy_on(args.pool, version, workers),
                          "accuracy": accuracy_on(args.test, version, workers)
                          if args.test else None})
            print(json.dumps({"seed": seed, "strategy": strategy} | steps[-1]),
                  file=sys.stderr, flush=True)
            rng = np.random.default_rng(seed)
            first_job = label(args.pool, version, workers)
            random_order = [int(i) for i in rng.permutation(sorted(
                predictions_by_uri(first_job).values()))]
            reviewed: set[str] = set()
            for total in args.steps:
                count = total - len(reviewed)
                if strategy == "queue":  # the newest model's uncertainty
                    job_id = first_job if not reviewed else label(args.pool, version, workers)
                    chosen = choose_from_queue(job_id, reviewed, count)
                else:
                    chosen = random_order[len(reviewed):total]
                review(chosen, args.pool)
                with session_scope() as session:
                    reviewed |= {queries.get_prediction(session, i).uri for i in chosen}
                run = run_retrain(slot=f"{strategy}-{total}", force=True,
                                  settings=get_settings(), sessions=session_scope)
                if run.status != "done":
                    raise RuntimeError(f"retrain {run.slot} {run.status}: {run.reason}")
                version = run.model_version
                with session_scope() as session:
                    params = queries.get_model_version(session, version).params
                steps.append({"reviewed": total, "model_version": version,
                              "reviewed_in_training": params["reviewed_images"],
                              "train_images": params["train_images"],
                              "promoted": run.promoted,
                              "pool_unreviewed_accuracy": accuracy_on(args.pool, version, workers,
                                                                      reviewed),
                              "accuracy": accuracy_on(args.test, version, workers)
                              if args.test else None})
                print(json.dumps({"seed": seed, "strategy": strategy} | steps[-1]),
                      file=sys.stderr, flush=True)
        finally:
            stop_local_workers(workers)
    return steps


def summarize(runs: list[dict], step_totals: list[int]) -> dict:
    """Per strategy, step and measure (the pool's unreviewed images; --test): mean, standard
    deviation, seeds, and the gain over no review."""
    summary = {}
    for strategy in [name for name in STRATEGIES if runs and name in runs[0]]:
        per_step = {}
        for measure in ("pool_unreviewed_accuracy", "accuracy"):
            before = None
            for total in [0, *step_totals]:
                values = [step[measure] for run in runs for step in run[strategy]
                          if step["reviewed"] == total and step[measure] is not None]
                if not values:
                    continue
                mean = statistics.mean(values)
                before = mean if before is None else before
                per_step.setdefault(str(total), {})[measure] = {
                    "mean": mean, "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                    "seeds": len(values), "gain": mean - before}
        summary[strategy] = per_step
    return summary


def main(argv: list[str] | None = None) -> None:
    from trainer.model import ARCHITECTURES, DEFAULT_ARCHITECTURE

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed-photos", required=True, help="labelled folder: the base model")
    parser.add_argument("--pool", required=True,
                        help="labelled folder to label as a job and review from")
    parser.add_argument("--test", help="labelled folder also scored after each step (the pool's "
                        "unreviewed images always are)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, nargs="+", default=[20, 40, 80],
                        help="reviewed images in all, after each step (increasing)")
    parser.add_argument("--architecture", choices=ARCHITECTURES, default=DEFAULT_ARCHITECTURE)
    parser.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs")
    parser.add_argument("--workers", type=int, default=1, help="labelling worker processes")
    parser.add_argument("--strategies", nargs="+", choices=STRATEGIES, default=list(STRATEGIES),
                        help="which reviewers to simulate (random is the comparison)")
    args = parser.parse_args(argv)
    if args.steps != sorted(set(args.steps)):
        parser.error("--steps must increase")
    for name in ("seed_photos", "pool", "test"):
        if getattr(args, name):
            setattr(args, name, os.path.abspath(getattr(args, name)))
    for name in [key for key in os.environ if key.startswith("HAPPYSAD_")]:
        del os.environ[name]  # no broker or database of yours: temporary homes only
    os.environ["HAPPYSAD_TRAIN_DATA"] = args.seed_photos

    from trainer.train import TrainingParams, train

    runs, started = [], time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="happysad-al-") as scratch:
        os.chdir(scratch)  # no ./.env
        for seed in args.seeds:
            base = train(args.seed_photos, TrainingParams(architecture=args.architecture,
                                                          seed=seed, epochs=args.epochs))
            runs.append({"seed": seed} | {strategy: run_strategy(strategy, base, args, seed)
                                          for strategy in args.strategies})
    print(json.dumps({"seed_photos": args.seed_photos, "pool": args.pool, "test": args.test,
                      "architecture": args.architecture, "epochs": args.epochs,
                      "seeds": args.seeds, "steps": args.steps, "runs": runs,
                      "summary": summarize(runs, args.steps),
                      "seconds": round(time.perf_counter() - started)}, indent=2))


if __name__ == "__main__":
    main()
