"""The deployment files against the code: no Docker engine runs here, so docker-compose.yml,
.env.example and the Dockerfile are parsed and every setting, command and module they name is
checked to exist, so a renamed setting or command fails here rather than in a deployment."""

import os
import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import typer
import yaml
from celery import Celery

from db.settings import Settings
from happysad.cli import app as cli_app
from worker.task_names import LABELLING_QUEUE, TRAINING_QUEUE

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text()
SERVICES = yaml.safe_load(COMPOSE_TEXT)["services"]
ENV_EXAMPLE = ROOT / ".env.example"
APP_SERVICES = ["migrate", "worker", "trainer", "scheduler", "web", "flower"]
SETTING_NAMES = {f"HAPPYSAD_{field.upper()}" for field in Settings.model_fields}


def env_example_lines() -> list[tuple[str, str, str]]:
    """(name, value, the line before) for every assignment in .env.example."""
    lines = ENV_EXAMPLE.read_text().splitlines()
    return [(match[1], match[2].strip(), lines[number - 1] if number else "")
            for number, line in enumerate(lines)
            if (match := re.fullmatch(r"([A-Z][A-Z0-9_]*)=(.*)", line))]


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def test_required_services_exist():
    assert set(SERVICES) >= {"redis", "db", "minio", "minio-setup", *APP_SERVICES}
    assert "healthcheck" in SERVICES["db"]


def test_app_services_share_one_image_and_env_file():
    builds = {(str(SERVICES[name]["build"]), SERVICES[name].get("image")) for name in APP_SERVICES}
    assert len(builds) == 1
    for name in APP_SERVICES:
        assert ".env" in as_list(SERVICES[name]["env_file"]), name


def test_app_services_wait_for_the_database_and_the_migration():
    for name in APP_SERVICES:
        depends_on = SERVICES[name]["depends_on"]
        assert depends_on["db"]["condition"] == "service_healthy", name
        if name != "migrate":
            assert depends_on["migrate"]["condition"] == "service_completed_successfully", name


def test_worker_scales_and_scheduler_is_single():
    assert "container_name" not in SERVICES["worker"]
    assert not SERVICES["worker"].get("ports")  # a fixed host port allows one replica only
    assert SERVICES["scheduler"]["deploy"]["replicas"] == 1


def test_every_happysad_variable_named_is_a_setting():
    named = set(re.findall(r"HAPPYSAD_[A-Z0-9_]+", COMPOSE_TEXT + ENV_EXAMPLE.read_text()))
    assert named <= SETTING_NAMES, named - SETTING_NAMES


