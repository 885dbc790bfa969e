"""What EC2, Lambda, ElastiCache and IAM enforce when the stack is created, checked on the template.

cfn-lint, checkov and the moto deploy accept templates AWS refuses at create time
(issue 12). Each test here states the AWS rule and checks every place the template
could break it, for every parameter value the template accepts.
"""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path
from typing import Any

import pytest
from cfn_rules import evaluate_condition, refusals
from hypothesis import given
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[2]
Template = dict[str, Any]

# EC2 security group names, descriptions and rule descriptions (CreateSecurityGroup, IpPermission)
EC2_DESCRIPTION = re.compile(r"^[a-zA-Z0-9. _\-:/()#,@\[\]+=&;{}!$*]*$")
LONGEST_STACK_NAME = "s" + "-" * 0 + "x" * 127  # CloudFormation: 128 characters, [a-zA-Z][-a-zA-Z0-9]*
LAMBDA_FUNCTION_NAME_MAX = 64
# ElastiCache ReplicationGroupId / UserId / UserGroupId: letter first, [a-z0-9-], no "--", no trailing "-"
ELASTICACHE_ID = re.compile(r"^[a-z](?!.*--)[a-z0-9-]{0,38}[a-z0-9]$")
STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/sc/1a2b3c4d-1111-2222-3333-444455556666"


def _render(node: Any, values: dict[str, Any]) -> Any:
    """Fn::Sub / Fn::Join / Fn::Select / Fn::Split / Fn::If / Ref rendered with literal values (for names).

    ``values["Condition:NAME"]`` picks an Fn::If branch (default: the true one)."""
    if isinstance(node, list):
        return [_render(n, values) for n in node]
    if not isinstance(node, dict):
        return node
    [(fn, arg)] = node.items()
    return _RENDER[fn](arg, values)


def _render_sub(arg: Any, values: dict[str, Any]) -> str:
    text, variables = (arg, {}) if isinstance(arg, str) else arg
    scope = {**values, **{k: _render(v, values) for k, v in variables.items()}}
    return re.sub(r"\$\{([\w:.]+)\}", lambda m: str(scope[m.group(1)]), text)


_RENDER: dict[str, Any] = {
    "Ref": lambda arg, values: values[arg],
    "Fn::Sub": _render_sub,
    "Fn::Join": lambda arg, values: arg[0].join(str(_render(p, values)) for p in _render(arg[1], values)),
    "Fn::Select": lambda arg, values: _render(arg[1], values)[int(arg[0])],
    "Fn::Split": lambda arg, values: _render(arg[1], values).split(arg[0]),
    "Fn::If": lambda arg, values: _render(
        arg[1] if values.get(f"Condition:{arg[0]}", True) else arg[2], values
    ),
}


def _pseudo(stack_name: str = "sc") -> dict[str, str]:
    return {
        "AWS::StackName": stack_name,
        "AWS::StackId": STACK_ID,
        "AWS::Region": "us-east-1",
        "AWS::AccountId": "123456789012",
        "AWS::Partition": "aws",
    }


# ------------------------------------------------------------------ issue 12.1: EC2 descriptions


def _security_group_descriptions(resources: dict[str, Any]) -> list[tuple[str, Any]]:
    found = []
    for name, res in resources.items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::EC2::SecurityGroup":
            found.append((name, props["GroupDescription"]))
            rules = props.get("SecurityGroupIngress", []) + props.get("SecurityGroupEgress", [])
            found += [(name, rule["Description"]) for rule in rules if "Description" in rule]
        elif res["Type"] in ("AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress"):
            found.append((name, props.get("Description", "")))
    return found


def test_security_group_descriptions_use_only_what_ec2_accepts(template: Template) -> None:
    found = _security_group_descriptions(template["Resources"])
    assert len(found) > 5
    for name, text in found:
        rendered = _render(text, _pseudo(LONGEST_STACK_NAME))
        assert EC2_DESCRIPTION.match(rendered), f"{name}: {rendered!r} has a character EC2 refuses"
        assert len(rendered) <= 255, name


def test_the_ec2_character_check_catches_an_apostrophe() -> None:
    assert not EC2_DESCRIPTION.match("the stack's endpoint")


# ------------------------------------------------------------------ issue 12.2: Lambda and VPC ranges


@pytest.mark.parametrize("age", ["0", "1", "30", "59"])
def test_record_age_lambda_refuses_is_refused_by_a_rule(template: Template, age: str) -> None:
    assert refusals(template, {"MaximumRecordAgeInSeconds": age, "CodeBucket": "b"})


