"""Shared fixtures: an isolated HAPPYSAD_HOME per test, the machine's PostgreSQL and Redis
(a database and a Redis db number of the tests' own), a tiny trained model, real workers.

When CI=true, a service that cannot be reached fails the run instead of skipping its tests.
"""

import os
from pathlib import Path

import pytest

from tests.helpers.processes import WorkerProcess
from tests.helpers.services import unavailable

POSTGRES_ADMIN_URL = os.environ.get("HAPPYSAD_TEST_POSTGRES_ADMIN",
                                    "postgresql://postgres@127.0.0.1:5432/postgres")
# pytest-xdist runs the tests in several processes (gw0, gw1, ...): each gets a database and a
# Redis db of its own, numbered from the configured ones (database happysad_test_gw1, db 12).
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
XDIST_INDEX = int(XDIST_WORKER.removeprefix("gw") or 0)


def per_worker_database(name: str) -> str:
    return f"{name}_{XDIST_WORKER}" if XDIST_WORKER else name


def per_worker_redis(url: str) -> str:
    """redis://host:port/N -> db N + the worker's index (redis://host:port is db 0)."""
    head, _, number = url.partition("://")[2].partition("/")
    scheme = url.partition("://")[0]
    return f"{scheme}://{head}/{int(number or 0) + XDIST_INDEX}"


POSTGRES_TEST_DB = per_worker_database(os.environ.get("HAPPYSAD_TEST_POSTGRES_DB",
                                                      "happysad_test"))
REDIS_TEST_URL = per_worker_redis(os.environ.get("HAPPYSAD_TEST_REDIS",
                                                 "redis://127.0.0.1:6379/11"))


def pytest_xdist_auto_num_workers(config):
    """`-n auto`: two processes more than the cores. The integration tests wait on worker
    processes and the reconciler's timers; with 4 processes on 2 cores a quiet run kept both
    busy (about 1,410 s of CPU in 775 s; 3 processes: 1,482 s in 798 s, before other cuts)."""
    return (os.cpu_count() or 1) + 2


TRAINED_ONCE = ("tiny_training", "tiny_baseline_training")  # the session's trained models


def pytest_collection_modifyitems(items):
    """In parallel runs, the slow and integration tests go out first and the quick ones fill the
    gaps at the end, so no process is left alone with one long test while the others are done.
    Among each, those needing no trained model go first, except one test per trained model at
    the very front: xdist hands the first tests out one per process in order (--dist
    loadgroup, no groups), so one process trains each model at once while the others run tests
    needing none, instead of all starting with a model and waiting for one to train it."""
    if not XDIST_WORKER:
        return
    # the same stable order in every process, as xdist requires
    items.sort(key=lambda item: (not (item.get_closest_marker("slow")
                                      or item.get_closest_marker("integration")),
                                 any(name in item.fixturenames for name in TRAINED_ONCE)))
    first = [next((item for item in items if name in item.fixturenames), None)
             for name in TRAINED_ONCE]
    first = [item for item in dict.fromkeys(first) if item is not None]  # once each
    items[:] = first + [item for item in items if item not in first]


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """Every test gets its own HAPPYSAD_HOME and none of the caller's HAPPYSAD_ settings."""
    for name in list(os.environ):
        if name.startswith("HAPPYSAD_") and not name.startswith("HAPPYSAD_TEST_"):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    monkeypatch.setenv("HAPPYSAD_HOME", str(home))
    monkeypatch.chdir(tmp_path)  # a developer's ./.env must not configure the tests
    from db.session import dispose_engines
    from db.settings import reset_settings

    reset_settings()
    yield home
    dispose_engines()
    reset_settings()


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A database of the tests' own on the machine's PostgreSQL, created if missing."""
    import psycopg

    try:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
            exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                   (POSTGRES_TEST_DB,)).fetchone()
            if not exists:
                admin.execute(f'CREATE DATABASE "{POSTGRES_TEST_DB}"')
    except psycopg.OperationalError as error:
        unavailable("PostgreSQL", error)
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{POSTGRES_TEST_DB}"


@pytest.fixture
def postgres(postgres_url, monkeypatch) -> str:
    """An empty schema in the test database, set as HAPPYSAD_DATABASE_URL."""
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("DROP SCHEMA IF EXISTS public CASCADE")
        connection.execute("CREATE SCHEMA public")
    monkeypatch.setenv("HAPPYSAD_DATABASE_URL", postgres_url)
    from db.settings import reset_settings

    reset_settings()
    return postgres_url


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, monkeypatch) -> str:
    """Run a test on both databases: SQLite (the default) and PostgreSQL."""
    if request.param == "postgresql":
        return request.getfixturevalue("postgres")
    from db.settings import get_settings

    return get_settings().effective_database_url


@pytest.fixture
def redis_url(monkeypatch) -> str:
    """The tests' own Redis db, emptied, set as HAPPYSAD_BROKER_URL."""
    import redis

    client = redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=3)
    try:
        client.flushdb()
    except redis.exceptions.ConnectionError as error:
        unavailable("Redis", error)
    monkeypatch.setenv("HAPPYSAD_BROKER_URL", REDIS_TEST_URL)
    from db.settings import reset_settings

    reset_settings()
    yield REDIS_TEST_URL
    client.flushdb()


