"""`backdrop preflight` against moto: the account's Lambda concurrency quota, API Gateway's
CloudWatch role, an existing stack's reservation and values, and the whole command's exit
status and output.

moto has no Lambda GetAccountSettings; its own quota knob, MOTO_LAMBDA_CONCURRENCY_QUOTA
(which its PutFunctionConcurrency enforces), is the account's quota here, and the route below
answers GetAccountSettings from it and the functions' reservations, as Lambda does.
"""

from __future__ import annotations

import copy
import io
import json
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.awslambda import urls as lambda_urls
from moto.awslambda.models import lambda_backends
from moto.core import DEFAULT_ACCOUNT_ID

from backdrop_local import preflight
from backdrop_local.cli import main
from backdrop_local.template import Template

REGION = "us-east-1"
QUOTA_KNOB = "MOTO_LAMBDA_CONCURRENCY_QUOTA"
ROLE_ARN = f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/apigateway-cloudwatch"
AARCH64_ELF = b"\x7fELF\x02\x01\x01" + bytes(11) + (183).to_bytes(2, "little")


def _account_settings(request: Any, url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    region = (urlsplit(url).hostname or "").split(".")[1]
    quota = int(os.environ.get(QUOTA_KNOB, "1000"))
    functions = lambda_backends[DEFAULT_ACCOUNT_ID][region].list_functions()
    reserved = sum(int(function.reserved_concurrency or 0) for function in functions)
    limit = {"ConcurrentExecutions": quota, "UnreservedConcurrentExecutions": quota - reserved}
    body = {"AccountLimit": limit, "AccountUsage": {"FunctionCount": len(functions)}}
    return 200, {"Content-Type": "application/json"}, json.dumps(body)


@pytest.fixture(autouse=True)
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(
        lambda_urls.url_paths, r"{0}/(?P<api_version>[^/]+)/account-settings/?$", _account_settings
    )
    monkeypatch.delenv(QUOTA_KNOB, raising=False)
    with mock_aws():
        yield


def quota(monkeypatch: pytest.MonkeyPatch, value: int) -> None:
    monkeypatch.setenv(QUOTA_KNOB, str(value))


@pytest.fixture
def samconfig(tmp_path: Path) -> Path:
    path = tmp_path / "samconfig.toml"
    path.write_text(
        'version = 0.1\n[default.global.parameters]\nstack_name = "backdrop"\n'
        "[default.deploy.parameters]\n"
        'parameter_overrides = "DefaultCount=3 CorsAllowOrigins=\\"https://app.example.com\\""\n'
    )
    return path


@pytest.fixture
def build_dir(tmp_path: Path) -> Path:
    """What `make build` leaves: the built template and a layer built for the runtime."""
    build = tmp_path / "build"
    module = build / "DependenciesLayer/python/pydantic_core"
    module.mkdir(parents=True)
    (build / "template.yaml").write_text("Resources: {}\n")
    (module / "_pydantic_core.cpython-313-aarch64-linux-gnu.so").write_bytes(AARCH64_ELF)
    return build


def options(samconfig: Path, build_dir: Path, *overrides: str) -> preflight.Options:
    return preflight.Options(
        config_file=samconfig, build_dir=build_dir, parameter_overrides=overrides
    )


def results(*args: Any) -> dict[str, preflight.Result]:
    return {result.check: result for result in preflight.run(options(*args))}


def text(result: preflight.Result) -> str:
    return "\n".join([result.summary, *result.details])


# Lambda concurrency.


def test_a_quota_of_10_refuses_any_reservation_and_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, samconfig: Path, build_dir: Path
) -> None:
    quota(monkeypatch, 10)

    checks = results(samconfig, build_dir, "ApiReservedConcurrency=5")

    concurrency = checks["concurrency"]
    assert concurrency.status == "fail"
    message = text(concurrency)
    assert "ApiReservedConcurrency=5 is more than this account allows" in message
    assert "quota in us-east-1 is 10, 10 unreserved" in message
    assert "at least 10 unreserved, so ApiFunction may reserve at most 0" in message
    assert "`ApiReservedConcurrency=0`" in message
    assert "[default.deploy.parameters]" in message
    assert "L-B99A9384" in message
    # Nothing else is wrong with this deploy.
    assert {name for name, check in checks.items() if check.status != "pass"} == {"concurrency"}


