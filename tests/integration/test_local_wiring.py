"""The local stack is wired from the template, whatever it holds: a second state machine,
EventBridge rules with Lambda and Step Functions targets; and a template with something
it cannot run fails at once, naming it."""

from __future__ import annotations

import copy
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from backdrop_local import eventbridge
from backdrop_local.cloud import REGION, LocalStackUnsupported
from backdrop_local.pollers import Ticker
from backdrop_local.template import TEMPLATE_PATH, Template
from tests.integration import wiring_handlers
from tests.integration.conftest import Stack

# A Pass state, then a Task on the recording function, then Succeed.
SECOND_DEFINITION = {
    "StartAt": "Greet",
    "States": {
        "Greet": {"Type": "Pass", "Result": "hello", "ResultPath": "$.greeting", "Next": "Record"},
        "Record": {"Type": "Task", "Resource": "${RecorderArn}", "ResultPath": "$.recorded",
                   "Next": "Done"},
        "Done": {"Type": "Succeed"},
    },
}  # fmt: skip

RECORDER = {
    "Type": "AWS::Serverless::Function",
    "Properties": {
        "Handler": "tests.integration.wiring_handlers.handler",
        "Events": {
            # SAM's shape: a rule on the stack's bus with this pattern, the function its target.
            "Announced": {
                "Type": "EventBridgeRule",
                "Properties": {
                    "EventBusName": {"Ref": "EventBus"},
                    "Pattern": {"source": ["wiring-test"]},
                },
            },
            "Nightly": {
                "Type": "Schedule",
                "Properties": {"Schedule": "rate(1 day)", "Input": '{"kind": "nightly"}'},
            },
        },
    },
}
SECOND_STATE_MACHINE = {
    "Type": "AWS::Serverless::StateMachine",
    "Properties": {
        "DefinitionUri": "statemachine/second.asl.json",
        "DefinitionSubstitutions": {"RecorderArn": {"Fn::GetAtt": ["RecorderFunction", "Arn"]}},
    },
}
# CloudFormation's own shape: a rule starting the second state machine.
START_RULE = {
    "Type": "AWS::Events::Rule",
    "Properties": {
        "EventBusName": {"Ref": "EventBus"},
        "EventPattern": {"source": ["wiring-test"], "detail-type": ["Start"]},
        "Targets": [{"Id": "second", "Arn": {"Ref": "SecondStateMachine"}}],
    },
}
TICK_RULE = {
    "Type": "AWS::Events::Rule",
    "Properties": {
        "ScheduleExpression": "rate(5 minutes)",
        "Targets": [{"Id": "second", "Arn": {"Ref": "SecondStateMachine"}}],
    },
}


def _template(tmp_path: Path, **resources: dict[str, Any]) -> Template:
    """template.yaml and its state machines, copied, with these resources added."""
    shutil.copy(TEMPLATE_PATH, tmp_path / "template.yaml")
    shutil.copytree(TEMPLATE_PATH.parent / "statemachine", tmp_path / "statemachine")
    (tmp_path / "statemachine" / "second.asl.json").write_text(json.dumps(SECOND_DEFINITION))
    template = Template(tmp_path / "template.yaml")
    template.resources.update(resources)
    return template


@pytest.fixture
def wired(make_stack: Callable[..., Stack], tmp_path: Path) -> Stack:
    wiring_handlers.received.clear()
    template = _template(
        tmp_path,
        RecorderFunction=RECORDER,
        SecondStateMachine=SECOND_STATE_MACHINE,
        StartRule=START_RULE,
        TickRule=TICK_RULE,
    )
    return make_stack(template)


def _wait_for(found: Callable[[], Any], what: str, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := found():
            return result
        time.sleep(0.1)
    raise AssertionError(f"no {what} after {timeout}s")


def _put(stack: Stack, detail_type: str, detail: dict[str, Any]) -> None:
    answer = boto3.client("events", region_name=REGION).put_events(
        Entries=[
            {
                "EventBusName": stack.cloud.event_bus,
                "Source": "wiring-test",
                "DetailType": detail_type,
                "Detail": json.dumps(detail),
            }
        ]
    )
    assert answer["FailedEntryCount"] == 0


def _executions(arn: str) -> list[dict[str, Any]]:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    return sfn.list_executions(stateMachineArn=arn)["executions"]  # type: ignore[no-any-return]


def _finished(execution_arn: str) -> dict[str, Any] | None:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    execution = sfn.describe_execution(executionArn=execution_arn)
    return None if execution["status"] == "RUNNING" else execution  # type: ignore[no-any-return]


def test_every_state_machine_is_created_and_the_workflow_stays_the_default(wired: Stack) -> None:
    machines = wired.cloud.state_machines
    assert set(machines) == {"GenerationStateMachine", "BatchStateMachine", "SecondStateMachine"}
    # The one the functions start, as before.
    assert wired.cloud.state_machine_arn == machines["GenerationStateMachine"]
    assert wired.cloud.functions["RecorderFunction"] == "backdrop-recorderfunction"


def test_second_state_machine_runs_to_success(wired: Stack) -> None:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    arn = wired.cloud.state_machines["SecondStateMachine"]
    started = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"n": 1}))
    execution = _wait_for(lambda: _finished(started["executionArn"]), "finished execution")
    assert execution["status"] == "SUCCEEDED"
    assert json.loads(execution["output"]) == {
        "n": 1,
        "greeting": "hello",
        "recorded": {"recorded": True},
    }
    assert {"n": 1, "greeting": "hello"} in wiring_handlers.received


