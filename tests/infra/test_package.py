"""infra/package.sh end to end, offline: a stand-in for pip drops tiny fake wheels into --target.

Everything else is the real script: staging, the laptop-tool exclusions, the
layer's python/ layout, the runtime SDK left out, deterministic zips.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BASH = shutil.which("bash") or "/bin/bash"
# A python that fakes `-m pip install --target DIR ...` and runs everything else for real.
FAKE_PYTHON = f"""#!/bin/sh
if [ "$1 $2 $3" = "-m pip install" ]; then
  while [ $# -gt 0 ]; do [ "$1" = "--target" ] && target=$2; shift; done
  for pkg in redis boto3 botocore s3transfer aws_lambda_powertools; do
    mkdir -p "$target/$pkg" "$target/$pkg-1.0.dist-info"
    echo "# fake $pkg" > "$target/$pkg/__init__.py"
  done
  exit 0
fi
exec {sys.executable} "$@"
"""


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("package")
    python = root / "python"
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    env = {**os.environ, "PYTHON": str(python), "DIST": str(root / "dist"), "BUILD": str(root / "build")}
    env.pop("BUNDLE_BOTO3", None)
    run = subprocess.run(
        [BASH, str(REPO / "infra" / "package.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    return root / "dist"


def _names(zip_path: Path) -> set[str]:
    with zipfile.ZipFile(zip_path) as archive:
        return set(archive.namelist())


def test_layer_has_the_python_layout_the_core_and_its_dependencies(dist: Path) -> None:
    names = _names(dist / "streamcache-layer.zip")
    assert "python/streamcache/__init__.py" in names
    assert "python/streamcache/lua/apply.lua" in names
    assert "python/redis/__init__.py" in names and "python/aws_lambda_powertools/__init__.py" in names
    assert all(n.startswith("python/") for n in names)


def test_layer_leaves_out_boto3_and_the_laptop_tools(dist: Path) -> None:
    names = _names(dist / "streamcache-layer.zip")
    assert not [n for n in names if n.startswith(("python/boto3", "python/botocore", "python/s3transfer"))]
    assert not [n for n in names if n.startswith("python/streamcache/local/")]
    assert "python/streamcache/cli.py" not in names and "python/streamcache/__main__.py" not in names
    assert not [n for n in names if n.startswith(("python/invalidator/", "python/reader/", "python/tests/"))]


@pytest.mark.parametrize("name", ["invalidator", "reader", "redriver"])
def test_function_zips_hold_their_handler_and_the_core(dist: Path, name: str) -> None:
    names = _names(dist / f"{name}.zip")
    assert f"{name}/__init__.py" in names and "streamcache/__init__.py" in names
    assert not [n for n in names if n.startswith(("streamcache/local/", "boto3/"))]


def test_rotator_zip_holds_only_the_rotator(dist: Path) -> None:
    assert {n.split("/")[0] for n in _names(dist / "rotator.zip")} == {"rotator"}
