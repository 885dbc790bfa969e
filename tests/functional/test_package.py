"""``pip install .``: the wheel holds the core and the read side, and imports in a clean virtualenv.

Offline and quick: the wheel is built without build isolation (hatchling is a
dev requirement), installed with ``--no-deps`` into a fresh venv that has no
pip of its own, and the runtime dependencies (boto3, redis, orjson) are made
reachable by a ``.pth`` line to this interpreter's site-packages, after the
venv's own. The probe runs outside the source tree, so only the wheel's
``streamcache`` can be found.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAPTOP_ONLY = ("streamcache/local/", "streamcache/cli.py", "streamcache/__main__.py")

PROBE = """
import json, sys
import streamcache
heavy = ("boto3", "redis", "streamcache.read.table", "streamcache.local")
cheap = sorted(m for m in heavy if m in sys.modules)
from streamcache import Cache, CachedTable
import streamcache.read.table, streamcache.protocol
try:
    import streamcache.local
    local = True
except ModuleNotFoundError:
    local = False
print(json.dumps({
    "file": streamcache.__file__, "version": streamcache.__version__, "loaded_at_import": cheap,
    "names": [Cache.__name__, CachedTable.__name__], "local": local, "all": streamcache.__all__,
}))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"]
    subprocess.run([*command, "--wheel-dir", str(out), str(ROOT)], check=True, capture_output=True)
    (built,) = out.glob("streamcache-*.whl")
    return built


def test_the_wheel_holds_the_core_and_read_side_and_no_laptop_tools(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert {"streamcache/py.typed", "streamcache/lua/lease.lua", "streamcache/read/table.py"} <= set(names)
    assert [n for n in names if n.startswith(LAPTOP_ONLY)] == []
    assert not [n for n in names if n.startswith(("tests/", "bench/", "reader/", "invalidator/"))]
    metadata = zipfile.ZipFile(wheel).read(f"{wheel.name.split('-py3')[0]}.dist-info/METADATA").decode()
    assert "Requires-Dist: boto3" in metadata and "Requires-Dist: redis[hiredis]" in metadata


def test_the_wheel_imports_in_a_clean_virtualenv(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps"]
    subprocess.run([*install, "--no-index", str(wheel)], check=True, capture_output=True)
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    (site / "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    probe_run = [str(python), "-c", PROBE]
    done = subprocess.run(probe_run, check=False, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    probe = json.loads(done.stdout)
    assert probe["file"].startswith(str(site))  # the wheel's copy, not the source tree
    assert probe["loaded_at_import"] == []  # `import streamcache` loads no boto3, redis or laptop tools
    assert probe["names"] == ["Cache", "CachedTable"]
    assert probe["local"] is False
    assert set(probe["all"]) >= {"Cache", "CachedTable"}
    assert probe["version"] == wheel.name.split("-")[1]
