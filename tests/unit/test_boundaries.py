"""The package boundaries the README promises, checked on the source and on a fresh interpreter."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAPTOP_ONLY = {"streamcache/cli.py", "streamcache/__main__.py"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def shipped_modules() -> list[Path]:
    """What infra/package.sh puts in the zips: streamcache/ less local/ and the CLI, plus both handlers."""
    core = [f for f in ROOT.glob("streamcache/**/*.py") if "local" not in f.relative_to(ROOT).parts]
    files = [*core, *ROOT.glob("invalidator/*.py"), *ROOT.glob("reader/*.py")]
    return [f for f in files if str(f.relative_to(ROOT)) not in LAPTOP_ONLY]


@pytest.mark.parametrize("path", shipped_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_code_never_imports_laptop_tools(path: Path) -> None:
    assert not {m for m in imported_modules(path) if m.startswith("streamcache.local")}


@pytest.mark.parametrize(("package", "other"), [("invalidator", "reader"), ("reader", "invalidator")])
def test_the_functions_never_import_each_other(package: str, other: str) -> None:
    for path in ROOT.glob(f"{package}/*.py"):
        assert not {m for m in imported_modules(path) if m.split(".")[0] == other}, path


@pytest.mark.parametrize("handler", ["invalidator.handler", "reader.handler"])
def test_a_handler_import_loads_no_boto3(handler: str) -> None:
    """boto3 is ~120 ms of cold start (bench.coldstart); it loads on the first call that needs a client."""
    probe = f"import sys, {handler}; print('boto3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    "path",
    [f for f in ROOT.glob("streamcache/**/*.py") if "local" not in f.relative_to(ROOT).parts],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_the_core_never_imports_a_function(path: Path) -> None:
    """The library (streamcache, streamcache.read) is what both functions build on, never the reverse."""
    assert not {m for m in imported_modules(path) if m.split(".")[0] in ("reader", "invalidator")}


def test_import_streamcache_loads_neither_boto3_nor_redis() -> None:
    probe = "import sys, streamcache; print(sorted(m for m in ('boto3', 'redis') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
