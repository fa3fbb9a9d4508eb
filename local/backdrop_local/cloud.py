"""Create the template's resources in an embedded AWS (moto), in-process or server mode.

Used by `backdrop local` and by the integration tests, so both run what SAM deploys.
Resources are created in dependency order, each type by one creator (CREATORS), each
function event by one too (EVENT_CREATORS); the types that need nothing locally are
NO_OPS. Anything else fails before anything is created, with LocalStackUnsupported naming
the logical id and the type: a template the local stack would only half run is an error.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3

from backdrop_local import sam
from backdrop_local.iam import enforce
from backdrop_local.template import (
    FunctionSpec,
    LocalStackUnsupported,
    Resolver,
    Template,
    substitute,
)

__all__ = ["LocalCloud", "LocalStackUnsupported", "provision"]

STACK = "backdrop"
ACCOUNT = "123456789012"
REGION = "us-east-1"


@dataclass(frozen=True)
class Queue:
    url: str
    arn: str
    dead_letter_arn: str | None = None  # from its redrive policy


@dataclass(frozen=True)
class EventSource:
    """A function's SQS event: the local stack's pollers do what Lambda's event source
    mapping does, feeding the queue's messages to the function."""

    function: str  # logical id
    queue_url: str
    queue_arn: str
    batch_size: int


@dataclass(frozen=True)
class Schedule:
    """A scheduled rule: the local stack fires it every `seconds` (moto never does)."""

    rule_arn: str
    seconds: int


@dataclass
class LocalCloud:
    """Names and ARNs of what was created, and the environment the functions get.

    The first fields name the parts of this stack that tests and the ready file use; they
    are derived from what was created (see `_local_cloud`), the rest lists everything."""

    input_bucket: str
    results_bucket: str
    jobs_table: str
    event_bus: str
    inbox_queue_url: str
    inbox_dlq_url: str
    state_machine_arn: str
    events_queue_url: str
    functions: dict[str, str]  # logical id -> function name
    environment: dict[str, str] = field(default_factory=dict)
    state_machines: dict[str, str] = field(default_factory=dict)  # logical id -> ARN
    queues: dict[str, Queue] = field(default_factory=dict)  # logical id -> queue
    buckets: dict[str, str] = field(default_factory=dict)  # logical id -> bucket name
    rules: dict[str, str] = field(default_factory=dict)  # rule name -> ARN
    event_sources: list[EventSource] = field(default_factory=list)
    schedules: list[Schedule] = field(default_factory=list)
    api_events: dict[str, dict[str, Any]] = field(default_factory=dict)  # function -> events
    rest_api: dict[str, Any] = field(default_factory=dict)  # the Api's properties, if any
    roles: dict[str, str] = field(default_factory=dict)  # function/state machine -> role ARN


@dataclass
class _Build:
    """What provisioning has created so far: the values references resolve to, and the
    parts the local stack wires together afterwards."""

    template: Template
    refs: dict[str, str]
    secrets: dict[str, str]
    attrs: dict[tuple[str, str], str] = field(default_factory=dict)
    functions: dict[str, str] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    state_machines: dict[str, str] = field(default_factory=dict)
    queues: dict[str, Queue] = field(default_factory=dict)
    buckets: dict[str, str] = field(default_factory=dict)
    notified_queues: dict[str, list[str]] = field(default_factory=dict)  # bucket -> queue ARNs
    rules: dict[str, str] = field(default_factory=dict)
    event_sources: list[EventSource] = field(default_factory=list)
    schedules: list[Schedule] = field(default_factory=list)
    api_events: dict[str, dict[str, Any]] = field(default_factory=dict)
    rest_api_id: str | None = None
    # function or state machine -> (its role's logical id, the role's ARN)
    roles: dict[str, tuple[str, str]] = field(default_factory=dict)
    _expanded: dict[str, Any] | None = None

    @property
    def expanded(self) -> dict[str, Any]:
        """The template as SAM hands it to CloudFormation (the roles SAM makes)."""
        if self._expanded is None:
            self._expanded = sam.expanded(self.template)
        return self._expanded

    def resolve(self, value: Any) -> Any:
        return self.resolver(value)

    @property
    def resolver(self) -> Resolver:
        return Resolver(self.refs, self.attrs, self.template.body.get("Conditions", {}))

    def created(self, logical_id: str, ref: str, arn: str) -> None:
        """Record what `!Ref logical_id` and `!GetAtt logical_id.Arn` now resolve to."""
        self.refs[logical_id] = ref
        self.attrs[(logical_id, "Arn")] = arn


