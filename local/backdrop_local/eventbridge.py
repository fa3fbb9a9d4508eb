"""EventBridge rule targets that moto does not deliver to: Lambda functions and Step
Functions state machines (moto sends to SQS, logs and buses, and raises for the others).

moto hands every event put on a bus to each rule's `send_to_targets`, its one delivery
point; that method is wrapped here. Our targets get the event as AWS sends it, asynchronously
(a Lambda target is an `Event` invocation, a state machine target a StartExecution), each
on its own thread so that PutEvents returns at once; moto keeps delivering the rest.
Scheduled rules are fired by the local stack's tickers through `fire_schedule`.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any, cast

import boto3
from moto.events.models import Rule, events_backends
from moto.events.utils import EventMessageType, EventTemplateParser

logger = logging.getLogger(__name__)

_moto_send_to_targets = Rule.send_to_targets
# The targets delivered here: the service in their ARN -> its boto3 client.
DELIVERED_HERE = {"lambda": "lambda", "states": "stepfunctions"}


def _service(target: dict[str, Any]) -> str:
    return str(target["Arn"].split(":")[2])


def _region(target: dict[str, Any]) -> str:
    return str(target["Arn"].split(":")[3])


def aws_event(event: EventMessageType) -> dict[str, Any]:
    """The event as EventBridge delivers it: moto's copy has an epoch `time` and its own
    `ingestion-time`."""
    delivered: dict[str, Any] = {k: v for k, v in event.items() if k != "ingestion-time"}
    if isinstance(delivered.get("time"), int | float):
        moment = datetime.fromtimestamp(delivered["time"], UTC)
        delivered["time"] = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return delivered


def target_input(target: dict[str, Any], event: dict[str, Any]) -> Any:
    """What the target receives: the event, or what the target's Input* settings make of it."""
    if "Input" in target:
        return json.loads(target["Input"])
    if "InputPath" in target:
        found: Any = event  # a simple path, e.g. $.detail or $.detail.job_id
        for part in filter(None, target["InputPath"].removeprefix("$").split(".")):
            found = found[part]
        return found
    if "InputTransformer" in target:
        transformer = target["InputTransformer"]
        return EventTemplateParser.parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            event=cast(EventMessageType, event),
        )
    return event


def deliver(target: dict[str, Any], payload: Any) -> None:
    """Hand one event to a Lambda or Step Functions target, as EventBridge does."""
    service = _service(target)
    client = boto3.session.Session().client(DELIVERED_HERE[service], region_name=_region(target))
    body = json.dumps(payload)
    if service == "lambda":
        answer = client.invoke(FunctionName=target["Arn"], InvocationType="Event", Payload=body)
        if answer.get("FunctionError"):
            # An asynchronous invocation's failure is the function's log line, nobody's answer.
            logger.error("%s failed on an event: %s", target["Arn"], answer["Payload"].read())
    else:
        client.start_execution(stateMachineArn=target["Arn"], input=body)


def _deliver_in_background(target: dict[str, Any], payload: Any) -> None:
    def run() -> None:
        try:
            deliver(target, payload)
        except Exception:
            logger.exception("could not deliver an event to %s", target["Arn"])

    threading.Thread(target=run, daemon=True).start()


def send_to_targets(self: Rule, event: EventMessageType, transform_input: bool = True) -> None:
    # A disabled rule delivers nothing; a schedule-only rule has no pattern, which moto
    # would take as matching every event put on the bus.
    if self.state == "DISABLED" or not self.event_pattern.get_pattern():
        return
    if self.event_pattern.matches_event(event):
        _to_targets(self, event, transform_input)


def _to_targets(rule: Rule, event: EventMessageType, transform_input: bool = True) -> None:
    ours = [target for target in rule.targets if _service(target) in DELIVERED_HERE]
    for target in ours:
        _deliver_in_background(target, target_input(target, aws_event(event)))
    rest = copy.copy(rule)  # the same rule with moto's own targets only
    rest.targets = [target for target in rule.targets if target not in ours]
    _moto_send_to_targets(rest, event, transform_input)


def fire_schedule(rule_arn: str) -> None:
    """A scheduled rule is due (moto keeps schedules but never runs them): each of its
    targets gets the Scheduled Event EventBridge sends."""
    _, _, _, region, account, resource = rule_arn.split(":", 5)
    rule = events_backends[account][region].describe_rule(resource.rsplit("/", 1)[-1], None)
    if rule.state == "DISABLED":
        return
    event = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": time.time(),  # moto's form: delivery writes it as AWS does
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }
    _to_targets(rule, cast(EventMessageType, event))


def install() -> None:
    Rule.send_to_targets = send_to_targets  # type: ignore[method-assign,assignment]
