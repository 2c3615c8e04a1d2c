"""The tree is the architecture: imports point one way, and nothing heavy loads on import."""

import ast
import builtins
import importlib.metadata
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The tree, top down; each package may import only the ones below it.
LAYERS = [
    "happysad",   # the two faces: the CLI (commands/) and the web app (web/)
    "scheduler",  # the sending side of a job's life: the Celery app and its entry modules
                  # (worker_app, beat_app), submit, listing, outbox, resume and retry, the
                  # reconciler, the retrain schedule, this machine's workers
    "worker",     # what runs a task: tasks, classify, engine, report, retrain, identity
    "trainer",    # training and the model: data, architectures, registry, storage
    "db",         # settings, session, locks, tables, queries/, migrations/
]


def top_level_imports(path: Path) -> set[str]:
    """Every top-level package a module imports, at module level or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def imported_packages(path: Path) -> set[str]:
    return top_level_imports(path) & set(LAYERS)


def test_imports_point_one_way():
    for layer_index, layer in enumerate(LAYERS):
        allowed = set(LAYERS[layer_index:])
        for path in (ROOT / layer).rglob("*.py"):
            wrong = imported_packages(path) - allowed
            assert not wrong, f"{path.relative_to(ROOT)} imports {wrong} (against the layers)"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(path): path for layer in LAYERS for path in (ROOT / layer).rglob("*.py")}


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules a module imports, at module level or inside a function: `from a
    import b` is a.b when that is a module, else a; relative imports are resolved."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + [base] * bool(base))
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return {module for module in found if module in modules and module != name}


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle's modules (the strongly connected components of more than one module, by
    Tarjan's algorithm)."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(module: str) -> None:
        order[module] = low[module] = len(order)
        stack.append(module)
        for imported in sorted(graph[module]):
            if imported not in order:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in stack:
                low[module] = min(low[module], order[imported])
        if low[module] == order[module]:
            component = stack[stack.index(module):]
            del stack[stack.index(module):]
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(graph):
        if module not in order:
            visit(module)
    return cycles


def test_import_cycles_are_found():
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circles_among_our_modules():
    """Not even through an import inside a function: a circle is two modules that cannot be
    understood, moved or tested one without the other."""
    modules = project_modules()
    graph = {name: imported_modules(name, path, modules) for name, path in modules.items()}
    assert "db.session" in graph["scheduler.reconcile"]  # the graph sees our imports
    cycles = [" <-> ".join(cycle) + ": " + "; ".join(
        f"{module} imports {', '.join(sorted(graph[module] & set(cycle)))}" for module in cycle)
        for cycle in import_cycles(graph)]
    assert not cycles, "\n".join(cycles)


# SQLAlchemy's statement builders, and the start of a raw statement in a string. PRAGMAs (the
# SQLite connection's settings, db/session.py) configure a connection and query nothing.
SQL_BUILDERS = {"select", "insert", "update", "delete", "text", "exists", "func", "and_", "or_",
                "tuple_", "union", "literal_column"}
RAW_SQL = re.compile(r"\s*(SELECT|INSERT|UPDATE|DELETE|WITH)\s")
# Where SQL may be written: the queries, the migrations, and the tables' own DDL (an index's
# WHERE clause in db/tables.py).
SQL_HOMES = [("db", "queries"), ("db", "migrations"), ("db", "tables.py")]


def sql_outside_queries(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            builders = {alias.name for alias in node.names} & SQL_BUILDERS
            if builders or ".dialects" in node.module:
                found.append(f"line {node.lineno} imports {sorted(builders) or node.module}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and RAW_SQL.match(node.value):
            found.append(f"line {node.lineno} holds SQL {node.value[:40]!r}")
    return found


def test_sql_outside_queries_is_found(tmp_path):
    module = tmp_path / "module.py"
    module.write_text("from sqlalchemy import Engine, select\nQUERY = 'SELECT 1 FROM jobs'\n"
                      "PRAGMA = 'PRAGMA journal_mode=WAL'\nWORD = 'Select a file'\n")
    assert sql_outside_queries(module) == ["line 1 imports ['select']",
                                           "line 2 holds SQL 'SELECT 1 FROM jobs'"]


def modules_outside(homes: list[tuple[str, ...]]) -> Iterator[Path]:
    """Every module of the project's packages, as a path from the root, but those in `homes`
    (each the parts of a folder or a file's path)."""
    for layer in LAYERS:
        for path in (ROOT / layer).rglob("*.py"):
            relative = path.relative_to(ROOT)
            if not any(relative.parts[:len(home)] == home for home in homes):
                yield relative


def test_every_query_is_in_db_queries():
    """One home for SQL: db/queries/, one module per subject, each taking the caller's session
    (or connection). No statement built anywhere else, and no query module beside it."""
    for relative in modules_outside(SQL_HOMES):
        found = sql_outside_queries(ROOT / relative)
        assert not found, f"{relative}: SQL outside db/queries/: {'; '.join(found)}"


# The caller owns lifecycles (STYLE.md, principle 5): transactions are opened, and the settings
# read, by the entry points, and passed down. Where each may still be called:
LIFECYCLE_CALLS = {"session_scope", "get_settings"}
ENTRY_POINTS = [
    ("happysad",),  # the CLI's commands and the web app's dependencies, routes and pages
    ("worker", "tasks.py"),  # the Celery tasks
    ("scheduler", "worker_app.py"),  # the worker process's signal handlers
    ("scheduler", "beat.py"),  # beat's schedule and signal handlers (scheduler.beat_app)
    ("scheduler", "celery_app.py"),  # the app factory: its configuration, read in each process
    ("db", "settings.py"), ("db", "session.py"),  # the two themselves
    ("db", "locks.py"),  # where the engine's lock files live, beside the engine's own read
]
# Read deep still, each for its reason (to move out when a caller can hand it in cheaply):
DEEP_SETTINGS = [
    ("trainer", "faces.py"),  # the face detector, one per process, made wherever it is first
                              # called (training, evaluation, a worker's engine): its cache
    ("trainer", "storage", "bucket.py"),  # one s3fs filesystem per process, whatever URI opens
                                          # it (open_storage is called from every layer)
    ("scheduler", "presence.py"),  # the "waiting for a worker" hint of every job record
    ("scheduler", "workers.py"),  # the pid files of this machine's workers
]


def lifecycle_calls(path: Path) -> list[str]:
    """Each call of session_scope() or get_settings() in a module, by line."""
    return [f"line {node.lineno} calls {name}()" for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Call)
            and (name := getattr(node.func, "id", getattr(node.func, "attr", None)))
            in LIFECYCLE_CALLS]


