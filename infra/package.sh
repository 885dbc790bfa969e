#!/usr/bin/env bash
# Build the Lambda zips for python3.12 on arm64: dist/invalidator.zip,
# dist/reader.zip, dist/redriver.zip, dist/checker.zip, and dist/rotator.zip (the RBAC password
# rotation function).
#
# The invalidator, reader, redriver and checker zips hold their handler package, the shared core
# streamcache/, and the runtime dependencies of requirements.txt as manylinux
# aarch64 wheels for CPython 3.12. The rotator zip holds only rotator/ (it
# needs nothing but the runtime's boto3).
#
# dist/streamcache-layer.zip is a Lambda layer for the user's own functions:
# python/streamcache (the core, without the laptop tools) and the same runtime
# dependencies, in the python/ layout Lambda adds to sys.path; never boto3. boto3/botocore/s3transfer are left out (the python3.12 runtime
# provides them; BUNDLE_BOTO3=1 keeps them). Sources are compiled to .pyc by a
# Python 3.12 interpreter (Lambda cannot write __pycache__, and imports without
# .pyc are ~4x slower); the .pyc use unchecked-hash invalidation so zip
# timestamps cannot make them stale. Zips are deterministic: same inputs, same
# bytes, so deploy.sh's content-hashed S3 keys change only when code does.
#
# Usage: infra/package.sh            (env: PYTHON, PYTHON312, BUNDLE_BOTO3, DIST, BUILD)
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
DIST=${DIST:-$ROOT/dist}
BUILD=${BUILD:-$ROOT/build/lambda}
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
  [ "${BUNDLE_BOTO3:-0}" = 1 ] || remove_runtime_sdk "$target"
}

remove_runtime_sdk() {
  local target=$1 pkg
  for pkg in "${RUNTIME_SDK[@]}"; do
    rm -rf "${target:?}/$pkg" "$target/$pkg"-*.dist-info
  done
}

copy_package() {
  # streamcache/local/ (demo, emulator, test fixtures) and the CLI are laptop tools:
  # never shipped, so no function or layer user can import them.
  local pkg=$1 dest=$2
  (cd "$ROOT" && find "$pkg" \( -type d \( -name __pycache__ -o -path streamcache/local \) \) -prune \
    -o -type f ! -name '*.pyc' ! -path streamcache/cli.py ! -path streamcache/__main__.py -print |
    while read -r file; do
      mkdir -p "$dest/$(dirname "$file")"
      cp "$file" "$dest/$file"
    done)
}

stage_function() {
  local name=$1 deps=$2 stage=$BUILD/$1
  [ -d "$ROOT/$name" ] || die "missing package directory $name/"
  rm -rf "$stage"
  mkdir -p "$stage"
  [ -z "$deps" ] || cp -R "$deps"/. "$stage"/
  local pkg packages=("$name")
  [ -z "$deps" ] || packages=(streamcache "$name")
  for pkg in "${packages[@]}"; do
    copy_package "$pkg" "$stage"
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

build_function() {
  local name=$1 deps=$2
  stage_function "$name" "$deps"
  compile_pyc "$BUILD/$name"
  rm -f "$DIST/$name.zip"
  write_zip "$BUILD/$name" "$DIST/$name.zip"
  report "$DIST/$name.zip"
}

build_layer() {
  local deps=$1 stage=$BUILD/layer zip=$DIST/streamcache-layer.zip
  rm -rf "$stage"
  mkdir -p "$stage/python"
  cp -R "$deps"/. "$stage/python"/
  remove_runtime_sdk "$stage/python"
  copy_package streamcache "$stage/python"
  compile_pyc "$stage"
  rm -f "$zip"
  write_zip "$stage" "$zip"
  report "$zip"
}

main() {
  mkdir -p "$DIST" "$BUILD"
  install_dependencies "$BUILD/deps"
  local name
  for name in invalidator reader redriver checker; do
    build_function "$name" "$BUILD/deps"
  done
  build_function rotator ""
  build_layer "$BUILD/deps"
}

main "$@"