@pytest.mark.parametrize("age", ["-1", "60", "3600", "604800"])
def test_record_age_lambda_accepts_is_accepted(template: Template, age: str) -> None:
    assert refusals(template, {"MaximumRecordAgeInSeconds": age, "CodeBucket": "b"}) == []


def test_record_age_parameter_bounds_are_lambdas(template: Template) -> None:
    spec = template["Parameters"]["MaximumRecordAgeInSeconds"]
    assert (spec["MinValue"], spec["MaxValue"]) == (-1, 604800)


def test_every_vpc_cidr_the_pattern_accepts_holds_the_subnets_carved_from_it(template: Template) -> None:
    pattern = re.compile(template["Parameters"]["VpcCidr"]["AllowedPattern"])
    accepted = [bits for bits in range(8, 29) if pattern.match(f"10.0.0.0/{bits}")]
    assert accepted and min(accepted) >= 16  # AWS: a VPC is /16 to /28
    cidrs = [
        r["Properties"]["CidrBlock"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::EC2::Subnet"
    ]
    for bits in accepted:
        for cidr in cidrs:
            _, count, host_bits = cidr["Fn::Select"][1]["Fn::Cidr"]
            subnets = list(ipaddress.ip_network(f"10.0.0.0/{bits}").subnets(new_prefix=32 - int(host_bits)))
            assert len(subnets) >= int(count) >= cidr["Fn::Select"][0] + 1, bits


# ------------------------------------------------------------------ issue 12.3: names


def _key_schema_texts(template: Template) -> list[tuple[str, str]]:
    env = template["Resources"]["InvalidatorFunction"]["Properties"]["Environment"]["Variables"]
    _, with_range, hash_only = env["KEY_SCHEMA"]["Fn::If"]
    return [(with_range["Fn::Sub"][0], "range"), (hash_only["Fn::Sub"][0], "hash")]


@given(hash_name=st.text(min_size=1, max_size=40), range_name=st.text(min_size=1, max_size=40))
def test_every_key_name_the_patterns_accept_survives_the_key_schema_json(
    template: Template, hash_name: str, range_name: str
) -> None:
    params = template["Parameters"]
    accepted = re.fullmatch(params["HashKeyName"]["AllowedPattern"], hash_name) and re.fullmatch(
        params["RangeKeyName"]["AllowedPattern"], range_name
    )
    for text, kind in _key_schema_texts(template):
        rendered = text.replace("${T}", "orders").replace("${HashKeyName}", hash_name)
        rendered = rendered.replace("${RangeKeyName}", range_name)
        try:
            parsed = json.loads(rendered)
        except json.JSONDecodeError:
            parsed = None
        expected = [hash_name, range_name] if kind == "range" else [hash_name]
        if accepted:
            assert parsed == {"orders": expected}, rendered


def test_a_quote_in_a_key_name_is_refused(template: Template) -> None:
    for name in ('a"b', "a\\b"):
        assert not re.fullmatch(template["Parameters"]["HashKeyName"]["AllowedPattern"], name)


def test_function_names_fit_lambdas_limit_for_the_longest_stack_name(template: Template) -> None:
    functions = {n: r for n, r in template["Resources"].items() if r["Type"] == "AWS::Lambda::Function"}
    assert functions
    for name, fn in functions.items():
        if "FunctionName" in fn["Properties"]:  # absent: CloudFormation generates a name <= 64
            rendered = _render(fn["Properties"]["FunctionName"], _pseudo(LONGEST_STACK_NAME))
            assert len(rendered) <= LAMBDA_FUNCTION_NAME_MAX, name


def test_layer_name_fits_lambdas_limit_for_the_longest_stack_name(template: Template) -> None:
    layers = [r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::LayerVersion"]
    assert layers
    for layer in layers:
        name = _render(layer["Properties"]["LayerName"], _pseudo(LONGEST_STACK_NAME))
        assert len(name) <= 140 and re.fullmatch(r"[a-zA-Z0-9-_]+", name), name


def _elasticache_ids(template: Template) -> list[tuple[str, Any]]:
    own_id = {
        "AWS::ElastiCache::ReplicationGroup": "ReplicationGroupId",
        "AWS::ElastiCache::User": "UserId",
        "AWS::ElastiCache::UserGroup": "UserGroupId",
        "AWS::ElastiCache::ServerlessCache": "ServerlessCacheName",
    }
    return [
        (f"{name}.{own_id[res['Type']]}", res["Properties"][own_id[res["Type"]]])
        for name, res in template["Resources"].items()
        if res["Type"] in own_id
    ]


@pytest.mark.parametrize("engine", ["valkey", "redis"])
@pytest.mark.parametrize("cluster", [True, False])
def test_elasticache_ids_meet_elasticaches_rules(template: Template, engine: str, cluster: bool) -> None:
    found = _elasticache_ids(template)
    assert len(found) >= 4
    values = {**_pseudo(LONGEST_STACK_NAME), "CacheEngine": engine, "Condition:ClusterModeEnabled": cluster}
    for where, spec in found:
        rendered = _render(spec, values)
        assert ELASTICACHE_ID.match(rendered), f"{where}: {rendered!r}"


# ------------------------------------------------------------------ issue 12.4: identity per mode


def test_each_engine_and_cluster_mode_is_a_different_replication_group(template: Template) -> None:
    """ElastiCache cannot turn cluster mode off, nor on without a 'compatible' step, nor go from Valkey
    back to Redis in place. ReplicationGroupId is create-only (a change replaces the resource), so
    an id per engine and mode makes every such change a new cache, never a refused modify."""
    spec = template["Resources"]["Cache"]["Properties"]["ReplicationGroupId"]
    ids = {
        _render(spec, {**_pseudo(), "CacheEngine": e, "Condition:ClusterModeEnabled": c})
        for e in ("valkey", "redis")
        for c in (True, False)
    }
    assert len(ids) == 4
    assert "/properties/ReplicationGroupId" in _create_only("AWS::ElastiCache::ReplicationGroup")


def _create_only(type_name: str) -> list[str]:
    import cfnlint

    schemas = Path(cfnlint.__file__).parent / "data" / "schemas"
    digest = json.loads((schemas / "providers" / "us-east-1.json").read_text())[type_name]
    return json.loads((schemas / "resources" / f"{digest}.json").read_text())["createOnlyProperties"]


# ------------------------------------------------------------------ issue 12.6: Function URL callers


def test_reader_caller_policy_grants_both_url_actions_and_is_an_output(template: Template) -> None:
    statements = template["Resources"]["ReaderCallerPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    actions = {a: s["Resource"] for s in statements for a in s["Action"]}
    reader = {"Fn::GetAtt": ["ReaderFunction", "Arn"]}
    assert actions == {"lambda:InvokeFunctionUrl": reader, "lambda:InvokeFunction": reader}
    assert template["Outputs"]["ReaderCallerPolicyArn"]["Value"] == {"Ref": "ReaderCallerPolicy"}


# ------------------------------------------------------------------ issue 12.7: existing VPC


def _statements(template: Template, role: str, given: dict[str, str]) -> list[dict[str, Any]]:
    out = []
    for statement in template["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]:
        chosen = statement
        if "Fn::If" in statement:
            cond, yes, no = statement["Fn::If"]
            chosen = yes if evaluate_condition(template, cond, {"CodeBucket": "b", **given}) else no
        if chosen != {"Ref": "AWS::NoValue"}:
            out.append(chosen)
    return out


@pytest.mark.parametrize("role", ["InvalidatorRole", "ReaderRole"])
def test_a_customer_managed_table_key_gets_decrypt(template: Template, role: str) -> None:
    key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    with_key = [
        s for s in _statements(template, role, {"TableKmsKeyArn": key}) if "kms:Decrypt" in s["Action"]
    ]
    assert [s["Resource"] for s in with_key] == [{"Ref": "TableKmsKeyArn"}]
    assert not [s for s in _statements(template, role, {}) if "kms:Decrypt" in s["Action"]]
    assert re.match(template["Parameters"]["TableKmsKeyArn"]["AllowedPattern"], key)


@pytest.mark.parametrize("shared", [False, True])
def test_enis_are_created_only_in_the_stack_subnets_and_group(template: Template, shared: bool) -> None:
    given = {"CreateVpc": "false", "SubnetOwnerAccountId": "210987654321" if shared else ""}
    [create] = [
        s for s in _statements(template, "ReaderRole", given) if "ec2:CreateNetworkInterface" in s["Action"]
    ]
    values = {
        **_pseudo(),
        "SubnetOwnerAccountId": given["SubnetOwnerAccountId"],
        "PrivateSubnetA": "subnet-a",
        "PrivateSubnetB": "subnet-b",
        "Condition:CreateVpc": False,
        "Condition:SharedSubnets": shared,
    }
    resources = _render(_resolve_getatt(create["Resource"]), values)
    owner = "210987654321" if shared else "123456789012"
    assert resources == [
        "arn:aws:ec2:us-east-1:123456789012:network-interface/*",
        "arn:aws:ec2:us-east-1:123456789012:security-group/sg-ReaderSecurityGroup",
        f"arn:aws:ec2:us-east-1:{owner}:subnet/*",
    ]
    values["Condition:CreateVpc"] = True
    assert _render(_resolve_getatt(create["Resource"]), values)[2:] == [
        "arn:aws:ec2:us-east-1:123456789012:subnet/subnet-a",
        "arn:aws:ec2:us-east-1:123456789012:subnet/subnet-b",
    ]


def _resolve_getatt(node: Any) -> Any:
    if isinstance(node, list):
        return [_resolve_getatt(n) for n in node]
    if isinstance(node, dict):
        if "Fn::GetAtt" in node:
            return f"sg-{node['Fn::GetAtt'][0]}"
        return {k: _resolve_getatt(v) for k, v in node.items()}
    return node


def test_subnets_in_one_az_are_documented_as_refused(template: Template) -> None:
    assert "different AZs" in template["Parameters"]["PrivateSubnetIds"]["Description"]
    assert "different AZs" in (REPO / "docs" / "deploy.md").read_text()


# ------------------------------------------------------------------ issue 12.8: acks and retries


def test_defaults_let_a_redis_outage_of_the_documented_length_lose_nothing(template: Template) -> None:
    params = template["Parameters"]
    assert (
        params["MaximumRetryAttempts"]["Default"] == "-1"
    )  # retried until the age limit, not 10 quick tries
    age = int(params["MaximumRecordAgeInSeconds"]["Default"])
    assert 60 <= age < 24 * 3600  # still in the stream (24 h) when the redriver reads the range
    assert f"{age // 60} minutes" in (REPO / "docs" / "deploy.md").read_text()


# ------------------------------------------------------------------ issue 12.15: RBAC


# Which Lua scripts each RBAC user runs (ACLs check the commands a script calls, too).
SCRIPTS = {
    "InvalidatorCacheUser": ["streamcache/lua/apply.lua", "streamcache/ops/sample.lua"],
    "RedriverCacheUser": ["streamcache/lua/apply.lua"],
    "ReaderCacheUser": [
        "streamcache/lua/lease.lua",
        "streamcache/lua/fill.lua",
        "streamcache/lua/qread.lua",
        "streamcache/lua/qfill.lua",
    ],
    "CheckerCacheUser": ["streamcache/lua/apply.lua"],
}


def _lua_commands(scripts: list[str]) -> set[str]:
    text = "".join((REPO / path).read_text() for path in scripts)
    return {c.lower() for c in re.findall(r'redis\.p?call\(\s*"(\w+)"', text)}


def test_every_shipped_lua_script_is_assigned_to_a_user() -> None:
    shipped = {
        str(p.relative_to(REPO)) for p in (REPO / "streamcache").rglob("*.lua") if "local" not in p.parts
    }
    assert shipped <= {path for scripts in SCRIPTS.values() for path in scripts}, (
        "a new script: assign its user"
    )


def _pipeline_commands() -> set[str]:
    text = (REPO / "streamcache" / "node_pipeline.py").read_text()
    return {c.lower() for c in re.findall(r'execute_command\(\s*"(\w+)"', text)}


def _access(template: Template, user: str, prefix: str = "app:") -> tuple[list[str], set[str]]:
    spec = template["Resources"][user]["Properties"]["AccessString"]
    text, variables = spec["Fn::Sub"]
    commands = template["Mappings"]["CacheAccess"][variables["Commands"]["Fn::FindInMap"][1]]["Commands"]
    tokens = text.replace("${CacheKeyPrefix}", prefix).replace("${Commands}", commands).split()
    return [t for t in tokens if t.startswith("~")], {t[1:] for t in tokens if t.startswith("+")}


DANGEROUS = {
    "flushall",
    "flushdb",
    "keys",
    "config",
    "debug",
    "shutdown",
    "scan",
    "del",
    "unlink",
    "acl",
    "@all",
    "@admin",
    "@dangerous",
    "monitor",
    "save",
    "bgsave",
    "replicaof",
    "slaveof",
    "migrate",
    "restore",
}


@pytest.mark.parametrize(
    ("user", "extra"),
    [
        ("InvalidatorCacheUser", _pipeline_commands()),
        ("RedriverCacheUser", _pipeline_commands()),
        ("ReaderCacheUser", set()),
    ],
)
def test_each_function_user_may_run_exactly_what_its_code_calls(
    template: Template, user: str, extra: set[str]
) -> None:
    patterns, allowed = _access(template, user)
    assert patterns == ["~app:*"]  # keys under the prefix only
    script_calls = {
        "evalsha",
        "eval",
        "script|load",
    } | _lua_commands(SCRIPTS[user])  # ACLs check script calls too
    assert script_calls | extra <= allowed
    assert not allowed & DANGEROUS
    tokens = template["Resources"][user]["Properties"]["AccessString"]["Fn::Sub"][0].split()
    assert tokens[:1] == ["on"] and "-@all" in tokens


def test_checker_user_runs_its_scripts_and_drains_only_the_sample_set(template: Template) -> None:
    patterns, allowed = _access(template, "CheckerCacheUser")
    assert patterns == ["~app:*"]
    assert {"evalsha", "script|load", "zrangebyscore", "zrem", "zadd"} | _lua_commands(
        SCRIPTS["CheckerCacheUser"]
    ) <= allowed
    assert not allowed & (DANGEROUS - {"del"})  # DEL: the checker removes its own sample set


def test_reader_user_cannot_wait_or_write_outside_scripts_it_needs(template: Template) -> None:
    _, reader = _access(template, "ReaderCacheUser")
    _, invalidator = _access(template, "InvalidatorCacheUser")
    assert "wait" in invalidator and "wait" not in reader


def test_the_key_prefix_cannot_widen_the_key_pattern(template: Template) -> None:
    pattern = template["Parameters"]["CacheKeyPrefix"]["AllowedPattern"]
    for glob in ("*", "?", "[", "]", "\\", " ", "a b"):
        assert not re.fullmatch(pattern, glob), glob


def test_user_group_disables_the_default_user(template: Template) -> None:
    resources = template["Resources"]
    group = resources["CacheUserGroup"]["Properties"]
    ids = [u["Fn::If"][1] if "Fn::If" in u else u for u in group["UserIds"]]
    users = [resources[u["Ref"]]["Properties"] for u in ids]
    [default] = [u for u in users if u["UserName"] == "default"]  # ElastiCache requires one named default
    assert default["AccessString"].split()[0] == "off"


@pytest.mark.parametrize("name", ["Invalidator", "Reader"])
def test_each_secret_is_its_users_password_and_rotates(template: Template, name: str) -> None:
    resources = template["Resources"]
    user = resources[f"{name}CacheUser"]["Properties"]
    assert user["AuthenticationMode"]["Passwords"] == [
        {"Fn::Sub": f"{{{{resolve:secretsmanager:${{{name}CacheSecret}}:SecretString:password}}}}"}
    ]
    env = resources[f"{name}Function"]["Properties"]["Environment"]["Variables"]
    assert env["REDIS_AUTH_SECRET_ARN"]["Fn::If"][2] == {"Ref": f"{name}CacheSecret"}
    rotation = resources[f"{name}SecretRotation"]["Properties"]
    assert rotation["SecretId"] == {"Ref": f"{name}CacheSecret"}
    assert rotation["RotationLambdaARN"] == {"Fn::GetAtt": ["RotatorFunction", "Arn"]}
    template_text = _render(
        resources[f"{name}CacheSecret"]["Properties"]["GenerateSecretString"]["SecretStringTemplate"],
        _pseudo(),
    )
    secret = json.loads(template_text)
    assert secret["username"] == _render(user["UserName"], _pseudo())
    assert secret["user_arn"].endswith(":user:" + _render(user["UserId"], _pseudo()))


# ------------------------------------------------------------------ CloudFormation's own quotas

# (path, largest body CloudFormation takes the way docs/deploy.md deploys it)
TEMPLATE_BODIES = [
    ("infra/cloudformation.json", 1_000_000),  # deploy.sh uploads it to S3: 1 MB
    ("infra/table.json", 51_200),  # deployed with --template-file and no bucket: inline limit
    ("infra/examples/consumer.json", 51_200),
]


@pytest.mark.parametrize(("path", "limit"), TEMPLATE_BODIES)
def test_templates_fit_cloudformations_quotas(path: str, limit: int) -> None:
    body = (REPO / path).read_text()
    assert len(body.encode()) <= limit
    parsed = json.loads(body)
    assert len(parsed["Resources"]) <= 500
    assert len(parsed.get("Parameters", {})) <= 200 and len(parsed.get("Outputs", {})) <= 200