def test_lifecycle_calls_are_found(tmp_path):
    module = tmp_path / "module.py"
    module.write_text("from db.session import session_scope\nimport db.settings\n"
                      "def f(sessions=session_scope):\n    with session_scope() as s:\n"
                      "        return db.settings.get_settings().home\n")
    assert lifecycle_calls(module) == ["line 4 calls session_scope()",
                                       "line 5 calls get_settings()"]


def test_sessions_and_settings_are_opened_by_the_entry_points():
    """Library code takes the session (or a session factory, where each step must commit on
    its own) and the settings from its caller: it never opens a transaction or reads the
    settings itself, so tests and other callers decide both."""
    for relative in modules_outside(ENTRY_POINTS + DEEP_SETTINGS):
        found = lifecycle_calls(ROOT / relative)
        assert not found, f"{relative}: {'; '.join(found)}: take it from the caller"
    for home in DEEP_SETTINGS:  # what is read deep is settings only, never a transaction
        found = [call for call in lifecycle_calls(ROOT.joinpath(*home)) if "session_scope" in call]
        assert not found, f"{'/'.join(home)}: {'; '.join(found)}"


def test_no_installed_distribution_claims_our_top_level_names():
    ours = set(LAYERS)
    for distribution in importlib.metadata.distributions():
        if distribution.metadata["Name"].lower() == "happysad":
            continue
        top_level = distribution.read_text("top_level.txt") or ""
        clash = ours & set(top_level.split())
        assert not clash, f"{distribution.metadata['Name']} also installs {clash}"


