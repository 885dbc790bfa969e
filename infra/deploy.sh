#!/usr/bin/env bash
# Deploy the streamcache stack: upload the function zips, deploy the template,
# print the stack outputs.
#
# Usage: infra/deploy.sh STACK BUCKET [Key=Value ...]
#   STACK   CloudFormation stack name (also prefixes function names)
#   BUCKET  existing S3 bucket in the target region for code and template
#   Key=Value  extra parameter overrides, e.g. RangeKeyName=sk CacheReplicaCount=1
#
# Zips come from dist/ (built by infra/package.sh when missing). They are
# uploaded under content-hashed keys, so a stack update changes code exactly
# when the zip changed. Exit 2: aws CLI missing or no usable credentials.
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

upload() {
  local name=$1 bucket=$2 stack=$3 digest key
  digest=$(sha256sum "$DIST/$name.zip" | cut -c1-16)
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
  [ -f "$DIST/invalidator.zip" ] && [ -f "$DIST/reader.zip" ] && [ -f "$DIST/checker.zip" ] || "$ROOT/infra/package.sh"

  local overrides=("CodeBucket=$bucket"
    "InvalidatorCodeKey=$(upload invalidator "$bucket" "$stack")"
    "ReaderCodeKey=$(upload reader "$bucket" "$stack")"
    "CheckerCodeKey=$(upload checker "$bucket" "$stack")")
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
