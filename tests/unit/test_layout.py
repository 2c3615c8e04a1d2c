"""The tree is the architecture: imports point one way, and nothing heavy loads on import."""

import ast
import importlib.metadata
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ["happysad", "scheduler", "worker", "trainer", "db"]  # each may import only later ones


def imported_packages(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names & set(LAYERS)


def test_imports_point_one_way():
    for layer_index, layer in enumerate(LAYERS):
        allowed = set(LAYERS[layer_index:])
        for path in (ROOT / layer).rglob("*.py"):
            wrong = imported_packages(path) - allowed
            assert not wrong, f"{path.relative_to(ROOT)} imports {wrong} (against the layers)"


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
