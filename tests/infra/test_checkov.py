"""checkov: no failed checks (skips carry a reason in Metadata).

checkov lives in its own virtualenv (requirements-checkov.txt; recent releases
pin an older boto3 than ours). `make test` installs it into .venv-checkov and
sets CHECKOV_BIN; a run without it fails here rather than skipping.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest


def _checkov() -> str | None:
    return os.environ.get("CHECKOV_BIN") or shutil.which("checkov")


REPO = Path(__file__).resolve().parents[2]
TEMPLATES = ["infra/cloudformation.json", "infra/table.json", "infra/examples/consumer.json"]


@pytest.mark.parametrize("path", TEMPLATES)
def test_checkov_finds_no_failed_checks(path: str) -> None:
    template_path = REPO / path
    if _checkov() is None:
        pytest.fail("checkov not found: run `make test` (installs .venv-checkov) or set CHECKOV_BIN")
    command = [str(_checkov()), "-f", str(template_path), "--framework", "cloudformation"]
    run = subprocess.run(
        [*command, "-o", "json", "--skip-download"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    report = json.loads(run.stdout)
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert failed == []
    assert report["summary"]["parsing_errors"] == 0