def _name(logical_id: str) -> str:
    return f"{STACK}-{logical_id.lower()}"


# One client per service while a stack is provisioned, from one session for the process
# (which keeps the service models it has loaded): provisioning makes dozens of calls, and
# a client made from scratch costs tens of milliseconds. `provision` starts with new
# clients, as the AWS it talks to may be another (a new mock, new credentials).
_session = boto3.session.Session()
_clients: dict[str, Any] = {}


def _client(service: str) -> Any:
    if service not in _clients:
        _clients[service] = _session.client(service, region_name=REGION)
    return _clients[service]


def provision(
    *,
    parameters: dict[str, str] | None = None,
    secrets: dict[str, str] | None = None,
    template: Template | None = None,
) -> LocalCloud:
    """Create every resource; `parameters` override the template's defaults, `secrets`
    gives secret values by logical id (default: a key the emulator accepts)."""
    _clients.clear()
    template = template or Template()
    _check_supported(template)
    refs = {
        **template.parameter_defaults(),
        **(parameters or {}),
        "AWS::AccountId": ACCOUNT,
        "AWS::Partition": "aws",
        "AWS::Region": REGION,
        "AWS::StackName": STACK,
        "AWS::URLSuffix": "amazonaws.com",
    }
    build = _Build(template=template, refs=refs, secrets=secrets or {})
    enforce.forget()
    for logical_id in template.creation_order():
        creator = CREATORS.get(template.type_of(logical_id))
        condition = template.resources[logical_id].get("Condition")
        if condition is not None and not build.resolver.holds(condition):
            continue  # as CloudFormation: a resource whose condition is false is not made
        if creator is not None:
            creator(build, logical_id, template.properties(logical_id))
    _attach_policies(build)  # once every resource they name exists
    return _local_cloud(build)


def _check_supported(template: Template) -> None:
    for logical_id in template.resources:
        kind = template.type_of(logical_id)
        if kind not in CREATORS and kind not in NO_OPS:
            raise LocalStackUnsupported(
                f"{logical_id}: resource type {kind} is not supported by the local stack"
            )
    for spec in template.functions():
        for event_name, event in spec.events.items():
            if event.get("Type") not in EVENT_CREATORS:
                raise LocalStackUnsupported(
                    f"{spec.logical_id}: event {event_name} of type {event.get('Type')} "
                    "is not supported by the local stack"
                )


# ---- Resources ---------------------------------------------------------------------------


def _table(build: _Build, logical_id: str, props: dict[str, Any]) -> None:
    props = build.resolve(props)
    name = _name(logical_id)
    optional = ("GlobalSecondaryIndexes", "LocalSecondaryIndexes", "ProvisionedThroughput")
    _client("dynamodb").create_table(
        TableName=name,
        AttributeDefinitions=props["AttributeDefinitions"],
        KeySchema=props["KeySchema"],
        BillingMode=props.get("BillingMode", "PROVISIONED"),
        **{key: props[key] for key in optional if key in props},
    )
    build.created(logical_id, name, f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}")


def _queue(build: _Build, logical_id: str, props: dict[str, Any]) -> None:
    # Created after its dead-letter queue: the redrive policy references it.
    name = _name(logical_id)
    attributes = {"VisibilityTimeout": str(props.get("VisibilityTimeout", 30))}
    redrive = build.resolve(props.get("RedrivePolicy"))
    if redrive:
        attributes["RedrivePolicy"] = json.dumps(redrive)
    url = _client("sqs").create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
    dead_letter_arn = redrive["deadLetterTargetArn"] if redrive else None
    build.queues[logical_id] = Queue(url, arn, dead_letter_arn)
    build.created(logical_id, url, arn)


