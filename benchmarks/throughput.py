"""Throughput, measured side by side in one run: the model's ceiling, the real worker path end to
end, and the tutorial's one-image-at-a-time loop; plus memory and training-input speed.

    .venv/bin/python -m benchmarks.throughput [--images N] [--quick]

(a) ceiling: the chosen inference engine called on in-memory batches of 64, in as many
processes and threads as the workers get, and in one process on every core (the issue's "model
called directly under tf.function"), each taken just before and just after every run.
(b) end to end: a job of N JPEGs from its creation by `happysad submit` (run as a subprocess)
to its last row written, through real `celery` workers, on the embedded default (file queue +
SQLite) and on Redis + PostgreSQL; also timed from the command's start, which adds the
interpreter's start-up. (c) the tutorial's loop: cv2.imread, tf.image.resize, `model.predict`
on one image. For 256x256 and 1024x768 JPEGs, with one and two worker processes.
Memory: peak RSS per worker process and of the submitting command (for a 16-image and an
N-image source); each worker's RSS at 25/50/75/100% of the job (flat: no growth per batch).
Training input: the tutorial's image_dataset_from_directory against the project's pipeline
(parallel decode into memory, then tf.data shuffle, batch and prefetch), same data and model,
images/s per epoch.

Everything runs under a temporary HAPPYSAD_HOME (your HAPPYSAD_ settings are ignored), on
generated JPEGs (drawn faces), PostgreSQL database `happysad_bench` and Redis db 14. Prints JSON.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
IMAGE_SIZE = 256  # the tutorial's CNN input
JPEG_SHAPES = {"256x256": (256, 256), "1024x768": (1024, 768)}


def log(message: str) -> None:
    print(f"[throughput] {message}", file=sys.stderr, flush=True)


def clean_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAPPYSAD_")}
    return env | {"PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"} | extra


def use_env(env: dict) -> None:
    """Point this process's settings and database engine at another home/database."""
    from db.session import dispose_engines
    from db.settings import reset_settings

    for name in [k for k in os.environ if k.startswith("HAPPYSAD_")]:
        del os.environ[name]
    os.environ.update({k: v for k, v in env.items() if k.startswith("HAPPYSAD_")})
    reset_settings()
    dispose_engines()


# --- data and model -----------------------------------------------------------------------