def made_once(tmp_path_factory, name: str, make, load):
    """What `make()` returns, made by one of the run's processes: under pytest-xdist the others
    wait for it (a file lock in the run's shared temporary folder) and `load` its file. Alone,
    it is simply made. `make(path)` writes the file at `path` and returns the value."""
    import fcntl

    if not XDIST_WORKER:
        return make(tmp_path_factory.mktemp(name) / name)
    path = tmp_path_factory.getbasetemp().parent / name  # shared by every xdist process
    with open(f"{path}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            return load(path)
        return make(path)


@pytest.fixture(scope="session")
def sample_folder(tmp_path_factory) -> Path:
    """A small generated happy/sad dataset (tests never use the shared real photos), written
    once per run."""
    from trainer.sample_data import write_sample_dataset

    def make(folder: Path) -> Path:
        write_sample_dataset(folder, per_class=24, image_size=48, seed=0)
        return folder

    return made_once(tmp_path_factory, "sample", make, lambda folder: folder)


def trained_once(tmp_path_factory, name: str, source: Path, params):
    """`train(source, params)` run once per run: the other xdist processes unpickle it (Keras
    pickles a model as its .keras file)."""
    import pickle

    from trainer.train import train

    def make(path: Path):
        result = train(str(source), params)
        partial = path.with_name(path.name + ".partial")
        partial.write_bytes(pickle.dumps(result))
        partial.rename(path)  # whole or absent: a process that failed here leaves no half
        return result

    return made_once(tmp_path_factory, name, make, lambda path: pickle.loads(path.read_bytes()))


@pytest.fixture(scope="session")
def tiny_training(sample_folder, tmp_path_factory):
    """One tiny training run (32 px) shared by the session; register it per test. The default
    architecture's epochs are its head's, on features computed once: 30 cost about a second and
    give a model better than the majority class (two left it at chance, and the promotion gate
    rightly held it back)."""
    from trainer.train import TrainingParams

    return trained_once(tmp_path_factory, "tiny_training.pickle", sample_folder,
                        TrainingParams(epochs=30, image_size=32, batch_size=16))


@pytest.fixture(scope="session")
def tiny_baseline_training(sample_folder, tmp_path_factory):
    """The tutorial's CNN (`baseline`), one epoch at 32 px, trained once per run: for the fault
    and load tests that send hundreds of images through real workers to prove delivery (every
    image's row once), not the model, and for the tests about something else than the model
    (cancelling, a full disk, retrying, waiting for a worker, file names, a poison batch, the
    registry's gate and promotions, the API's fuzzing, the review page's verdicts). The
    default architecture's face search costs about 100 times more per image (227 ms against
    2 ms a batch of 4 on this machine); its serving path through real workers stays proven by
    test_labelling, test_hostile_files, test_web_api and the browser tests. The faults that
    need batches still queued or under way when they strike (Redis killed or restarted, the
    database cut off, a host cut off) hold each batch with a sleep instead
    (tests.helpers.paced_app). Killing workers needs no slow model: a fresh pool process loads
    TensorFlow for seconds with its first batch held."""
    from trainer.train import TrainingParams

    return trained_once(tmp_path_factory, "tiny_baseline_training.pickle", sample_folder,
                        TrainingParams(architecture="baseline", epochs=1, image_size=32,
                                       batch_size=16))


@pytest.fixture
def registered_model(tiny_training) -> int:
    """The tiny model registered as production in this test's database; returns its version."""
    from db.session import session_scope
    from db.settings import get_settings
    from trainer.registry import register

    return register(tiny_training, promote="always", settings=get_settings(),
                    sessions=session_scope).version


@pytest.fixture
def registered_baseline_model(tiny_baseline_training) -> int:
    """tiny_baseline_training registered as production in this test's database (promoted
    whatever it scores: one epoch may be no better than the majority); returns its version."""
    from db.session import session_scope
    from db.settings import get_settings
    from trainer.registry import register

    return register(tiny_baseline_training, promote="always", settings=get_settings(),
                    sessions=session_scope).version


@pytest.fixture
def start_worker():
    """Start real worker processes; all are stopped at the end of the test."""
    workers: list[WorkerProcess] = []

    def start(name: str, **kwargs) -> WorkerProcess:
        worker = WorkerProcess(name, **kwargs)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()

