#!/usr/bin/env bash
# Deploy the streamcache stack: upload the function zips, deploy the template,
# print the stack outputs.
#
# Usage: infra/deploy.sh STACK BUCKET [Key=Value ...]
#   STACK   CloudFormation stack name (also prefixes function names)
#   BUCKET  existing S3 bucket in the target region for code and template
#   Key=Value  extra parameter overrides, e.g. RangeKeyName=sk CacheReplicaCount=1
#
# Every run packages first (infra/package.sh is deterministic: same sources,
# same bytes), so a deploy never ships stale zips from dist/. The zips are
# uploaded under content-hashed keys, so a stack update changes code exactly
# when a zip changed. Exit 2: aws CLI missing or no usable credentials.
# PACKAGE overrides the packaging command (tests).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
DIST=${DIST:-$ROOT/dist}
TEMPLATE=$ROOT/infra/cloudformation.json

usage() {
  echo "usage: infra/deploy.sh STACK BUCKET [ParameterKey=Value ...]" >&2
  exit 2
}

require_aws() {
  if ! command -v aws >/dev/null 2>&1; then
    echo "deploy.sh: the aws CLI is not installed; install AWS CLI v2 and configure credentials" >&2
    exit 2
  fi
  if ! aws sts get-caller-identity >/dev/null 2>&1; then
    echo "deploy.sh: 'aws sts get-caller-identity' failed: no usable AWS credentials or region" >&2
    exit 2
  fi
}

region() {
  local value=${AWS_REGION:-${AWS_DEFAULT_REGION:-}}
  [ -n "$value" ] || value=$(aws configure get region 2>/dev/null || true)
  [ -n "$value" ] || { echo "deploy.sh: no region: set AWS_REGION" >&2; exit 2; }
  echo "$value"
}

sha256() {
  # sha256sum is GNU coreutils; macOS ships shasum instead
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1"
  else
    shasum -a 256 "$1"
  fi
}

upload() {
  local name=$1 bucket=$2 stack=$3 digest key
  digest=$(sha256 "$DIST/$name.zip" | cut -c1-16)
  key="streamcache/$stack/$digest/$name.zip"
  aws s3 cp --only-show-errors "$DIST/$name.zip" "s3://$bucket/$key" >&2
  echo "$key"
}

dynamodb_prefix_list() {
  local pl
  pl=$(aws ec2 describe-managed-prefix-lists \
    --filters "Name=prefix-list-name,Values=com.amazonaws.$1.dynamodb" \
    --query 'PrefixLists[0].PrefixListId' --output text 2>/dev/null || true)
  [ "$pl" = "None" ] && pl=""
  echo "$pl"
}

main() {
  [ $# -ge 2 ] || usage
  local stack=$1 bucket=$2
  shift 2
  require_aws
  local aws_region
  aws_region=$(region)
  local package=${PACKAGE:-$ROOT/infra/package.sh}
  "$package" >&2

  local overrides=("CodeBucket=$bucket"
    "InvalidatorCodeKey=$(upload invalidator "$bucket" "$stack")"
    "ReaderCodeKey=$(upload reader "$bucket" "$stack")"
    "RedriverCodeKey=$(upload redriver "$bucket" "$stack")"
    "CheckerCodeKey=$(upload checker "$bucket" "$stack")"
    "RotatorCodeKey=$(upload rotator "$bucket" "$stack")"
    "LayerCodeKey=$(upload streamcache-layer "$bucket" "$stack")")
  if [[ " $* " != *" DynamoDbPrefixListId="* ]]; then
    local pl
    pl=$(dynamodb_prefix_list "$aws_region")
    [ -z "$pl" ] || overrides+=("DynamoDbPrefixListId=$pl")
  fi

  aws cloudformation deploy --region "$aws_region" --stack-name "$stack" \
    --template-file "$TEMPLATE" --s3-bucket "$bucket" --s3-prefix "streamcache/$stack/templates" \
    --capabilities CAPABILITY_NAMED_IAM --no-fail-on-empty-changeset \
    --tags Project=streamcache \
    --parameter-overrides "${overrides[@]}" "$@"

  aws cloudformation describe-stacks --region "$aws_region" --stack-name "$stack" \
    --query 'Stacks[0].Outputs[].[OutputKey,OutputValue]' --output table
}

main "$@"
