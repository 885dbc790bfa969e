#!/usr/bin/env bash
# Build dist/invalidator.zip, dist/reader.zip and dist/checker.zip for Lambda python3.12 on arm64.
#
# Each zip holds its handler package, the shared core streamcache/, and the
# runtime dependencies of requirements.txt as manylinux aarch64 wheels for
# CPython 3.12. boto3/botocore/s3transfer are left out (the python3.12 runtime
# provides them; BUNDLE_BOTO3=1 keeps them). Sources are compiled to .pyc by a
# Python 3.12 interpreter (Lambda cannot write __pycache__, and imports without
# .pyc are ~4x slower); the .pyc use unchecked-hash invalidation so zip
# timestamps cannot make them stale. Zips are deterministic: same inputs, same
# bytes, so deploy.sh's content-hashed S3 keys change only when code does.
#
# Usage: infra/package.sh            (env: PYTHON, PYTHON312, BUNDLE_BOTO3, DIST)
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
DIST=${DIST:-$ROOT/dist}
BUILD=$ROOT/build/lambda
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=$(command -v python3)
PLATFORMS=(--platform manylinux2014_aarch64 --platform manylinux_2_28_aarch64)
RUNTIME_SDK=(boto3 botocore s3transfer)

die() { echo "package.sh: $*" >&2; exit 1; }

find_python312() {
  local candidate
  for candidate in "${PYTHON312:-}" "$(command -v python3.12 || true)" \
    "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin/python3.12; do
    if [ -n "$candidate" ] && [ -x "$candidate" ] \
      && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

install_dependencies() {
  local target=$1
  rm -rf "$target"
  "$PYTHON" -m pip install --quiet --disable-pip-version-check --no-compile \
    "${PLATFORMS[@]}" --implementation cp --python-version 3.12 --only-binary=:all: \
    --target "$target" -r "$ROOT/requirements.txt"
  if [ "${BUNDLE_BOTO3:-0}" != 1 ]; then
    local pkg
    for pkg in "${RUNTIME_SDK[@]}"; do
      rm -rf "${target:?}/$pkg" "$target/$pkg"-*.dist-info
    done
  fi
}

stage_function() {
  local name=$1 deps=$2 stage=$BUILD/$1
  [ -d "$ROOT/$name" ] || die "missing package directory $name/"
  rm -rf "$stage"
  mkdir -p "$stage"
  cp -R "$deps"/. "$stage"/
  local pkg
  for pkg in streamcache "$name"; do
    # streamcache/local/ (demo, emulator, test fixtures) and the CLI are laptop tools:
    # never shipped, so no function can import them.
    (cd "$ROOT" && find "$pkg" \( -type d \( -name __pycache__ -o -path streamcache/local \) \) -prune \
      -o -type f ! -name '*.pyc' ! -path streamcache/cli.py ! -path streamcache/__main__.py -print |
      while read -r file; do
        mkdir -p "$stage/$(dirname "$file")"
        cp "$file" "$stage/$file"
      done)
  done
}

compile_pyc() {
  local stage=$1 python312
  if python312=$(find_python312); then
    "$python312" -m compileall -q -j 0 --invalidation-mode unchecked-hash "$stage" >/dev/null
  else
    echo "package.sh: WARNING no Python 3.12 found (set PYTHON312): shipping without .pyc," \
      "cold-start imports will be slower" >&2
  fi
}

write_zip() {
  local stage=$1 zip=$2
  "$PYTHON" - "$stage" "$zip" <<'PY'
import os, sys, zipfile
stage, out = sys.argv[1], sys.argv[2]
paths = sorted(
    os.path.relpath(os.path.join(d, f), stage) for d, _, files in os.walk(stage) for f in files
)
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
    for rel in paths:
        info = zipfile.ZipInfo(rel, date_time=(1980, 1, 1, 0, 0, 0))
        info.external_attr = 0o644 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        with open(os.path.join(stage, rel), "rb") as fh:
            zf.writestr(info, fh.read())
PY
}

report() {
  local zip=$1
  "$PYTHON" - "$zip" <<'PY'
import os, sys, zipfile
path = sys.argv[1]
with zipfile.ZipFile(path) as zf:
    unzipped = sum(i.file_size for i in zf.infolist())
    count = len(zf.infolist())
print(f"{os.path.relpath(path)}: {os.path.getsize(path) / 2**20:.1f} MiB zipped, "
      f"{unzipped / 2**20:.1f} MiB unzipped (Lambda limit 250), {count} files")
PY
}

main() {
  mkdir -p "$DIST" "$BUILD"
  install_dependencies "$BUILD/deps"
  local name
  for name in invalidator reader checker; do
    stage_function "$name" "$BUILD/deps"
    compile_pyc "$BUILD/$name"
    rm -f "$DIST/$name.zip"
    write_zip "$BUILD/$name" "$DIST/$name.zip"
    report "$DIST/$name.zip"
  done
}

main "$@"