def test_env_example_documents_every_setting_with_a_reason():
    entries = env_example_lines()
    assert {name for name, _, _ in entries} >= SETTING_NAMES | {
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"}
    for name, _, before in entries:
        assert before.startswith("# "), f"{name} needs a comment line saying why to set it"


def test_env_example_values_are_the_defaults(monkeypatch):
    monkeypatch.delenv("HAPPYSAD_HOME")  # the isolated home fixture, not a default
    from_example, defaults = Settings(_env_file=ENV_EXAMPLE), Settings(_env_file=None)
    for name, value, _ in env_example_lines():
        if name in SETTING_NAMES:
            field = name.removeprefix("HAPPYSAD_").lower()
            if value:
                assert getattr(from_example, field) == getattr(defaults, field), name
            else:  # empty means unset: a default of None, or HAPPYSAD_HOME's per-user folder
                assert (Settings.model_fields[field].default is None
                        or getattr(from_example, field) == getattr(defaults, field)), name


def cli_command(args: list[str]):
    """The `happysad` subcommand that `args` invoke, checking each option it is given exists.
    Groups are recognised by their `commands` (Typer may vendor its own copy of click)."""
    command = typer.main.get_command(cli_app)
    for arg in args:
        if arg.startswith("-"):
            options = {option for param in command.params for option in param.opts}
            assert arg.split("=")[0] in options, f"{command.name} has no {arg}"
        elif arg in getattr(command, "commands", {}):
            command = command.commands[arg]
    assert not hasattr(command, "commands") or command.invoke_without_command, args
    return command


@pytest.mark.parametrize("service", ["migrate", "worker", "trainer", "scheduler", "web"])
def test_compose_commands_are_happysad_commands(service):
    program, *args = SERVICES[service]["command"]
    assert program == "happysad"
    cli_command(args)
    if "--queues" in args:
        queues = args[args.index("--queues") + 1].split(",")
        assert set(queues) <= {LABELLING_QUEUE, TRAINING_QUEUE}


def test_web_publishes_its_port_on_this_machine_only():
    program, *args = SERVICES["web"]["command"]
    port = args[args.index("--port") + 1]
    assert SERVICES["web"]["ports"] == [f"127.0.0.1:{port}:{port}"]


def test_flower_points_at_the_celery_app():
    program, *args = SERVICES["flower"]["command"]
    assert program == "celery" and "flower" in args
    module = __import__(args[args.index("-A") + 1], fromlist=["app"])
    assert isinstance(module.app, Celery)


def test_dockerfile_installs_the_runtime_lock_then_the_project():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install --no-deps --require-hashes -r requirements.lock" in dockerfile
    assert re.search(r"pip install --no-deps (\S+ )*\.$", dockerfile, re.MULTILINE)
    assert re.search(r"^USER (?!root)", dockerfile, re.MULTILINE)
    assert "HAPPYSAD_HOME=/data" in dockerfile


def locked_versions(lock: str) -> dict[str, list[str]]:
    """Package name -> its pinned versions in a lock file (a universal lock may pin one package
    twice, under different Python-version markers)."""
    pins: dict[str, list[str]] = {}
    for match in re.finditer(r"^([A-Za-z0-9._-]+)==(\S+)", (ROOT / lock).read_text(), re.MULTILINE):
        pins.setdefault(canonical(match[1]), []).append(match[2])
    return pins


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_names(requirements: list[str]) -> set[str]:
    names = {canonical(re.match(r"[A-Za-z0-9._-]+", requirement)[0])
             for requirement in requirements}
    return names - {"happysad"}  # the dev extra names the project's own flower extra


def test_locks_pin_every_dependency_of_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    runtime = requirement_names(project["dependencies"] + extras["flower"])
    everything = runtime | requirement_names([r for rs in extras.values() for r in rs])
    assert runtime <= set(locked_versions("requirements.lock")), "run make lock"
    assert everything <= set(locked_versions("requirements-dev.lock")), "run make lock"


def test_runtime_lock_is_the_dev_lock_s_subset_at_the_same_versions():
    dev = locked_versions("requirements-dev.lock")
    for name, versions in locked_versions("requirements.lock").items():
        assert set(versions) <= set(dev.get(name, [])), name


def test_every_pin_carries_a_hash():
    for lock in ("requirements.lock", "requirements-dev.lock"):
        lines = (ROOT / lock).read_text().splitlines()
        for number, line in enumerate(lines):
            if re.match(r"\S+==", line):
                assert lines[number + 1].strip().startswith("--hash=sha256:"), (lock, line)


def test_make_installs_from_the_lock():
    makefile = (ROOT / "Makefile").read_text()
    assert "--require-hashes -r $(LOCK)" in makefile and "LOCK := requirements-dev.lock" in makefile


def test_ci_runs_make_test():
    commands = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
                if not line.lstrip().startswith("#")]
    assert "make test" in commands


def test_the_web_apps_templates_and_static_files_are_packaged():
    import fnmatch
    import tomllib

    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["happysad"]
    package = ROOT / "happysad"
    files = [path for folder in ("web/templates", "web/static")
             for path in (package / folder).rglob("*") if path.is_file()]
    assert files
    for path in files:
        relative = str(path.relative_to(package))
        assert any(fnmatch.fnmatch(relative, pattern) for pattern in globs), relative