def test_a_rule_delivers_to_its_lambda_target(wired: Stack) -> None:
    _put(wired, "Ping", {"n": 2})
    (event,) = _wait_for(lambda: wiring_handlers.received, "event at the function")
    # The event as EventBridge delivers it.
    assert event["source"] == "wiring-test"
    assert event["detail-type"] == "Ping"
    assert event["detail"] == {"n": 2}
    assert event["account"] == "123456789012"
    assert event["time"].endswith("Z")
    # Ping matches the function's rule only: no execution was started.
    assert _executions(wired.cloud.state_machines["SecondStateMachine"]) == []


def test_a_rule_starts_its_state_machine_target(wired: Stack) -> None:
    arn = wired.cloud.state_machines["SecondStateMachine"]
    _put(wired, "Start", {"n": 3})
    (execution,) = _wait_for(lambda: _executions(arn), "execution started by the rule")
    finished = _wait_for(lambda: _finished(execution["executionArn"]), "finished execution")
    assert finished["status"] == "SUCCEEDED"
    started_with = json.loads(finished["input"])
    assert (started_with["detail-type"], started_with["detail"]) == ("Start", {"n": 3})
    # The function's own rule matched the event too: it got the event, then the task's input.
    _wait_for(lambda: len(wiring_handlers.received) == 2, "both deliveries")


def test_scheduled_rules_fire_to_their_targets(wired: Stack) -> None:
    rates = {schedule.seconds: schedule.rule_arn for schedule in wired.cloud.schedules}
    assert set(rates) == {86400, 300}  # the function's rate(1 day), the rule's rate(5 minutes)
    # What the stack's tickers do when a schedule is due.
    eventbridge.fire_schedule(rates[86400])
    received = _wait_for(lambda: wiring_handlers.received, "scheduled event at the function")
    assert received == [{"kind": "nightly"}]  # the event's Input
    eventbridge.fire_schedule(rates[300])
    arn = wired.cloud.state_machines["SecondStateMachine"]
    (execution,) = _wait_for(lambda: _executions(arn), "execution started by the schedule")
    finished = _wait_for(lambda: _finished(execution["executionArn"]), "finished execution")
    assert json.loads(finished["input"])["detail-type"] == "Scheduled Event"


def test_events_put_on_the_default_bus_do_not_fire_schedules(wired: Stack) -> None:
    events = boto3.client("events", region_name=REGION)
    entry = {"Source": "wiring-test", "DetailType": "Start", "Detail": "{}"}
    events.put_events(Entries=[entry])
    time.sleep(0.5)
    assert wiring_handlers.received == []
    assert _executions(wired.cloud.state_machines["SecondStateMachine"]) == []


def test_a_ticker_ticks_until_stopped() -> None:
    ticks: list[float] = []
    ticker = Ticker(0.01, lambda: ticks.append(time.monotonic()))
    ticker.start()
    _wait_for(lambda: len(ticks) >= 3, "three ticks", timeout=5)
    ticker.stop()
    count = len(ticks)
    time.sleep(0.05)
    assert len(ticks) == count


def test_published_events_still_reach_the_local_capture_queue(wired: Stack) -> None:
    boto3.client("events", region_name=REGION).put_events(
        Entries=[
            {
                "EventBusName": wired.cloud.event_bus,
                "Source": "backdrop",
                "DetailType": "Generation Succeeded",
                "Detail": json.dumps({"job_id": "j-1"}),
            }
        ]
    )
    (event,) = wired.published_events()
    assert event["detail"] == {"job_id": "j-1"}
    assert wiring_handlers.received == []  # not the function's pattern


def test_an_unknown_resource_type_fails_at_once_naming_it(
    make_stack: Callable[..., Stack], tmp_path: Path
) -> None:
    stream = {"Type": "AWS::Kinesis::Stream", "Properties": {"ShardCount": 1}}
    template = _template(tmp_path, ClickStream=stream)
    with pytest.raises(LocalStackUnsupported, match=r"ClickStream: .*AWS::Kinesis::Stream"):
        make_stack(template)
    # Before anything was created.
    assert boto3.client("dynamodb", region_name=REGION).list_tables()["TableNames"] == []


def test_a_cron_schedule_fails_at_once_naming_it(
    make_stack: Callable[..., Stack], tmp_path: Path
) -> None:
    rule = copy.deepcopy(TICK_RULE)
    rule["Properties"]["ScheduleExpression"] = "cron(0 12 * * ? *)"
    machine = {"RecorderFunction": RECORDER, "SecondStateMachine": SECOND_STATE_MACHINE}
    template = _template(tmp_path, TickRule=rule, **machine)
    with pytest.raises(LocalStackUnsupported, match=r"TickRule: ScheduleExpression cron\("):
        make_stack(template)


@pytest.mark.parametrize("event_type", ["S3", "Kinesis", "ScheduleV2"])
def test_an_unsupported_function_event_fails_at_once_naming_it(
    make_stack: Callable[..., Stack], tmp_path: Path, event_type: str
) -> None:
    recorder = copy.deepcopy(RECORDER)
    recorder["Properties"]["Events"] = {"Trigger": {"Type": event_type, "Properties": {}}}
    template = _template(tmp_path, RecorderFunction=recorder)
    expected = rf"RecorderFunction: event Trigger of type {event_type} is not supported"
    with pytest.raises(LocalStackUnsupported, match=expected):
        make_stack(template)
