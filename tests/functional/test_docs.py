"""The docs are checked like code: the configuration table against Settings, links against the
repository, and every runnable ``sh`` block of the README and docs/local.md is run.

Convention (stated in docs/local.md): a fenced ``sh`` block whose first line is a comment starting
``# not run:`` is not run; the comment says why and which test covers it instead.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from streamcache.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
RUN = [README, ROOT / "docs" / "local.md"]
NOT_RUN = "# not run:"
# A repository path in backticks: a source, data or docs file, or a folder (S3 keys and metric names
# that share a prefix, like `streamcache/reader.zip`, are not files here).
CITED_PATH = re.compile(
    r"`((?:streamcache|invalidator|reader|tests|infra|events|bench|docs)/"
    r"(?:[\w./-]*\.(?:py|lua|json|md|sh|txt|toml|png)|[\w./-]*/))`"
)
LINK = re.compile(r"\]\(([^)\s]+)\)")


class Recorder(Mapping[str, str]):
    """An environment that remembers every variable asked for."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values, self.asked = values, set[str]()

    def __getitem__(self, name: str) -> str:
        self.asked.add(name)
        return self.values[name]

    def get(self, name: str, default: object = None) -> object:  # type: ignore[override]
        self.asked.add(name)
        return self.values.get(name, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)


def configuration_table() -> set[str]:
    section = README.read_text().split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([A-Z0-9_]+)` \|", section, flags=re.M))


def sh_blocks(page: Path) -> list[str]:
    return re.findall(r"^```sh\n(.*?)^```", page.read_text(), flags=re.M | re.S)


def test_the_configuration_table_lists_exactly_what_settings_reads() -> None:
    env = Recorder({"REDIS_URL": "redis://localhost:6379/0"})
    Settings.from_env(env)
    documented = configuration_table()
    assert env.asked - documented == set(), "read by Settings but not in the README's table"
    assert documented - env.asked == set(), "in the README's table but not read by Settings"


def ignored(path: str) -> bool:
    """An output location git ignores (``bench/quick/``): named in the docs, never committed."""
    done = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT, check=False)
    return done.returncode == 0


def test_no_page_cites_a_file_that_is_not_in_the_repository() -> None:
    missing = []
    for page in PAGES:
        text = page.read_text()
        for target in LINK.findall(text):
            path = target.split("#", 1)[0]
            if not path or "://" in path or path.startswith("mailto:"):
                continue
            resolved = (page.parent / path).resolve()
            if not resolved.exists():
                missing.append(f"{page.name}: link {target}")
        for cited in CITED_PATH.findall(text):
            if not (ROOT / cited).exists() and not ignored(cited):
                missing.append(f"{page.name}: `{cited}`")
    assert missing == []


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.M | re.S)
    headings = re.findall(r"^#+ (.+)$", text, flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def test_every_anchor_named_by_a_link_exists() -> None:
    broken = []
    for page in PAGES:
        for target in LINK.findall(page.read_text()):
            path, _, anchor = target.partition("#")
            if not anchor or "://" in path:
                continue
            linked = (page.parent / path).resolve() if path else page
            if linked.exists() and anchor not in anchors(linked):
                broken.append(f"{page.name}: {target}")
    assert broken == []


# Spelled in pieces so that this file itself cites nothing.
OUTSIDE_DOCUMENTS = ("CON" + "TRACT", "../" + "shared")


def test_nothing_cites_documents_outside_the_project() -> None:
    """Promises are stated in the project's own words, in its docs, code and tests."""
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
    sources = [ROOT / name for name in tracked.stdout.split() if name.endswith((".py", ".md", ".lua", ".sh"))]
    citing = [
        str(path.relative_to(ROOT))
        for path in sources
        if path != Path(__file__) and any(word in path.read_text() for word in OUTSIDE_DOCUMENTS)
    ]
    assert citing == []


def test_the_readme_reads_in_ten_minutes() -> None:
    assert len(README.read_text().splitlines()) <= 300


@pytest.mark.parametrize("page", RUN, ids=lambda p: p.name)
def test_commands_go_through_make_or_the_virtualenv(page: Path) -> None:
    """Outside the virtualenv a bare ``python -m streamcache`` fails: commands say ``.venv/bin/...``."""
    inline = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", page.read_text(), flags=re.S))
    lines = [line.strip() for block in sh_blocks(page) for line in block.splitlines()]
    bare = [c for c in lines + inline if re.match(r"(python3?|pip|pytest|ruff|mypy) ", c)]
    assert bare == [], page.name


@pytest.mark.parametrize("page", RUN, ids=lambda p: p.name)
def test_every_not_run_block_says_why(page: Path) -> None:
    blocks = sh_blocks(page)
    skipped = [b for b in blocks if b.startswith(NOT_RUN)]
    assert len(skipped) < len(blocks), "no runnable block at all"
    for block in skipped:
        reason = block.splitlines()[0].removeprefix(NOT_RUN).strip()
        assert len(reason.split()) >= 4, block


def make_shim(bin_dir: Path) -> None:
    """``make`` that takes the shared virtualenv as installed: the test must not reinstall it."""
    real = subprocess.run(["which", "make"], capture_output=True, text=True, check=True).stdout.strip()
    shim = bin_dir / "make"
    shim.write_text(f'#!/bin/sh\nexec {real} -o .venv/.installed "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IEXEC)


@pytest.mark.parametrize("page", RUN, ids=lambda p: p.name)
def test_runnable_sh_blocks_run(page: Path, tmp_path: Path) -> None:
    blocks = [b for b in sh_blocks(page) if not b.startswith(NOT_RUN)]
    script = ["set -euo pipefail"]
    for number, block in enumerate(blocks, start=1):
        script += [f"echo '>>> block {number}'", block]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    make_shim(bin_dir)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("REDIS_", "AWS_", "KEY_SCHEMA", "DYNAMODB_", "CACHE_", "TABLE_NAME", "ALLOWED_"))
    }
    env.update(TMPDIR=str(tmp_path), PATH=f"{bin_dir}:{env.get('PATH', '')}")
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f">>> block {len(blocks)}" in done.stdout


def test_make_install_says_how_to_use_the_virtualenv(tmp_path: Path) -> None:
    make_shim(tmp_path)
    done = subprocess.run(
        [str(tmp_path / "make"), "--no-print-directory", "install"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "activate it with '. .venv/bin/activate', or call .venv/bin/python directly" in done.stdout