LONG_RUNNING = ["redis", "db", "minio", "worker", "trainer", "scheduler", "web", "flower"]
WORKER_PROCESS_BYTES = 1.1e9  # measured: one labelling process, TensorFlow and the model loaded


def megabytes(limit: str) -> float:
    number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)([kmg])", limit.lower()).groups()
    return float(number) * {"k": 1e-3, "m": 1, "g": 1e3}[unit]


def test_every_long_running_service_has_a_healthcheck():
    for name in LONG_RUNNING:
        check = SERVICES[name].get("healthcheck", {})
        assert check.get("test") and check["test"][0] in ("CMD", "CMD-SHELL"), name
    for name in ("worker", "trainer"):  # a Celery ping through the broker, to this worker
        test = " ".join(SERVICES[name]["healthcheck"]["test"])
        assert "celery -A scheduler.celery_app inspect ping --destination celery@$$(hostname)" in test
    web_port = SERVICES["web"]["command"][SERVICES["web"]["command"].index("--port") + 1]
    assert f"http://127.0.0.1:{web_port}/login" in " ".join(SERVICES["web"]["healthcheck"]["test"])
    assert "/healthcheck" in " ".join(SERVICES["flower"]["healthcheck"]["test"])


def test_the_web_healthcheck_path_is_open_when_reads_need_the_token():
    from fastapi.testclient import TestClient

    from happysad.web.app import create_app

    answer = TestClient(create_app(reads_need_token=True)).get("/login")
    assert answer.status_code == 200


def test_every_image_is_pinned():
    for name, service in SERVICES.items():
        image = service.get("image")
        if image is None or image == "happysad:local":
            continue
        repository, _, tag = image.partition(":")
        assert tag and tag != "latest" and re.search(r"\d", tag), (name, image)
        if repository.startswith("minio/"):
            assert re.fullmatch(r"RELEASE\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ", tag), (name, image)


def test_memory_limits_hold_what_each_service_runs():
    for name in LONG_RUNNING:
        assert "mem_limit" in SERVICES[name], name
    command = SERVICES["worker"]["command"]
    processes = int(command[command.index("--concurrency") + 1])
    assert megabytes(SERVICES["worker"]["mem_limit"]) >= processes * WORKER_PROCESS_BYTES / 1e6


def test_the_quickstart_demands_a_token_instead_of_restarting_web_forever():
    token = SERVICES["web"]["environment"]["HAPPYSAD_API_TOKEN"]
    match = re.fullmatch(r"\$\{HAPPYSAD_API_TOKEN:\?(.+)\}", token)
    assert match and "16 characters" in match[1] and "secrets.token_urlsafe" in match[1]
    for name, value in SERVICES["web"]["environment"].items():  # still the shared wiring
        if name != "HAPPYSAD_API_TOKEN":
            assert SERVICES["worker"]["environment"][name] == value


@pytest.mark.skipif(os.geteuid() != 0, reason="the target installs only as root")
def test_make_installs_chromium_in_one_line_with_apt_in_a_log(tmp_path):
    """`make test` as root installs chromium when it is missing: one line says so and where
    apt's output went (a stand-in apt-get prints 500 lines; nothing is installed)."""
    bin_folder = tmp_path / "bin"
    bin_folder.mkdir()
    apt = bin_folder / "apt-get"
    apt.write_text("#!/bin/sh\nfor i in $(seq 500); do echo \"apt line $i\"; done\n")
    apt.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_folder}:{os.environ['PATH']}")
    made = subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), "chromium",
                           f"CHROMIUM={tmp_path}/no-chromium", f"VENV={tmp_path}/venv"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert made.returncode == 0, made.stderr
    assert made.stdout.splitlines() == [f"installing chromium for the browser tests (apt's "
                                        f"output: {tmp_path}/venv/chromium-install.log)"]
    assert made.stderr == ""
    assert "apt line 500" in (tmp_path / "venv" / "chromium-install.log").read_text()