def test_a_quota_of_10_takes_the_default_of_reserving_none(
    monkeypatch: pytest.MonkeyPatch, samconfig: Path, build_dir: Path
) -> None:
    quota(monkeypatch, 10)

    concurrency = results(samconfig, build_dir)["concurrency"]

    assert concurrency.status == "pass"
    assert concurrency.summary.startswith("ApiReservedConcurrency=0: ApiFunction reserves none")
    assert "could reserve at most 0" in concurrency.summary


def test_a_normal_account_takes_a_reservation_up_to_all_but_100(
    samconfig: Path, build_dir: Path
) -> None:
    fits = results(samconfig, build_dir, "ApiReservedConcurrency=20")["concurrency"]
    assert fits.status == "pass"
    assert "quota in us-east-1 is 1000, 1000 unreserved, at most 900" in fits.summary
    # The template allows up to 1000: the account does not.
    too_many = results(samconfig, build_dir, "ApiReservedConcurrency=901")["concurrency"]
    assert too_many.status == "fail"
    assert "at most 900" in too_many.summary


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return None\n")
    return buffer.getvalue()


def _function(name: str) -> str:
    role = boto3.client("iam").create_role(
        RoleName=f"{name}-role", AssumeRolePolicyDocument="{}", Path="/"
    )["Role"]["Arn"]
    boto3.client("lambda", region_name=REGION).create_function(
        FunctionName=name,
        Runtime="python3.13",
        Role=role,
        Handler="index.handler",
        Code={"ZipFile": _zip()},
    )
    return name


def test_the_limit_agrees_with_lambda_itself(
    monkeypatch: pytest.MonkeyPatch, samconfig: Path, build_dir: Path
) -> None:
    # moto's PutFunctionConcurrency keeps 100 unreserved, as Lambda does for quotas >= 100.
    quota(monkeypatch, 300)
    other = _function("someone-elses")
    client = boto3.client("lambda", region_name=REGION)
    client.put_function_concurrency(FunctionName=other, ReservedConcurrentExecutions=50)

    check = results(samconfig, build_dir, "ApiReservedConcurrency=151")["concurrency"]

    assert check.status == "fail"
    assert "250 unreserved" in check.details[0]
    assert "at most 150" in check.summary
    probe = _function("probe")
    client.put_function_concurrency(FunctionName=probe, ReservedConcurrentExecutions=150)
    with pytest.raises(ClientError, match="below its minimum value of \\[100\\]"):
        client.put_function_concurrency(FunctionName=probe, ReservedConcurrentExecutions=151)


DEPLOYED_TEMPLATE = {
    "Parameters": {"ApiReservedConcurrency": {"Type": "Number", "Default": 0}},
    "Resources": {
        "ApiRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {"AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": []}},
        },
        "ApiFunction": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Runtime": "python3.13",
                "Handler": "index.handler",
                "Role": {"Fn::GetAtt": ["ApiRole", "Arn"]},
                "Code": {"ZipFile": "def handler(event, context):\n    return None\n"},
                "ReservedConcurrentExecutions": {"Ref": "ApiReservedConcurrency"},
            },
        },
    },
}


