"""What a state machine's role must allow, read from its definition: the permissions AWS
documents for each service integration it uses (Lambda tasks, startExecution.sync:2, a
Distributed Map's child executions, its ItemReader and ResultWriter, logging, tracing).

moto's engine runs a definition whatever its role says; this reads the definition as AWS's
engine would call, and checks each call against the role's policy. A path the input
fills (`"Key.$": "$.items_key"`) is checked with a sample value the caller gives, taken
from the code that writes that input.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from backdrop_local.iam.policy import Policy, Request


class UnknownIntegration(Exception):
    """A Task resource this model does not know the permissions of."""


@dataclass(frozen=True)
class Need:
    state: str  # where in the definition, e.g. FromPrefix > StartListedItem
    request: Request


_LOG_DELIVERY = [
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
]
_TRACING = [
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
]
_SYNC_RULE = "rule/StepFunctionsGetEventsForStepFunctionsExecutionRule"


class _Reader:
    def __init__(self, arn: str, samples: Mapping[str, str]) -> None:
        self.arn = arn  # the state machine's own
        _, self.partition, _, self.region, self.account, _ = arn.split(":", 5)
        self.samples = samples

    def value(self, parameters: Mapping[str, Any], name: str) -> str:
        """A parameter's value: as written, or the sample for the path that fills it."""
        if name in parameters:
            return str(parameters[name])
        path = parameters[f"{name}.$"]
        if path not in self.samples:
            raise KeyError(f"{name}.$ is {path}: give a sample value for it")
        return self.samples[path]

    def execution(self, machine_arn: str, name: str) -> str:
        return machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"

    def states(self, states: Mapping[str, Any], where: str) -> Iterator[Need]:
        for name, state in states.items():
            path = f"{where} > {name}" if where else name
            if state["Type"] == "Task":
                yield from (Need(path, r) for r in self.task(state))
            if state["Type"] == "Map":
                yield from self.map(state, path)
            for branch in state.get("Branches", []):
                yield from self.states(branch["States"], path)

    def task(self, state: Mapping[str, Any]) -> list[Request]:
        resource = state["Resource"]
        parameters = state.get("Parameters", {})
        if resource.startswith(f"arn:{self.partition}:lambda:"):
            return [Request("lambda:InvokeFunction", resource)]
        if resource == f"arn:{self.partition}:states:::lambda:invoke":
            return [Request("lambda:InvokeFunction", self.value(parameters, "FunctionName"))]
        prefix = f"arn:{self.partition}:states:::states:startExecution"
        if resource.startswith(prefix):
            machine = self.value(parameters, "StateMachineArn")
            needs = [Request("states:StartExecution", machine)]
            if resource != prefix:  # .sync or .sync:2: watched to its end
                execution = self.execution(machine, str(uuid.uuid4()))
                rule = f"arn:{self.partition}:events:{self.region}:{self.account}:{_SYNC_RULE}"
                needs += [
                    Request("states:DescribeExecution", execution),
                    Request("states:StopExecution", execution),
                ]
                needs += [
                    Request(f"events:{a}", rule) for a in ("PutTargets", "PutRule", "DescribeRule")
                ]
            return needs
        raise UnknownIntegration(f"Task resource {resource}: its permissions are not modelled")

    def map(self, state: Mapping[str, Any], path: str) -> Iterator[Need]:
        processor = state.get("ItemProcessor") or state["Iterator"]
        if processor.get("ProcessorConfig", {}).get("Mode") == "DISTRIBUTED":
            # Child workflows are executions of this state machine, <name>/<label>:<id>.
            name = self.arn.rsplit(":", 1)[1]
            child = self.execution(self.arn, "x").rsplit(":", 2)[0]
            child += f":{name}/{uuid.uuid4()}:{uuid.uuid4()}"
            yield Need(path, Request("states:StartExecution", self.arn))
            for action in ("DescribeExecution", "StopExecution"):
                yield Need(path, Request(f"states:{action}", child))
        if "ItemReader" in state:
            yield from (Need(f"{path} (ItemReader)", r) for r in self.reader(state["ItemReader"]))
        if "ResultWriter" in state:
            yield from (
                Need(f"{path} (ResultWriter)", r) for r in self.writer(state["ResultWriter"])
            )
        yield from self.states(processor["States"], path)

    def _object(self, bucket: str, key: str) -> str:
        return f"arn:{self.partition}:s3:::{bucket}/{key}"

    def reader(self, reader: Mapping[str, Any]) -> list[Request]:
        parameters = reader.get("Parameters", {})
        bucket = self.value(parameters, "Bucket")
        if reader["Resource"].endswith(":s3:listObjectsV2"):
            context = {"s3:prefix": self.value(parameters, "Prefix")}
            return [Request("s3:ListBucket", f"arn:{self.partition}:s3:::{bucket}", context)]
        if reader["Resource"].endswith(":s3:getObject"):
            key = self.value(parameters, "Key")
            return [Request("s3:GetObject", self._object(bucket, key))]
        raise UnknownIntegration(f"ItemReader {reader['Resource']}: not modelled")

    def writer(self, writer: Mapping[str, Any]) -> list[Request]:
        parameters = writer.get("Parameters", {})
        # Its files: <Prefix>/<map run id>/manifest.json and the results, written in parts.
        key = f"{self.value(parameters, 'Prefix')}/{uuid.uuid4()}/manifest.json"
        resource = self._object(self.value(parameters, "Bucket"), key)
        actions = ("PutObject", "GetObject", "ListMultipartUploadParts", "AbortMultipartUpload")
        return [Request(f"s3:{action}", resource) for action in actions]


def needs(
    definition: Mapping[str, Any],
    *,
    arn: str,
    logging: bool,
    tracing: bool,
    samples: Mapping[str, str] | None = None,
) -> list[Need]:
    """Every call the state machine `arn` makes as AWS runs `definition`."""
    found = list(_Reader(arn, samples or {}).states(definition["States"], ""))
    if logging:
        found += [Need("(logging)", Request(action, "*")) for action in _LOG_DELIVERY]
    if tracing:
        found += [Need("(tracing)", Request(action, "*")) for action in _TRACING]
    return found


def refused(policy: Policy, found: list[Need]) -> list[str]:
    """What the role would refuse, one line per call: state, action, resource."""
    return [
        f"{need.state}: {need.request.action} on {need.request.resource}"
        for need in found
        if not policy.allows(need.request)
    ]