def _bucket(build: _Build, logical_id: str, props: dict[str, Any]) -> None:
    s3 = _client("s3")
    name = _name(logical_id)
    s3.create_bucket(Bucket=name)
    if props.get("VersioningConfiguration", {}).get("Status") == "Enabled":
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    build.created(logical_id, name, f"arn:aws:s3:::{name}")
    build.buckets[logical_id] = name
    if "NotificationConfiguration" in props:
        config = build.resolve(props["NotificationConfiguration"])
        s3.put_bucket_notification_configuration(
            Bucket=name, NotificationConfiguration=_notification(logical_id, config)
        )
        queues = config.get("QueueConfigurations", [])
        build.notified_queues[logical_id] = [queue["Queue"] for queue in queues]


def _notification(logical_id: str, config: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's notification shape -> the S3 API's (notifications to queues)."""
    others = set(config) - {"QueueConfigurations"}
    if others:
        raise LocalStackUnsupported(
            f"{logical_id}: S3 notifications {sorted(others)} are not supported by the local "
            "stack (only QueueConfigurations)"
        )
    queues = []
    for item in config.get("QueueConfigurations", []):
        rules = item.get("Filter", {}).get("S3Key", {}).get("Rules", [])
        queues.append(
            {
                "QueueArn": item["Queue"],
                "Events": [item["Event"]],
                "Filter": {"Key": {"FilterRules": rules}},
            }
        )
    return {"QueueConfigurations": queues}


def _event_bus(build: _Build, logical_id: str, props: dict[str, Any]) -> None:
    name = build.resolve(props["Name"])
    arn = _client("events").create_event_bus(Name=name)["EventBusArn"]
    build.created(logical_id, name, arn)


def _secret(build: _Build, logical_id: str, props: dict[str, Any]) -> None:
    arn = _client("secretsmanager").create_secret(
        Name=_name(logical_id),
        SecretString=build.secrets.get(logical_id, "local-emulator-key"),
    )["ARN"]
    build.created(logical_id, arn, arn)  # a secret's Ref is its ARN


def _function(build: _Build, logical_id: str, props: dict[str, Any]) -> None:
    spec = build.template.function(logical_id)
    env = {key: str(value) for key, value in build.resolve(spec.environment).items()}
    _merge(build.environment, env, spec)
    name = _name(logical_id)
    arn = _client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.13",
        Role=_role(build, logical_id),
        Handler=spec.handler,
        Code={"ZipFile": _dummy_zip()},
        Timeout=spec.timeout,
        Environment={"Variables": env},
    )["FunctionArn"]
    build.functions[logical_id] = name
    build.created(logical_id, name, arn)
    for event_name, event in spec.events.items():
        EVENT_CREATORS[event["Type"]](build, logical_id, event_name, event.get("Properties", {}))


def _merge(environment: dict[str, str], env: dict[str, str], spec: FunctionSpec) -> None:
    # The functions run in one process here, so they must agree on every variable.
    for key, value in env.items():
        if environment.setdefault(key, value) != value:
            raise ValueError(f"{spec.logical_id} sets {key} differently from another function")


def _dummy_zip() -> bytes:
    # moto stores code but never runs it: the dispatcher calls our handlers in-process.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("placeholder.py", "")
    return buffer.getvalue()


def _state_machine(build: _Build, logical_id: str, props: dict[str, Any]) -> None:
    spec = build.template.state_machine(logical_id)
    values = {key: str(value) for key, value in build.resolve(spec.substitutions).items()}
    # Named as the template names it: its own policy may name it (a Distributed Map's).
    name = build.resolve(props["Name"]) if "Name" in props else _name(logical_id)
    arn = _client("stepfunctions").create_state_machine(
        name=name,
        definition=substitute(spec.definition, values),
        roleArn=_role(build, logical_id),
    )["stateMachineArn"]
    build.state_machines[logical_id] = arn
    build.created(logical_id, arn, arn)  # a state machine's Ref is its ARN
    build.attrs[(logical_id, "Name")] = name


def _rule(build: _Build, logical_id: str, props: dict[str, Any]) -> None:
    props = build.resolve(props)
    name = props.get("Name") or _name(logical_id)
    arn = _put_rule(build, logical_id, name, props)
    _client("events").put_targets(
        Rule=name, EventBusName=props.get("EventBusName", "default"), Targets=props["Targets"]
    )
    build.created(logical_id, name, arn)


def _put_rule(build: _Build, owner: str, name: str, props: dict[str, Any]) -> str:
    """A rule on its bus; `props` in AWS::Events::Rule's shape, references resolved."""
    state = props.get("State", "ENABLED")
    rule: dict[str, Any] = {"Name": name, "State": state}
    rule["EventBusName"] = props.get("EventBusName", "default")
    if "EventPattern" in props:
        rule["EventPattern"] = json.dumps(props["EventPattern"])
    if "ScheduleExpression" in props:
        seconds = _rate_seconds(owner, props["ScheduleExpression"])
        rule["ScheduleExpression"] = props["ScheduleExpression"]
    arn = str(_client("events").put_rule(**rule)["RuleArn"])
    if "ScheduleExpression" in props and state == "ENABLED":
        build.schedules.append(Schedule(arn, seconds))
    build.rules[name] = arn
    return arn


RATE = re.compile(r"rate\((\d+) (minute|hour|day)s?\)")
UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def _rate_seconds(owner: str, expression: str) -> int:
    found = RATE.fullmatch(expression.strip())
    if found is None:
        raise LocalStackUnsupported(
            f"{owner}: ScheduleExpression {expression} is not supported by the local stack "
            "(only rate() schedules run)"
        )
    return int(found[1]) * UNIT_SECONDS[found[2]]


# ---- Function events ---------------------------------------------------------------------


def _api_event(build: _Build, function: str, event_name: str, props: dict[str, Any]) -> None:
    # Served by the local HTTP front (api_front.py), which plays one REST API.
    rest_api_id = props.get("RestApiId", {"Ref": "ServerlessRestApi"})["Ref"]
    if build.rest_api_id not in (None, rest_api_id):
        raise LocalStackUnsupported(
            f"{function}: event {event_name} is on a second REST API ({rest_api_id}); "
            "the local front serves one"
        )
    build.rest_api_id = rest_api_id
    build.api_events.setdefault(function, {})[event_name] = {"Type": "Api", "Properties": props}


def _sqs_event(build: _Build, function: str, event_name: str, props: dict[str, Any]) -> None:
    queue_arn = build.resolve(props["Queue"])
    queue = next((q for q in build.queues.values() if q.arn == queue_arn), None)
    if queue is None:
        raise LocalStackUnsupported(f"{function}: event {event_name} reads a queue not created")
    source = EventSource(function, queue.url, queue.arn, int(props.get("BatchSize", 10)))
    build.event_sources.append(source)


def _eventbridge_rule_event(
    build: _Build, function: str, event_name: str, props: dict[str, Any]
) -> None:
    props = build.resolve(props)
    rule = {"EventBusName": props.get("EventBusName", "default"), "EventPattern": props["Pattern"]}
    _rule_to_function(build, function, event_name, rule, props)


def _schedule_event(build: _Build, function: str, event_name: str, props: dict[str, Any]) -> None:
    props = build.resolve(props)
    enabled = props.get("Enabled", True)
    rule = {"ScheduleExpression": props["Schedule"], "State": "ENABLED" if enabled else "DISABLED"}
    _rule_to_function(build, function, event_name, rule, props)


def _rule_to_function(
    build: _Build, function: str, event_name: str, rule: dict[str, Any], props: dict[str, Any]
) -> None:
    """What SAM makes of a function's rule event: the rule, the function its one target."""
    name = props.get("RuleName") or props.get("Name") or _name(f"{function}-{event_name}")
    if "State" in props:
        rule["State"] = props["State"]
    _put_rule(build, function, name, rule)
    target_id = props.get("Target", {}).get("Id", f"{function}{event_name}LambdaTarget")
    target = {"Id": target_id, "Arn": build.attrs[(function, "Arn")]}
    target |= {k: props[k] for k in ("Input", "InputPath", "InputTransformer") if k in props}
    bus = rule.get("EventBusName", "default")
    _client("events").put_targets(Rule=name, EventBusName=bus, Targets=[target])


Creator = Callable[[_Build, str, dict[str, Any]], None]
EventCreator = Callable[[_Build, str, str, dict[str, Any]], None]

CREATORS: dict[str, Creator] = {
    "AWS::DynamoDB::Table": _table,
    "AWS::SQS::Queue": _queue,
    "AWS::S3::Bucket": _bucket,
    "AWS::Events::EventBus": _event_bus,
    "AWS::SecretsManager::Secret": _secret,
    "AWS::Serverless::Function": _function,
    "AWS::Serverless::StateMachine": _state_machine,
    "AWS::Events::Rule": _rule,
}
EVENT_CREATORS: dict[str, EventCreator] = {
    "Api": _api_event,
    "SQS": _sqs_event,
    "EventBridgeRule": _eventbridge_rule_event,
    "Schedule": _schedule_event,
}
# Types with nothing to create locally, and why.
NO_OPS = {
    # Resource policies and invoke permissions: moto delivers inside its backends, not as
    # calls a role makes (the functions' and state machines' own roles are enforced: iam/).
    "AWS::SQS::QueuePolicy",
    "AWS::S3::BucketPolicy",
    "AWS::Lambda::Permission",
    # Logs go to this process's output; dependencies are this environment's packages.
    "AWS::Logs::LogGroup",
    "AWS::Serverless::LayerVersion",
    # Played by the HTTP front, from the properties and the functions' Api events.
    "AWS::Serverless::Api",
    # Operations and audit: alarms, their topic and the dashboard watch CloudWatch metrics,
    # which the local stack does not collect (its metrics are off); API Gateway's log role
    # and the access-log settings are AWS's own plumbing (the roles SAM makes for the
    # functions and state machines are created with them: `_role`).
    "AWS::CloudWatch::Alarm",
    "AWS::CloudWatch::Dashboard",
    "AWS::SNS::Topic",
    "AWS::SNS::TopicPolicy",
    "AWS::SNS::Subscription",
    "AWS::IAM::Role",
    "AWS::ApiGateway::Account",
}


# ---- The result --------------------------------------------------------------------------


def _rest_api(build: _Build, logical_id: str | None) -> dict[str, Any]:
    """The Api's properties, its own document resolved (the front plays its mock methods)."""
    if logical_id is None or logical_id not in build.template.resources:
        return {}
    props = dict(build.template.properties(logical_id))
    if "DefinitionBody" in props:
        props["DefinitionBody"] = build.resolve(props["DefinitionBody"])
    return props


def _local_cloud(build: _Build) -> LocalCloud:
    inbox = _inbox_queue(build)
    dead_letter = next(
        (q.url for q in build.queues.values() if inbox and q.arn == inbox.dead_letter_arn), ""
    )
    input_bucket = next(
        (
            build.buckets[bucket]
            for bucket, arns in build.notified_queues.items()
            if inbox and inbox.arn in arns
        ),
        "",
    )
    env = build.environment
    bus = env.get("EVENT_BUS_NAME", "")
    rest_api_id = build.rest_api_id
    return LocalCloud(
        input_bucket=input_bucket,
        results_bucket=env.get("RESULTS_BUCKET", ""),
        jobs_table=env.get("JOBS_TABLE", ""),
        event_bus=bus,
        inbox_queue_url=inbox.url if inbox else "",
        inbox_dlq_url=dead_letter,
        state_machine_arn=_workflow(build),
        events_queue_url=_capture_events(bus) if bus else "",
        functions=build.functions,
        environment=env,
        state_machines=build.state_machines,
        queues=build.queues,
        buckets=build.buckets,
        rules=build.rules,
        event_sources=build.event_sources,
        schedules=build.schedules,
        api_events=build.api_events,
        rest_api=_rest_api(build, rest_api_id),
        roles={owner: arn for owner, (_, arn) in build.roles.items()},
    )


def _inbox_queue(build: _Build) -> Queue | None:
    """The queue a function reads, preferring one a bucket notifies: S3 -> SQS -> Lambda."""
    read = [source.queue_arn for source in build.event_sources]
    notified = {arn for arns in build.notified_queues.values() for arn in arns}
    arns = [arn for arn in read if arn in notified] + read
    return next((q for q in build.queues.values() if arns and q.arn == arns[0]), None)


def _workflow(build: _Build) -> str:
    """The state machine the functions start (their STATE_MACHINE_ARN), else the only one."""
    if "STATE_MACHINE_ARN" in build.environment:
        return build.environment["STATE_MACHINE_ARN"]
    arns = list(build.state_machines.values())
    return arns[0] if len(arns) == 1 else ""


def _capture_events(bus_name: str) -> str:
    """Local only: a queue that receives every event the stack publishes, so the local
    stack can show them and tests can assert on them (what a subscriber would get)."""
    sqs = _client("sqs")
    events = _client("events")
    name = f"{STACK}-local-events"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    events.put_rule(
        Name=name, EventBusName=bus_name, EventPattern=json.dumps({"source": ["backdrop"]})
    )
    events.put_targets(
        Rule=name,
        EventBusName=bus_name,
        Targets=[{"Id": "capture", "Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"}],
    )
    return str(url)


def _role(build: _Build, owner: str) -> str:
    """The role SAM makes for a function or state machine (its Policies), created empty:
    its policies name resources created later (`_attach_policies`)."""
    props = build.expanded["Resources"][owner]["Properties"]
    role = props.get("Role") or props.get("RoleArn")
    if not (isinstance(role, dict) and "Fn::GetAtt" in role):
        raise LocalStackUnsupported(f"{owner}: only roles SAM makes (from Policies) run locally")
    logical_id = role["Fn::GetAtt"][0]
    trust = build.expanded["Resources"][logical_id]["Properties"]["AssumeRolePolicyDocument"]
    arn = str(
        _client("iam").create_role(
            RoleName=f"{STACK}-{logical_id}"[:64], AssumeRolePolicyDocument=json.dumps(trust)
        )["Role"]["Arn"]
    )
    build.roles[owner] = (logical_id, arn)
    build.attrs[(logical_id, "Arn")] = arn
    return arn


def _attach_policies(build: _Build) -> None:
    """Each role's policies, as SAM expands them, on the local AWS and in force for every
    call its function makes (iam/enforce.py)."""
    iam = _client("iam")
    for owner, (logical_id, arn) in build.roles.items():
        props = build.expanded["Resources"][logical_id]["Properties"]
        documents = []
        for policy in props.get("Policies", []):
            document = build.resolve(policy["PolicyDocument"])
            # moto insists on a Version, which IAM takes as 2008-10-17 when missing (the
            # same evaluation for these policies: they use no policy variables).
            iam.put_role_policy(
                RoleName=arn.rsplit("/", 1)[1],
                PolicyName=policy["PolicyName"],
                PolicyDocument=json.dumps({"Version": "2012-10-17", **document}),
            )
            documents.append(document)
        for managed in build.resolve(props.get("ManagedPolicyArns", [])):
            if managed not in sam.MANAGED_POLICIES:
                raise LocalStackUnsupported(f"{owner}: managed policy {managed} is not modelled")
            documents.append(sam.MANAGED_POLICIES[managed])
        enforce.register(arn, documents)