def test_an_existing_stack_s_reservation_is_available_again(
    monkeypatch: pytest.MonkeyPatch, samconfig: Path, build_dir: Path
) -> None:
    quota(monkeypatch, 200)
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName="backdrop",
        TemplateBody=json.dumps(DEPLOYED_TEMPLATE),
        Parameters=[{"ParameterKey": "ApiReservedConcurrency", "ParameterValue": "50"}],
    )

    # Not overridden, the deployed value stays (sam deploy: UsePreviousValue).
    kept = results(samconfig, build_dir)
    assert kept["stack"].status == "pass"
    assert "exists (CREATE_COMPLETE)" in kept["stack"].summary
    assert kept["concurrency"].status == "pass"
    assert kept["concurrency"].summary.startswith("ApiReservedConcurrency=50 fits")
    assert "150 unreserved (plus the 50 the deployed ApiFunction reserves)" in (
        kept["concurrency"].summary
    )
    # 150 unreserved + its own 50 - the 100 Lambda keeps.
    most = results(samconfig, build_dir, "ApiReservedConcurrency=100")["concurrency"]
    assert most.status == "pass"
    more = results(samconfig, build_dir, "ApiReservedConcurrency=101")["concurrency"]
    assert more.status == "fail"
    assert "at most 100" in more.summary


# API Gateway's CloudWatch role.


def test_unmanaged_api_gateway_account_needs_a_cloudwatch_role(
    samconfig: Path, build_dir: Path
) -> None:
    refused = results(samconfig, build_dir, "ManageApiGatewayAccount=false")["api-gateway"]
    assert refused.status == "fail"
    assert "has no CloudWatch role" in refused.summary
    assert "ManageApiGatewayAccount=true" in text(refused)
    assert "aws apigateway update-account --region us-east-1" in text(refused)

    boto3.client("apigateway", region_name=REGION).update_account(
        patchOperations=[{"op": "replace", "path": "/cloudwatchRoleArn", "value": ROLE_ARN}]
    )

    accepted = results(samconfig, build_dir, "ManageApiGatewayAccount=false")["api-gateway"]
    assert accepted.status == "pass"
    assert ROLE_ARN in accepted.summary


def test_managed_api_gateway_account_passes_with_a_note(samconfig: Path, build_dir: Path) -> None:
    check = results(samconfig, build_dir)["api-gateway"]

    assert check.status == "pass"
    assert "the stack sets API Gateway's CloudWatch role (account-wide, in us-east-1)" in (
        check.summary
    )


# Where the deploy goes.


def test_no_region_fails_the_target_and_skips_what_needs_aws(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, samconfig: Path, build_dir: Path
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))

    checks = results(samconfig, build_dir)

    assert checks["target"].status == "fail"
    assert "no region" in text(checks["target"])
    assert "make deploy REGION=eu-west-1" in text(checks["target"])
    skipped = ("stack", "environment", "concurrency", "api-gateway")
    assert [checks[name].status for name in skipped] == ["skip"] * 4
    assert checks["parameters"].status == "pass"


def test_samconfig_gives_the_stack_name_region_and_values(tmp_path: Path, build_dir: Path) -> None:
    path = tmp_path / "samconfig.toml"
    path.write_text(
        '[dev.global.parameters]\nstack_name = "backdrop-dev"\nregion = "eu-west-1"\n'
        '[dev.deploy.parameters]\nparameter_overrides = "DefaultCount=11"\n'
    )

    checks = {
        result.check: result
        for result in preflight.run(
            preflight.Options(config_env="dev", config_file=path, build_dir=build_dir)
        )
    }

    assert checks["target"].summary == "stack backdrop-dev in eu-west-1, account 123456789012"
    assert checks["api-gateway"].summary.endswith("(account-wide, in eu-west-1)")
    assert checks["parameters"].status == "fail"
    assert "DefaultCount=11: must be between 1 and 10" in checks["parameters"].details
    assert "[dev.deploy.parameters]" in checks["parameters"].details[-1]


# The command as `make deploy` runs it.