def test_cli_and_task_modules_do_not_import_tensorflow():
    code = ("import sys, happysad.cli, worker.tasks, scheduler.submit; "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_the_readme_states_the_same_direction():
    readme = (ROOT / "README.md").read_text()
    assert f"`{' -> '.join(LAYERS)}`" in readme


def test_worker_only_runs_tasks():
    """The sending side lives in scheduler/: nothing in worker/ sends a task, builds the Celery
    app or wires a Celery process's signals; its tasks are shared tasks, bound to whichever app
    loads them (scheduler.worker_app), so worker/ never imports the app above it."""
    for path in (ROOT / "worker").rglob("*.py"):
        text = path.read_text()
        relative = path.relative_to(ROOT)
        assert "send_task(" not in text, f"{relative} sends a task (the sending side's job)"
        assert "celery.signals" not in text, f"{relative} wires a Celery process's signals"
        assert "Celery(" not in text, f"{relative} builds a Celery app"


def test_trainer_and_db_know_nothing_of_celery():
    """Training is a library; running it on a schedule is a worker's job (worker/retrain.py)."""
    for layer in ("trainer", "db"):
        for path in (ROOT / layer).rglob("*.py"):
            assert "celery" not in top_level_imports(path), f"{path.relative_to(ROOT)} imports Celery"


def test_submit_loads_no_image_or_array_library(tmp_path):
    """`happysad submit` sniffs files and sends tasks by name: a real submit, in a fresh
    process, must leave OpenCV, NumPy, Pillow and TensorFlow unloaded."""
    import hashlib
    import os

    from db.session import session_scope
    from db.tables import ModelVersion
    from trainer.formats import PREPROCESSING_VERSION

    model_file = tmp_path / "model.keras"
    model_file.write_bytes(b"not read as a model by submit, only hashed")
    with session_scope() as session:  # a version row whose file passes the submitter's check
        session.add(ModelVersion(
            version=1, path=str(model_file),
            model_sha256=hashlib.sha256(model_file.read_bytes()).hexdigest(),
            architecture="baseline", class_names=["happy", "sad"], image_size=32,
            preprocessing_version=PREPROCESSING_VERSION, dataset_source="test",
            dataset_fingerprint="0" * 64, metrics={}, params={}, is_production=True))
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.jpg").write_bytes(b"\xff\xd8\xff\xe0 named like a photo")
    (photos / "no-extension").write_bytes(b"\x89PNG\r\n\x1a\n sniffed as a photo")
    (photos / "notes.txt").write_bytes(b"not a photo")
    code = ("import sys; from happysad.cli import main; sys.argv = ['happysad', 'submit', "
            f"{str(photos)!r}, '--json']\n"
            "try:\n    main()\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n"
            "print(sorted(name for name in ('cv2', 'numpy', 'PIL', 'tensorflow', 'keras') "
            "if name in sys.modules), file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ), check=True)
    submitted = json.loads(out.stdout)
    assert (submitted["total"], submitted["skipped_files"]) == (2, 1)
    assert out.stderr.strip().splitlines()[-1] == "[]"


def readme_tree() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## The tree is the architecture"):]
    return section.split("```")[1]


def test_the_readme_tree_names_every_module_and_only_real_ones():
    tree = readme_tree()
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", tree))
    for layer in LAYERS:
        for path in (ROOT / layer).rglob("*.py"):
            relative = path.relative_to(ROOT)
            if path.name == "__init__.py" or relative.parts[:2] == ("db", "migrations"):
                continue
            assert path.stem in words, f"README's tree does not mention {relative}"
    ours = {path.name for folder in ROOT.iterdir()  # the project's folders, not .venv's files
            if folder.is_dir() and not folder.name.startswith(".")
            for path in folder.rglob("*.py")}
    for named in re.findall(r"([A-Za-z_]+\.py)\b", tree):
        assert named in ours, f"README's tree names {named}, which is not there"


def test_every_error_type_of_the_project_has_the_one_root():
    """The CLI prints a HappysadError as one line and any other exception as a bug, with its
    traceback: so an error type of our own must derive from db.errors' root."""
    builtin_errors = {name for name in dir(builtins) if name.endswith(("Error", "Exception"))}
    classes = {}
    for layer in LAYERS:
        for path in (ROOT / layer).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ClassDef):
                    bases = {base.id if isinstance(base, ast.Name) else getattr(base, "attr", "")
                             for base in node.bases}
                    classes[node.name] = (bases, path.relative_to(ROOT))
    ours = {"HappysadError"}
    while True:  # every class that derives, directly or not, from the root
        more = {name for name, (bases, _) in classes.items() if bases & ours} - ours
        if not more:
            break
        ours |= more
    for name, (bases, path) in classes.items():
        if bases & builtin_errors and name not in ours and str(path) != "db/errors.py":
            raise AssertionError(f"{path}: {name} derives from {bases & builtin_errors} but "
                                 "not from db.errors.HappysadError")
