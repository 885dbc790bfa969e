"""infra/deploy.sh and infra/package.sh, without AWS: a fake `aws` records its calls."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "infra" / "deploy.sh"
BASH = shutil.which("bash") or "/bin/bash"
FAKE_PACKAGE = """#!/usr/bin/env bash
echo package >> "$AWS_CALLS"
for name in invalidator reader redriver checker rotator streamcache-layer; do
  echo "$name $(date +%N)" > "$DIST/$name.zip"
done
"""
FAKE_AWS = """#!/usr/bin/env bash
echo "$*" >> "$AWS_CALLS"
case "$1 $2" in
  "sts get-caller-identity") exit "${STS_RC:-0}" ;;
  "ec2 describe-managed-prefix-lists") echo pl-0123abcd ;;
esac
"""


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BASH, str(DEPLOY), *args], capture_output=True, text=True, env=env, timeout=30, check=False
    )


@pytest.fixture
def fake_env(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    aws = bin_dir / "aws"
    aws.write_text(FAKE_AWS)
    aws.chmod(0o755)
    package = bin_dir / "package"
    package.write_text(FAKE_PACKAGE)
    package.chmod(0o755)
    dist = tmp_path / "dist"
    dist.mkdir()
    for name in ("invalidator", "reader"):
        (dist / f"{name}.zip").write_bytes(b"stale " + name.encode())
    return {
        "PACKAGE": str(package),
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "AWS_CALLS": str(tmp_path / "calls"),
        "AWS_REGION": "us-east-1",
        "DIST": str(dist),
        "HOME": str(tmp_path),
    }


@pytest.mark.parametrize("script", ["deploy.sh", "package.sh"])
def test_scripts_parse_and_are_executable(script: str) -> None:
    path = REPO / "infra" / script
    assert os.access(path, os.X_OK)
    subprocess.run([BASH, "-n", str(path)], check=True)


def test_deploy_without_aws_cli_says_so_and_exits_2(tmp_path: Path) -> None:
    # a PATH with only what the script needs before its aws check: no aws anywhere
    (tmp_path / "dirname").symlink_to(shutil.which("dirname") or "/usr/bin/dirname")
    run = _run(["stack", "bucket"], {"PATH": str(tmp_path), "HOME": str(tmp_path)})
    assert run.returncode == 2
    assert run.stderr.strip().count("\n") == 0 and "aws CLI is not installed" in run.stderr


def test_deploy_without_credentials_exits_2(fake_env: dict[str, str]) -> None:
    run = _run(["stack", "bucket"], {**fake_env, "STS_RC": "255"})
    assert run.returncode == 2
    assert "get-caller-identity" in run.stderr and run.stderr.strip().count("\n") == 0


def test_deploy_without_arguments_prints_usage(fake_env: dict[str, str]) -> None:
    run = _run([], fake_env)
    assert run.returncode == 2 and "usage:" in run.stderr


def test_deploy_uploads_hashed_zips_and_deploys_with_overrides(fake_env: dict[str, str]) -> None:
    run = _run(["mystack", "mybucket", "RangeKeyName=sk"], fake_env)
    assert run.returncode == 0, run.stderr
    calls = Path(fake_env["AWS_CALLS"]).read_text().splitlines()
    uploads = [c for c in calls if c.startswith("s3 cp")]
    assert len(uploads) == 6  # invalidator, reader, redriver, checker, rotator, layer
    assert all("s3://mybucket/streamcache/mystack/" in c for c in uploads)
    [deploy] = [c for c in calls if c.startswith("cloudformation deploy")]
    assert "--capabilities CAPABILITY_NAMED_IAM" in deploy
    assert "--stack-name mystack" in deploy
    for override in ("CodeBucket=mybucket", "DynamoDbPrefixListId=pl-0123abcd", "RangeKeyName=sk"):
        assert override in deploy
    assert "InvalidatorCodeKey=streamcache/mystack/" in deploy
    assert "CheckerCodeKey=streamcache/mystack/" in deploy
    assert calls[-1].startswith("cloudformation describe-stacks")


def test_deploy_always_packages_even_when_zips_exist(fake_env: dict[str, str]) -> None:
    """Stale zips in dist/ must never be deployed: packaging is deterministic, so always run it."""
    run = _run(["mystack", "mybucket"], fake_env)
    assert run.returncode == 0, run.stderr
    calls = Path(fake_env["AWS_CALLS"]).read_text().splitlines()
    assert calls.index("package") < min(i for i, c in enumerate(calls) if c.startswith("s3 cp"))
    assert b"stale" not in (Path(fake_env["DIST"]) / "reader.zip").read_bytes()


def test_makefile_deploy_goes_through_deploy_sh() -> None:
    makefile = (REPO / "Makefile").read_text()
    recipe = makefile.split("\ndeploy:", 1)[1].split("\n\n", 1)[0]
    assert "infra/deploy.sh" in recipe


def test_deploy_hashes_with_shasum_where_sha256sum_is_missing(
    fake_env: dict[str, str], tmp_path: Path
) -> None:
    """macOS has no sha256sum, only shasum -a 256: a PATH without sha256sum still deploys."""
    tools = tmp_path / "tools"
    tools.mkdir()
    for tool in ("bash", "dirname", "cut", "date", "cat"):
        (tools / tool).symlink_to(shutil.which(tool) or f"/usr/bin/{tool}")
    shasum = tools / "shasum"
    shasum.write_text(
        '#!/bin/sh\n[ "$1 $2" = "-a 256" ] || exit 9\necho shasum >> "$AWS_CALLS"\nexec '
        f'{shutil.which("sha256sum")} "$3"\n'
    )
    shasum.chmod(0o755)
    env = {**fake_env, "PATH": f"{Path(fake_env['PACKAGE']).parent}:{tools}"}
    run = _run(["mystack", "mybucket"], env)
    assert run.returncode == 0, run.stderr
    calls = Path(fake_env["AWS_CALLS"]).read_text().splitlines()
    assert calls.count("shasum") == 6
    keys = [c.split("s3://mybucket/")[1] for c in calls if c.startswith("s3 cp")]
    assert all(len(k.split("/")[2]) == 16 for k in keys), keys