def test_the_command_refuses_a_quota_of_10_and_exits_1(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    samconfig: Path,
    build_dir: Path,
) -> None:
    quota(monkeypatch, 10)

    code = main(
        [
            "preflight",
            "--config-file", str(samconfig),
            "--build-dir", str(build_dir),
            "--parameter-overrides", "ApiReservedConcurrency=5",
        ]
    )  # fmt: skip

    out = capsys.readouterr().out
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith("PASS  target")
    assert any(line.startswith("FAIL  concurrency  ApiReservedConcurrency=5") for line in lines)
    assert "below its minimum value of [10]" in out
    assert lines[-1] == "preflight: 1 of 8 checks failed (concurrency): nothing was deployed"


def test_the_command_passes_a_normal_account_and_exits_0(
    capsys: pytest.CaptureFixture[str], samconfig: Path, build_dir: Path
) -> None:
    code = main(
        [
            "preflight",
            "--config-file", str(samconfig),
            "--build-dir", str(build_dir),
            "--parameter-overrides", "ApiReservedConcurrency=20",
        ]
    )  # fmt: skip

    out = capsys.readouterr().out
    assert code == 0, out
    lines = out.splitlines()
    assert [line.split()[:2] for line in lines[:-1]] == [
        ["PASS", name]
        for name in (
            "target", "stack", "parameters", "environment", "indexes", "concurrency",
            "api-gateway", "build",
        )
    ]  # fmt: skip
    assert "2 from samconfig.toml [default], 1 from --parameter-overrides" in out
    assert lines[-1] == "preflight: all 8 checks passed"


def test_the_command_without_a_build_says_to_build(
    capsys: pytest.CaptureFixture[str], samconfig: Path, tmp_path: Path
) -> None:
    code = main(
        ["preflight", "--config-file", str(samconfig), "--build-dir", str(tmp_path / "none")]
    )

    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL  build" in out
    assert "run `make build` first" in out


# DynamoDB: one global secondary index created or deleted a deploy.


def _jobs_table_without(*names: str) -> dict[str, Any]:
    """The template's jobs table as deployed before the indexes `names` were added."""
    table = copy.deepcopy(Template().body["Resources"]["JobsTable"])
    indexes = table["Properties"]["GlobalSecondaryIndexes"]
    table["Properties"]["GlobalSecondaryIndexes"] = [
        index for index in indexes if index["IndexName"] not in names
    ]
    return {"Resources": {"JobsTable": table}}


def test_an_update_may_add_one_index_to_a_table_not_two() -> None:
    new = Template().body
    assert preflight.index_problems(_jobs_table_without("by-review"), new) == []
    assert preflight.index_problems(new, new) == []
    (problem,) = preflight.index_problems(_jobs_table_without("by-review", "by-batch"), new)
    assert problem.startswith("JobsTable: this update creates by-batch, by-review;")
    # Changing an index's keys deletes and creates it: two.
    changed = copy.deepcopy(new)
    index = changed["Resources"]["JobsTable"]["Properties"]["GlobalSecondaryIndexes"][0]
    index["Projection"] = {"ProjectionType": "KEYS_ONLY"}
    (problem,) = preflight.index_problems(new, changed)
    assert "creates by-created and deletes by-created" in problem
    # A table the stack does not have yet is created with all its indexes.
    assert preflight.index_problems({"Resources": {}}, new) == []


@pytest.mark.parametrize(
    ("missing", "status"), [(("by-review",), "pass"), (("by-review", "by-batch"), "fail")]
)
def test_the_deployed_stack_s_tables_are_compared_with_the_template(
    samconfig: Path, build_dir: Path, missing: tuple[str, ...], status: str
) -> None:
    deployed = _jobs_table_without(*missing)
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName="backdrop", TemplateBody=json.dumps(deployed)
    )

    result = results(samconfig, build_dir)["indexes"]

    assert result.status == status, text(result)
    if status == "fail":
        assert "JobsTable: this update creates by-batch, by-review" in text(result)
        assert "deploy in steps" in text(result)


def test_a_new_stack_creates_its_tables_with_their_indexes(
    samconfig: Path, build_dir: Path
) -> None:
    result = results(samconfig, build_dir)["indexes"]
    assert result.status == "pass"
    assert "a new stack" in result.summary
