"""`python -m benchmarks.throughput`: every measurement in one run, printed as JSON."""

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.throughput import __doc__ as OVERVIEW
from benchmarks.throughput.ceiling import Ceiling, decode_cost, one_image_at_a_time
from benchmarks.throughput.common import (
    IMAGE_SIZE,
    JPEG_SHAPES,
    PHOTOS,
    clean_env,
    copy_photos,
    engines_record,
    link_repeated,
    log,
    train_and_register,
    tutorial_model,
    write_jpegs,
)
from benchmarks.throughput.end_to_end import (compare_labels, end_to_end, engine_medians,
                                             submit_memory)
from benchmarks.throughput.stages import (peak_gflops, physical_limit, stages_per_engine,
                                         with_ratios)
from benchmarks.throughput.training_input import training_input
from db.settings import InferenceEngine


def mode_envs(work: Path, postgres_admin: str, redis_url: str) -> tuple[dict, dict]:
    """(environment per mode, modes skipped with why). Each mode has its own home and database."""
    import psycopg
    import redis

    envs = {"embedded": clean_env(HAPPYSAD_HOME=str(work / "home-embedded"))}
    try:
        with psycopg.connect(postgres_admin, autocommit=True, connect_timeout=5) as admin:
            if not admin.execute("SELECT 1 FROM pg_database WHERE datname = 'happysad_bench'"
                                 ).fetchone():
                admin.execute('CREATE DATABASE "happysad_bench"')
        database = postgres_admin.rsplit("/", 1)[0] + "/happysad_bench"
        with psycopg.connect(database, autocommit=True) as connection:  # start empty
            connection.execute("DROP SCHEMA IF EXISTS public CASCADE")
            connection.execute("CREATE SCHEMA public")
        redis.Redis.from_url(redis_url, socket_connect_timeout=3).flushdb()
    except (psycopg.Error, redis.RedisError) as error:
        return envs, {"redis+postgresql": f"not reachable: {error}"}
    envs["redis+postgresql"] = clean_env(HAPPYSAD_HOME=str(work / "home-distributed"),
                                         HAPPYSAD_DATABASE_URL=database,
                                         HAPPYSAD_BROKER_URL=redis_url)
    return envs, {}


def measured_run(mode: str, env: dict, name: str, source: Path, warmup: Path, processes: int,
                 ceilings: dict[int, Ceiling], loop: dict, decode: dict, work: Path,
                 engine: str = "auto", round_number: int = 1) -> dict:
    """One end-to-end run between ceiling measurements. On a shared machine the load drifts, so
    each ceiling is taken right before and right after, and the higher one counts. Two
    ceilings: the same processes x threads as the workers (the strict comparison), and one
    process using every core (the issue's: the model called directly under tf.function)."""
    log(f"round {round_number}: {mode}, {name} images, {processes} worker process(es), "
        f"HAPPYSAD_ENGINE={engine}")
    before = {count: ceiling.measure() for count, ceiling in ceilings.items()}
    result = end_to_end(source, warmup, processes, env | {"HAPPYSAD_ENGINE": engine},
                        work / f"worker-{mode}-{name}-{processes}-{engine}-{round_number}.log")
    after = {count: ceiling.measure() for count, ceiling in ceilings.items()}
    rate = result["images_per_second"]
    record = {"mode": mode, "jpeg": name, "engine_setting": engine, "round": round_number,
              **result}
    for key, count in (("ceiling", processes), ("one_process_ceiling", 1)):
        best = max(before[count], after[count], key=lambda measured: measured["images_per_second"])
        record[key] = best | {"before_and_after": [before[count]["images_per_second"],
                                                   after[count]["images_per_second"]]}
        record[f"ratio_to_{key}"] = round(rate / best["images_per_second"], 3)
    record["ratio_to_one_at_a_time"] = round(rate / loop["images_per_second"], 1)
    # The most end to end can reach when decoding shares the cores with inference, even if
    # queue, SQL and Python cost nothing: inference per image / (inference + decode).
    inference_ms = (os.cpu_count() or 1) * 1000 / record["ceiling"]["images_per_second"]
    record["decode_bound_ratio_to_ceiling"] = round(
        inference_ms / (inference_ms + decode["cpu_ms_per_image"]), 3)
    record["inference_cpu_ms_per_image_at_ceiling"] = round(inference_ms, 3)
    return record


def comma_list(allowed):
    def parse(text: str) -> list[str]:
        values = [value.strip() for value in text.split(",") if value.strip()]
        wrong = [value for value in values if value not in allowed]
        if wrong or not values:
            raise argparse.ArgumentTypeError(f"one or more of {', '.join(allowed)}")
        return values

    return parse