def write_jpegs(folder: Path, shape: tuple[int, int], count: int, unique: int = 48) -> Path:
    """`count` JPEGs of drawn faces; a few dozen distinct files, hard-linked under many names."""
    import cv2

    from trainer.sample_data import CLASS_NAMES, draw_face

    rng = np.random.default_rng(0)
    originals = folder / f"originals-{shape[0]}x{shape[1]}"
    originals.mkdir(parents=True)
    width, height = shape
    for index in range(unique):
        face = draw_face(CLASS_NAMES[index % 2], height, rng)
        side = (width - height) // 2  # wide photos: the face in the middle, edges mirrored
        image = cv2.copyMakeBorder(face, 0, 0, side, side, cv2.BORDER_REFLECT)
        cv2.imwrite(str(originals / f"{index}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    source = folder / f"jpeg-{shape[0]}x{shape[1]}-{count}"
    source.mkdir()
    for index in range(count):
        os.link(originals / f"{index % unique}.jpg", source / f"{index:07d}.jpg")
    return source


def train_and_register(sample_folder: Path, homes: dict[str, dict]) -> str:
    """One quick model of the tutorial's CNN (1 epoch: this is about speed), registered as
    production in every mode's database. Returns the model file of the first registration."""
    from trainer.registry import register
    from trainer.train import TrainingParams, train

    result = train(str(sample_folder), TrainingParams(
        architecture="baseline", epochs=1, image_size=IMAGE_SIZE, augment=False))
    paths = []
    for env in homes.values():
        use_env(env)
        paths.append(register(result, promote="always").path)
    return paths[0]


# --- (a) ceiling ---------------------------------------------------------------------------

def ceiling_child(model_path: str, threads: int, seconds: float) -> None:
    """In a child process: warm, say ready, then for each "go" call the engine for `seconds`."""
    import keras
    import tensorflow as tf

    from worker.engine import load_engine

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    model = keras.models.load_model(model_path, compile=False)
    engines = {"chosen": load_engine(model, IMAGE_SIZE, 2)}
    if engines["chosen"].name != "fp32":  # plain fp32 too, to show what the engine gains
        engines["fp32"] = load_engine(model, IMAGE_SIZE, 2, "fp32")
    batch = np.random.default_rng(0).random((64, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.float32)
    for engine in engines.values():
        engine(batch)
    print("ready", flush=True)
    while sys.stdin.readline().strip() == "go":
        result = {"engine": engines["chosen"].name, "engine_note": engines["chosen"].note}
        for key, engine in engines.items():
            count, started = 0, time.perf_counter()
            while time.perf_counter() - started < seconds:
                engine(batch)
                count += len(batch)
            result[f"{key}_images_per_second"] = count / (time.perf_counter() - started)
        result.setdefault("fp32_images_per_second", result["chosen_images_per_second"])
        print(json.dumps(result), flush=True)


class Ceiling:
    """The model alone, in `processes` processes at once, each with its share of the cores.
    The processes stay up (idle between measurements), so a ceiling can be taken right before
    and right after each end-to-end run without paying TensorFlow's start-up every time."""

    def __init__(self, model_path: str, processes: int, seconds: float):
        self.processes = processes
        self.threads = max(1, (os.cpu_count() or 1) // processes)
        command = [sys.executable, "-m", "benchmarks.throughput", "--ceiling-child", model_path,
                   "--threads", str(self.threads), "--seconds", str(seconds)]
        self.children = [subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          text=True, env=clean_env()) for _ in range(processes)]
        for child in self.children:  # all warm before any is timed: they share the cores
            if child.stdout.readline().strip() != "ready":
                raise RuntimeError("ceiling child failed to start")

    def measure(self) -> dict:
        for child in self.children:
            child.stdin.write("go\n")
            child.stdin.flush()
        results = [json.loads(child.stdout.readline()) for child in self.children]
        return {"processes": self.processes, "threads_per_process": self.threads,
                "engine": results[0]["engine"], "engine_note": results[0]["engine_note"],
                "images_per_second": round(sum(r["chosen_images_per_second"] for r in results), 1),
                "fp32_images_per_second": round(sum(r["fp32_images_per_second"]
                                                    for r in results), 1)}

    def close(self) -> None:
        for child in self.children:
            child.communicate("stop\n")


# --- (c) the tutorial's loop ---------------------------------------------------------------

def one_image_at_a_time(model_path: str, source: Path, count: int) -> dict:
    """The tutorial's serving loop: imread, tf.image.resize, /255, predict on a batch of one."""
    import cv2
    import keras
    import tensorflow as tf

    model = keras.models.load_model(model_path, compile=False)
    paths = sorted(source.iterdir())[:count]
    model.predict(np.zeros((1, IMAGE_SIZE, IMAGE_SIZE, 3), np.float32), verbose=0)
    started = time.perf_counter()
    for path in paths:
        image = cv2.imread(str(path))
        resized = tf.image.resize(image, (IMAGE_SIZE, IMAGE_SIZE))
        model.predict(np.expand_dims(resized / 255, 0), verbose=0)
    return {"images": len(paths),
            "images_per_second": round(len(paths) / (time.perf_counter() - started), 1)}


# --- (b) end to end ------------------------------------------------------------------------

def rss_mb(pid: int, field: str = "VmRSS") -> float | None:
    """A process's resident memory (VmRSS) or its peak (VmHWM), in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass  # the process has gone
    return None


class Workers:
    """A real `celery -A worker.celery_app worker` with `processes` pool processes."""

    def __init__(self, processes: int, env: dict, log_path: Path):
        from worker.local import worker_command

        self.log_path = log_path
        command = worker_command(processes, "labelling", "INFO") + ["--without-mingle",
                                                                     "--without-gossip"]
        self.process = subprocess.Popen(command, stdout=open(log_path, "wb"),
                                        stderr=subprocess.STDOUT, env=env, cwd=log_path.parent,
                                        start_new_session=True)
        deadline = time.monotonic() + 120
        while "ready." not in log_path.read_text(errors="replace"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{log_path.read_text()}")
            time.sleep(0.2)

    def children(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True,
                             text=True).stdout
        return sorted(int(pid) for pid in out.split())

    def engines(self) -> list[str]:
        return re.findall(r"inference engine (\w+) chosen", self.log_path.read_text())

    def stop(self) -> None:
        from worker.local import stop_local_workers

        stop_local_workers(self.process, timeout=60)


# Runs `happysad` and reports its peak RSS on exit. VmHWM, not getrusage: ru_maxrss survives
# exec, so a child forked from this (TensorFlow-sized) process would report our size.
SUBMIT_WRAPPER = ("import atexit, sys; from pathlib import Path; from happysad.cli import main; "
                  "atexit.register(lambda: print([l for l in Path('/proc/self/status').read_text()"
                  ".splitlines() if l.startswith('VmHWM')][0], file=sys.stderr)); "
                  "sys.argv[0] = 'happysad'; main()")


def submit(source: Path, env: dict, batch_size: int | None = None) -> tuple[int, float]:
    """`happysad submit` as a user runs it: (job id, the command's peak RSS in MB)."""
    command = [sys.executable, "-c", SUBMIT_WRAPPER, "submit", str(source), "--json"]
    command += ["--batch-size", str(batch_size)] if batch_size else []
    done = subprocess.run(command, capture_output=True, text=True, env=env,
                          cwd=env["HAPPYSAD_HOME"], check=True)
    peak_kb = int(re.search(r"VmHWM:\s+(\d+) kB", done.stderr).group(1))
    return json.loads(done.stdout)["job_id"], round(peak_kb / 1024, 1)


def job_progress(job_id: int) -> tuple[int, int | None, str, datetime | None, datetime]:
    """(batches done, batches total, status, when its last row was written, when submitted)."""
    from sqlalchemy import func, select

    from db.session import session_scope
    from db.tables import Job, JobBatch

    with session_scope() as session:
        job = session.get(Job, job_id)
        last = session.scalar(select(func.max(JobBatch.finished_at))
                              .where(JobBatch.job_id == job_id))
        return job.batches_done, job.batches_total, job.status, last, job.submitted_at


def watch_job(job_id: int, workers: Workers, timeout: float) -> dict:
    """Poll until every batch is written, sampling each worker process's RSS on the way."""
    samples: dict[int, list[tuple[float, float]]] = {}
    deadline = time.monotonic() + timeout
    while True:
        done, total, _status, last, submitted = job_progress(job_id)
        for pid in workers.children():
            rss = rss_mb(pid)
            if rss is not None and total:
                samples.setdefault(pid, []).append((done / total, rss))
        if total and done >= total:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"job {job_id} not done in {timeout:.0f}s ({done}/{total})")
        time.sleep(0.25)
    while job_progress(job_id)[2] != "done" and time.monotonic() < deadline:
        time.sleep(0.25)  # let the report finish before the workers are stopped
    return {"last_row_at": last.replace(tzinfo=last.tzinfo or UTC),
            "submitted_at": submitted.replace(tzinfo=submitted.tzinfo or UTC),
            "worker_peak_rss_mb": [rss_mb(pid, "VmHWM") for pid in workers.children()],
            **rss_by_progress(list(samples.values()))}


def rss_by_progress(samples: list[list[tuple[float, float]]]) -> dict:
    """Each worker's RSS at 25, 50, 75 and 100% of the job, and its growth after the first
    quarter (the first batches warm TensorFlow's allocator; later growth would be a leak)."""
    marks = {}
    for mark in (0.25, 0.5, 0.75):
        marks[f"{mark:.0%}"] = [next((rss for progress, rss in series if progress >= mark),
                                     series[-1][1]) for series in samples]
    marks["100%"] = [series[-1][1] for series in samples]
    return {"worker_rss_mb_by_progress": marks,
            "worker_rss_growth_mb": [round(end - quarter, 1) for end, quarter in
                                     zip(marks["100%"], marks["25%"])]}


def end_to_end(source: Path, warmup: Path, processes: int, env: dict, log_path: Path) -> dict:
    """One job of every image in `source`, from its creation to its last row written. The
    workers are warmed first by a small job, so each process has its model loaded."""
    use_env(env)
    workers = Workers(processes, env, log_path)
    try:
        warm_id, warm_rss = submit(warmup, env, batch_size=4)
        watch_job(warm_id, workers, timeout=600)
        images = sum(1 for _ in source.iterdir())
        started = datetime.now(UTC)
        job_id, submit_rss = submit(source, env)
        submitted = (datetime.now(UTC) - started).total_seconds()
        watched = watch_job(job_id, workers, timeout=max(600, images / 5))
    finally:
        workers.stop()
    from db import queries
    from db.session import session_scope

    with session_scope() as session:
        counts = queries.job_counts(session, job_id)
    last_row_at = watched.pop("last_row_at")
    seconds = (last_row_at - watched.pop("submitted_at")).total_seconds()
    with_command = (last_row_at - started).total_seconds()
    return {"processes": processes, "images": images, "seconds": round(seconds, 2),
            "images_per_second": round(images / seconds, 1),
            "seconds_from_command_start": round(with_command, 2),
            "images_per_second_from_command_start": round(images / with_command, 1),
            "classified": counts["classified"], "failed": counts["failed"],
            "submit_command_seconds": round(submitted, 2), "worker_engines": workers.engines(),
            "submit_peak_rss_mb": submit_rss, "warmup_submit_peak_rss_mb": warm_rss, **watched}


# --- training input ------------------------------------------------------------------------

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


# --- the run -------------------------------------------------------------------------------

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
                 ceilings: dict[int, Ceiling], loop: dict, work: Path) -> dict:
    """One end-to-end run between ceiling measurements. On a shared machine the load drifts, so
    each ceiling is taken right before and right after, and the higher one counts. Two
    ceilings: the same processes x threads as the workers (the strict comparison), and one
    process using every core (the issue's: the model called directly under tf.function)."""
    log(f"{mode}, {name} JPEGs, {processes} worker process(es)")
    before = {count: ceiling.measure() for count, ceiling in ceilings.items()}
    result = end_to_end(source, warmup, processes, env,
                        work / f"worker-{mode}-{name}-{processes}.log")
    after = {count: ceiling.measure() for count, ceiling in ceilings.items()}
    rate, record = result["images_per_second"], {"mode": mode, "jpeg": name, **result}
    for key, count in (("ceiling", processes), ("one_process_ceiling", 1)):
        best = max(before[count], after[count], key=lambda measured: measured["images_per_second"])
        record[key] = best | {"before_and_after": [before[count]["images_per_second"],
                                                   after[count]["images_per_second"]]}
        record[f"ratio_to_{key}"] = round(rate / best["images_per_second"], 3)
    record["ratio_to_one_at_a_time"] = round(rate / loop["images_per_second"], 1)
    return record


def run(args) -> dict:
    work = Path(tempfile.mkdtemp(prefix="happysad-throughput-"))
    os.chdir(work)  # no ./.env of a developer's configures the run
    envs, skipped = mode_envs(work, args.postgres_admin, args.redis)
    for env in envs.values():
        Path(env["HAPPYSAD_HOME"]).mkdir()
    from trainer.sample_data import write_sample_dataset

    log("training input pipelines")
    write_sample_dataset(work / "train", per_class=args.train_per_class, image_size=IMAGE_SIZE)
    training = training_input(work / "train", args.epochs)
    model_path = train_and_register(work / "train", envs)
    sources = {name: write_jpegs(work, shape, args.images) for name, shape in JPEG_SHAPES.items()}
    warmups = {name: write_jpegs(work / "warmup", shape, 16) for name, shape in
               JPEG_SHAPES.items()}
    log("one image at a time")
    loop = {name: one_image_at_a_time(model_path, source, args.one_at_a_time)
            for name, source in sources.items()}
    ceilings = {processes: Ceiling(model_path, processes, args.ceiling_seconds)
                for processes in (1, 2)}
    try:
        runs = [measured_run(mode, env, name, source, warmups[name], processes, ceilings,
                             loop[name], work)
                for mode, env in envs.items() for name, source in sources.items()
                for processes in (1, 2)]
    finally:
        for ceiling in ceilings.values():
            ceiling.close()
    goal = {"target": 0.8}
    for key in ("ratio_to_ceiling", "ratio_to_one_process_ceiling"):
        best = {mode: max(r[key] for r in runs if r["mode"] == mode and r["jpeg"] == "256x256")
                for mode in envs}
        goal[key] = {"best_per_mode": best, "met": min(best.values()) >= goal["target"]}
    return {"one_image_at_a_time": loop, "end_to_end": runs, "skipped_modes": skipped,
            "goal_256x256_end_to_end_over_ceiling": goal,
            "training_input": training, "work_folder": str(work)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, help="images per end-to-end job (default 10000, "
                        "--quick 1000)")
    parser.add_argument("--quick", action="store_true", help="small sizes: proves it runs")
    parser.add_argument("--postgres-admin", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="a server where database happysad_bench may be (re)created")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14",
                        help="a Redis db the run may empty")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, data)")
    parser.add_argument("--ceiling-child", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    if args.ceiling_child:
        return ceiling_child(args.ceiling_child, args.threads, args.seconds)
    args.images = args.images or (1000 if args.quick else 10_000)
    args.ceiling_seconds, args.one_at_a_time = (3, 30) if args.quick else (6, 100)
    args.train_per_class, args.epochs = (50, 2) if args.quick else (150, 3)
    from worker.engine import BF16_CPU_FLAGS, cpu_flags

    machine = {"cores": os.cpu_count(), "bf16_cpu_flags": sorted(BF16_CPU_FLAGS & cpu_flags()),
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
