"""The state machines' definitions as AWS reads them (`make lint`: backdrop_local.asl_lint):
the pinned asl-validator from npm (`make test` installs it), and the rules it leaves out.
moto runs definitions CreateStateMachine refuses, so nothing else here would notice."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from backdrop_local import asl_lint
from backdrop_local.asl_lint import Problem, Unfillable, filled, lint
from backdrop_local.template import StateMachineSpec, Template
from tests.conftest import ROOT

TEMPLATE = Template()
LAMBDA_ARN = r"arn:aws:lambda:us-east-1:123456789012:function:[\w-]+"


@pytest.fixture(autouse=True, scope="module")
def _validator_installed() -> None:
    assert asl_lint.VALIDATOR.exists(), "asl-validator is missing: `make test` installs it"


def _batch() -> dict[str, Any]:
    return json.loads(filled(TEMPLATE, TEMPLATE.state_machine("BatchStateMachine")))  # type: ignore[no-any-return]


def _processor(definition: dict[str, Any], map_name: str) -> dict[str, Any]:
    return definition["States"][map_name]["ItemProcessor"]  # type: ignore[no-any-return]


def _problems(definition: dict[str, Any]) -> list[Problem]:
    return lint(json.dumps(definition))


@pytest.mark.parametrize("machine", TEMPLATE.state_machines(), ids=lambda m: m.logical_id)
def test_every_state_machine_is_valid_as_aws_reads_it(machine: StateMachineSpec) -> None:
    assert lint(filled(TEMPLATE, machine)) == []


def test_substitutions_are_filled_as_cloudformation_would() -> None:
    definition = _batch()
    start = _processor(definition, "FromPrefix")["States"]["StartListedItem"]
    assert re.fullmatch(LAMBDA_ARN, start["Resource"])
    run = _processor(definition, "FromManifest")["States"]["RunRowJob"]
    assert re.fullmatch(
        r"arn:aws:states:us-east-1:123456789012:stateMachine:[\w-]+",
        run["Parameters"]["StateMachineArn"],
    )
    bucket = definition["States"]["FromPrefix"]["ItemReader"]["Parameters"]["Bucket"]
    assert re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket)
    assert "${" not in json.dumps(definition)


def test_a_substitution_without_a_stand_in_is_refused() -> None:
    machine = StateMachineSpec("M", '{"X": "${Stream}"}', {"Stream": {"Fn::GetAtt": "JobsTable.X"}})
    with pytest.raises(Unfillable, match=r"JobsTable\.X"):
        filled(TEMPLATE, machine)


def test_the_batch_maps_processors_share_no_state_name() -> None:
    definition = _batch()
    prefix = set(_processor(definition, "FromPrefix")["States"])
    manifest = set(_processor(definition, "FromManifest")["States"])
    assert len(prefix) == len(manifest) == 5
    assert not prefix & manifest
    assert not (prefix | manifest) & set(definition["States"])


def test_a_state_name_used_twice_in_the_machine_is_refused() -> None:
    definition = _batch()
    processor = _processor(definition, "FromManifest")
    processor["States"] = {
        ("StartListedItem" if name == "StartRowItem" else name): state
        for name, state in processor["States"].items()
    }
    processor["StartAt"] = "StartListedItem"
    problems = _problems(definition)
    assert [p.message for p in problems] == [
        "DUPLICATE_STATE_NAMES: A state with this name already exists: StartListedItem"
    ]
    assert problems[0].where == (
        "/States/FromPrefix/ItemProcessor/States/StartListedItem, "
        "/States/FromManifest/ItemProcessor/States/StartListedItem"
    )


def test_a_state_name_twice_in_one_scope_is_refused() -> None:
    # JSON parsers keep the last of two keys: the first state would be lost without a word.
    text = json.dumps(_batch()).replace(
        '"FinishBatch": {', '"FinishBatch": {"Type": "Succeed"}, "FinishBatch": {', 1
    )
    assert Problem("/States", "key 'FinishBatch' appears twice: a JSON parser keeps the last") in (
        lint(text)
    )


@pytest.mark.parametrize(
    ("where", "field", "value"),
    [
        ("/States/FinishBatch", "InputPath", "$$$.x"),
        ("/States/Source?/Choices/0", "Variable", "not a path"),
        ("/States/FinishBatch/Parameters", "batch_id.$", "batch_id"),
        ("/States/FinishBatch/Parameters", "error.$", "States.Format('{}', $.error"),
    ],
)
def test_a_bad_path_is_refused(where: str, field: str, value: str) -> None:
    definition = _batch()
    target = definition
    for key in where.strip("/").split("/"):
        target = target[int(key)] if isinstance(target, list) else target[key]
    target[field] = value
    problems = _problems(definition)
    assert len(problems) == 1
    assert problems[0].where == f"{where}/{field}"
    assert problems[0].message.startswith("SCHEMA_VALIDATION_FAILED: must match format")


def test_a_transition_to_a_missing_state_is_refused() -> None:
    definition = _batch()
    _processor(definition, "FromPrefix")["States"]["SettleListedItem"]["Next"] = "Nowhere"
    problems = _problems(definition)
    assert problems == [
        Problem(
            "/", "MISSING_TRANSITION_TARGET: Missing 'StartAt'|'Next'|'Default' target: Nowhere"
        ),
        Problem(
            "/States/FromPrefix/ItemProcessor/States/SettleListedItem/Next",
            "'Nowhere' is not a state of this scope",
        ),
    ]


def test_a_transition_out_of_a_maps_processor_is_refused() -> None:
    # asl-validator checks the scope of an Iterator and of Parallel branches only.
    definition = _batch()
    _processor(definition, "FromPrefix")["States"]["RunListedJob"]["Catch"][0]["Next"] = (
        "FinishBatch"
    )
    assert _problems(definition) == [
        Problem(
            "/States/FromPrefix/ItemProcessor/States/RunListedJob/Catch/0/Next",
            "'FinishBatch' is not a state of this scope (it is /States/FinishBatch: a transition"
            " never leaves or enters a Map's processor or a Parallel branch)",
        )
    ]


def test_a_state_no_path_reaches_is_refused() -> None:
    # Each names the other: asl-validator counts a state named anywhere as reachable.
    definition = _batch()
    definition["States"]["Loop A"] = {"Type": "Pass", "Next": "Loop B"}
    definition["States"]["Loop B"] = {"Type": "Pass", "Next": "Loop A"}
    assert _problems(definition) == [
        Problem("/States/Loop A", "not reachable from 'Source?'"),
        Problem("/States/Loop B", "not reachable from 'Source?'"),
    ]


def test_a_state_name_longer_than_80_characters_is_refused() -> None:
    definition = _batch()
    name = "Finish" + "Batch" * 16
    definition["States"][name] = definition["States"].pop("FinishBatch")
    for state in ("FromPrefix", "FromManifest"):
        definition["States"][state]["Next"] = definition["States"][state]["Catch"][0]["Next"] = name
    problems = _problems(definition)
    assert Problem(f"/States/{name}", "a state name is at most 80 characters; 86 here") in problems


def test_retry_and_catch_rules_as_aws_reads_them() -> None:
    definition = _batch()
    finish = definition["States"]["FinishBatch"]
    finish["Retry"].insert(0, {"ErrorEquals": ["States.ALL"], "MaxAttempts": 1})
    finish["Retry"][1]["BackoffRate"] = 0.5
    definition["States"]["FromPrefix"]["Catch"][0]["ErrorEquals"] = ["States.ALL", "Oops"]
    assert _problems(definition) == [
        Problem("/States/FromPrefix/Catch/0", "States.ALL must be alone, in the last rule"),
        Problem("/States/FinishBatch/Retry/0", "States.ALL must be alone, in the last rule"),
        Problem("/States/FinishBatch/Retry/1/BackoffRate", "at least 1.0, not 0.5"),
    ]


def test_a_distributed_maps_fields_as_aws_reads_them() -> None:
    definition = _batch()
    manifest = definition["States"]["FromManifest"]
    manifest["ItemProcessor"]["ProcessorConfig"] = {"Mode": "INLINE"}
    definition["States"]["FromPrefix"]["ResultWriter"]["Resource"] = "arn:aws:states:::s3:get"
    inline = "only a DISTRIBUTED Map has one (this one is INLINE)"
    assert _problems(definition) == [
        Problem(
            "/States/FromPrefix/ResultWriter/Resource",
            "one of ['arn:aws:states:::s3:putObject'], not 'arn:aws:states:::s3:get'",
        ),
        Problem("/States/FromManifest/ItemReader", inline),
        Problem("/States/FromManifest/ResultWriter", inline),
        Problem("/States/FromManifest/ToleratedFailurePercentage", inline),
    ]


def test_the_command_names_each_problem_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert asl_lint.main([]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "statemachine/generation.asl.json: valid",
        "statemachine/batch.asl.json: valid",
    ]
    shutil.copy(ROOT / "template.yaml", tmp_path)
    shutil.copytree(ROOT / "statemachine", tmp_path / "statemachine")
    batch = tmp_path / "statemachine" / "batch.asl.json"
    broken = json.loads(batch.read_text())
    broken["States"]["FinishBatch"]["InputPath"] = "$$$.x"
    batch.write_text(json.dumps(broken))
    assert asl_lint.main(["--template", str(tmp_path / "template.yaml")]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "statemachine/generation.asl.json: valid",
        "statemachine/batch.asl.json: /States/FinishBatch/InputPath: SCHEMA_VALIDATION_FAILED:"
        ' must match format "asl_path"',
    ]