def keras_model(model_path: str):
    import keras

    return keras.models.load_model(model_path, compile=False)


def run(args) -> dict:
    work = Path(tempfile.mkdtemp(prefix="happysad-throughput-"))
    os.chdir(work)  # no ./.env of a developer's configures the run
    envs, skipped = mode_envs(work, args.postgres_admin, args.redis)
    envs = {mode: env for mode, env in envs.items() if mode in args.modes}
    for env in envs.values():
        Path(env["HAPPYSAD_HOME"]).mkdir()
    from trainer.sample_data import write_sample_dataset

    train_folder = Path(args.photos[0]) if args.photos else work / "train"
    if not args.photos:
        write_sample_dataset(train_folder, per_class=args.train_per_class, image_size=IMAGE_SIZE)
    log(f"training input pipelines, on {train_folder}")
    training = None if args.labelling_only else training_input(train_folder, args.epochs)
    listing_env = clean_env(HAPPYSAD_HOME=str(work / "home-listing"))
    Path(listing_env["HAPPYSAD_HOME"]).mkdir()
    model_path = train_and_register(train_folder, envs | {"listing": listing_env},
                                    args.architecture, recipe=bool(args.photos))
    if args.photos:  # the photos stand in for the generated JPEGs of every shape
        primary, photos = PHOTOS, copy_photos(args.photos, work / f"originals-{PHOTOS}")
        sources = {PHOTOS: link_repeated(photos, work / f"{PHOTOS}-{args.images}", args.images)}
        warmups = {PHOTOS: link_repeated(photos, work / "warmup" / PHOTOS, 16)}
        args.photos = {"folders": [str(folder) for folder in args.photos],
                       "photos": len(photos), "model_trained_on": str(train_folder),
                       "how": f"each photo copied once into the work folder, then hard-linked "
                              f"under distinct names, in turn, to make {args.images} a job"}
    else:
        primary = "256x256"  # the stages' images, whatever the end-to-end runs' shapes
        shapes = {name: shape for name, shape in JPEG_SHAPES.items()
                  if name in args.shapes or name == primary}
        sources = {name: write_jpegs(work, shape, args.images) for name, shape in shapes.items()}
        warmups = {name: write_jpegs(work / "warmup", shape, 16) for name, shape in shapes.items()}
    listing = None
    if not args.labelling_only:
        log(f"submit memory at {', '.join(map(str, args.listing_sizes))} images")
        listing = submit_memory(sorted((work / f"originals-{primary}").iterdir()), listing_env,
                                work, args.listing_sizes)
    stage_source = sources[primary]
    sources = {name: source for name, source in sources.items()
               if name in args.shapes or name == PHOTOS}
    log("decode cost")
    decode = {name: decode_cost(source, 500) for name, source in sources.items()}
    log("one image at a time")
    loop = {name: one_image_at_a_time(model_path, source, args.one_at_a_time)
            for name, source in sources.items()}
    # The yardstick is the tutorial's loop on the tutorial's CNN, in this same run.
    tutorial_loop = loop
    if args.architecture != "baseline":
        tutorial_path = tutorial_model(train_folder, work / "tutorial.keras")
        tutorial_loop = {name: one_image_at_a_time(tutorial_path, source, args.one_at_a_time)
                         for name, source in sources.items()}
    log("peak float32 rate and the stages per engine")
    limit = physical_limit(keras_model(model_path), peak_gflops())
    stages = with_ratios(stages_per_engine(model_path, stage_source, envs), limit)
    engines = engines_record(next(iter(envs.values())))
    runs = []
    # The engines take turns, round after round, so a load that drifts meanwhile falls on each
    # of them alike; one engine's ceilings up at a time: they share the cores.
    for round_number in range(1, args.rounds + 1):
        for engine in args.engines:
            ceilings = {processes: Ceiling(model_path, processes, args.ceiling_seconds, engine,
                                           engines)
                        for processes in (1, 2)}
            try:
                runs += [measured_run(mode, env, name, source, warmups[name], processes,
                                      ceilings, loop[name], decode[name], work, engine,
                                      round_number)
                         for mode, env in envs.items() for name, source in sources.items()
                         for processes in args.processes]
            finally:
                for ceiling in ceilings.values():
                    ceiling.close()
    compare_labels(runs, args.engines[0])
    for record in runs:
        record["ratio_to_physical_limit"] = round(
            record["images_per_second"] / limit["images_per_second_at_peak"], 3)
    for record in runs:
        record["ratio_to_tutorial_one_at_a_time"] = round(
            record["images_per_second"] / tutorial_loop[record["jpeg"]]["images_per_second"], 1)
    over_tutorial = {mode: max([r["ratio_to_tutorial_one_at_a_time"] for r in runs
                                if r["mode"] == mode and r["jpeg"] == primary], default=0)
                     for mode in envs}
    goal = {"target": 0.8}
    for key in ("ratio_to_ceiling", "ratio_to_one_process_ceiling"):
        best = {mode: max([r[key] for r in runs if r["mode"] == mode and r["jpeg"] == primary],
                          default=0) for mode in envs}
        goal[key] = {"best_per_mode": best, "met": min(best.values()) >= goal["target"]}
    return {"architecture": args.architecture, "photos": args.photos, "physical_limit": limit,
            f"stages_ms_per_image_{primary}": stages,
            "one_image_at_a_time": loop, "tutorial_one_image_at_a_time": tutorial_loop,
            f"goal_{primary}_over_tutorial_loop": {
                "target": 8, "best_per_mode": over_tutorial,
                "met": min(over_tutorial.values()) >= 8},
            "decode_one_thread": decode, "end_to_end": runs,
            "end_to_end_by_engine": engine_medians(runs, args.engines[0]),
            "skipped_modes": skipped,
            f"goal_{primary}_end_to_end_over_ceiling": goal, "submit_memory": listing,
            "training_input": training, "work_folder": str(work)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=OVERVIEW.split("\n\n")[0])
    parser.add_argument("--images", type=int, help="images per end-to-end job (default 10000, "
                        "--quick 3000)")
    parser.add_argument("--quick", action="store_true", help="small sizes: proves it runs")
    parser.add_argument("--postgres-admin", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="a server where database happysad_bench may be (re)created")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14",
                        help="a Redis db the run may empty")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, data)")
    parser.add_argument("--architecture", default="baseline",
                        help="the model that serves (default: the tutorial's CNN, baseline; "
                        "the one-image loop runs the same model)")
    parser.add_argument("--engines", default="tensorflow,auto", type=comma_list(
        [engine.value for engine in InferenceEngine]), help="HAPPYSAD_ENGINE values the "
        "workers and ceilings are measured with, one after the other; labels are compared to "
        "the first's (default: tensorflow,auto)")
    parser.add_argument("--modes", default="embedded,redis+postgresql",
                        type=comma_list(["embedded", "redis+postgresql"]),
                        help="queue and database of the end-to-end runs (default: both)")
    parser.add_argument("--shapes", default=",".join(JPEG_SHAPES), type=comma_list(JPEG_SHAPES),
                        help="JPEG sizes of the end-to-end runs (default: both)")
    # Resolved now: the run works in a temporary folder of its own (os.chdir in run).
    parser.add_argument("--photos", nargs="+", type=lambda text: Path(text).resolve(),
                        metavar="FOLDER",
                        help="real photos instead of generated JPEGs: every image under these "
                        "folders, repeated under distinct names to make --images a job; the "
                        "model trains on the first folder (labelled: one sub-folder per class)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="end-to-end runs per engine, the engines taking turns (default 1)")
    parser.add_argument("--processes", default="1,2", type=comma_list(["1", "2"]),
                        help="worker processes of the end-to-end runs")
    parser.add_argument("--labelling-only", action="store_true",
                        help="skip the submit memory and training input measurements")
    args = parser.parse_args(argv)
    args.processes = [int(count) for count in args.processes]
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    args.images = args.images or (3000 if args.quick else 10_000)
    args.listing_sizes = [1000, 100_000] if args.quick else [1000, 100_000, 1_000_000]
    args.ceiling_seconds, args.one_at_a_time = (1.5, 30) if args.quick else (3, 100)
    args.train_per_class, args.epochs = (50, 2) if args.quick else (150, 3)
    from trainer.precision import REDUCED_PRECISION_FLAGS, cpu_flags

    machine = {"cores": os.cpu_count(),
               "bf16_cpu_flags": sorted(REDUCED_PRECISION_FLAGS["bf16"] & cpu_flags()),
               "engines": args.engines,
               "load_average_at_start": os.getloadavg()}
    started = time.monotonic()
    report = run(args)
    machine |= {"load_average_at_end": os.getloadavg(),
                "total_seconds": round(time.monotonic() - started)}
    if not args.keep:
        shutil.rmtree(report.pop("work_folder"), ignore_errors=True)
    print(json.dumps({"machine": machine, "images_per_job": args.images, **report}, indent=2,
                     default=str))


if __name__ == "__main__":
    main()
