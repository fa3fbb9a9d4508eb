"""Create the template's resources in an embedded AWS (moto), in-process or server mode.

Used by `backdrop local` and by the integration tests, so both run what SAM deploys.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from typing import Any

import boto3

from backdrop_local.template import FunctionSpec, Resolver, Template, substitute

STACK = "backdrop"
ACCOUNT = "123456789012"
REGION = "us-east-1"


@dataclass
class LocalCloud:
    """Names and ARNs of what was created, and the environment the functions get."""

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


def _name(logical_id: str) -> str:
    return f"{STACK}-{logical_id.lower()}"


def _dummy_zip() -> bytes:
    # moto stores code but never runs it: the dispatcher calls our handlers in-process.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("placeholder.py", "")
    return buffer.getvalue()


def provision(
    *,
    parameters: dict[str, str] | None = None,
    secrets: dict[str, str] | None = None,
    template: Template | None = None,
) -> LocalCloud:
    """Create every resource; `parameters` override the template's defaults, `secrets`
    gives secret values by logical id (default: a key the emulator accepts)."""
    template = template or Template()
    params = {**template.parameter_defaults(), **(parameters or {})}
    refs: dict[str, str] = {**params, "AWS::AccountId": ACCOUNT, "AWS::Region": REGION}
    refs["AWS::StackName"] = STACK
    refs["AWS::URLSuffix"] = "amazonaws.com"
    attrs: dict[tuple[str, str], str] = {}

    s3 = boto3.client("s3", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)

    for logical_id, props in template.of_type("AWS::DynamoDB::Table").items():
        name = _name(logical_id)
        gsi = "GlobalSecondaryIndexes" in props
        boto3.client("dynamodb", region_name=REGION).create_table(
            TableName=name,
            AttributeDefinitions=props["AttributeDefinitions"],
            KeySchema=props["KeySchema"],
            BillingMode=props["BillingMode"],
            **({"GlobalSecondaryIndexes": props["GlobalSecondaryIndexes"]} if gsi else {}),
        )
        refs[logical_id] = name
        attrs[(logical_id, "Arn")] = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"

    queues = template.of_type("AWS::SQS::Queue")
    # Dead-letter queues first: the others name them in their redrive policy.
    for logical_id, props in sorted(queues.items(), key=lambda item: "RedrivePolicy" in item[1]):
        name = _name(logical_id)
        queue_attributes = {"VisibilityTimeout": str(props.get("VisibilityTimeout", 30))}
        if "RedrivePolicy" in props:
            redrive = Resolver(refs, attrs)(props["RedrivePolicy"])
            queue_attributes["RedrivePolicy"] = json.dumps(redrive)
        url = sqs.create_queue(QueueName=name, Attributes=queue_attributes)["QueueUrl"]
        refs[logical_id] = url
        attrs[(logical_id, "Arn")] = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"

    buckets = template.of_type("AWS::S3::Bucket")
    for logical_id, props in buckets.items():
        name = _name(logical_id)
        s3.create_bucket(Bucket=name)
        if props.get("VersioningConfiguration", {}).get("Status") == "Enabled":
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        refs[logical_id] = name
        attrs[(logical_id, "Arn")] = f"arn:aws:s3:::{name}"
    resolve = Resolver(refs, attrs)
    for logical_id, props in buckets.items():
        if "NotificationConfiguration" in props:
            s3.put_bucket_notification_configuration(
                Bucket=refs[logical_id],
                NotificationConfiguration=_notification(
                    resolve(props["NotificationConfiguration"])
                ),
            )

    for logical_id, props in template.of_type("AWS::Events::EventBus").items():
        name = resolve(props["Name"])
        arn = boto3.client("events", region_name=REGION).create_event_bus(Name=name)["EventBusArn"]
        refs[logical_id] = name
        attrs[(logical_id, "Arn")] = arn

    for logical_id in template.of_type("AWS::SecretsManager::Secret"):
        arn = boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name=_name(logical_id),
            SecretString=(secrets or {}).get(logical_id, "local-emulator-key"),
        )["ARN"]
        refs[logical_id] = arn

    lambda_ = boto3.client("lambda", region_name=REGION)
    role = _role()
    sm_logical_id, definition, substitutions = template.state_machine()
    sm_name = _name(sm_logical_id)
    refs[sm_logical_id] = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{sm_name}"

    functions: dict[str, str] = {}
    environment: dict[str, str] = {}
    for spec in template.functions():
        env = {key: str(value) for key, value in resolve(spec.environment).items()}
        _merge(environment, env, spec)
        name = _name(spec.logical_id)
        arn = lambda_.create_function(
            FunctionName=name,
            Runtime="python3.13",
            Role=role,
            Handler=spec.handler,
            Code={"ZipFile": _dummy_zip()},
            Timeout=spec.timeout,
            Environment={"Variables": env},
        )["FunctionArn"]
        functions[spec.logical_id] = name
        refs[spec.logical_id] = name
        attrs[(spec.logical_id, "Arn")] = arn

    boto3.client("stepfunctions", region_name=REGION).create_state_machine(
        name=sm_name,
        definition=substitute(definition, {k: str(v) for k, v in resolve(substitutions).items()}),
        roleArn=role,
    )

    events_queue_url = _capture_events(environment["EVENT_BUS_NAME"])

    (input_bucket,) = (refs[k] for k in buckets if "NotificationConfiguration" in buckets[k])
    (dlq,) = (k for k, props in queues.items() if "RedrivePolicy" not in props)
    (inbox_queue,) = (k for k, props in queues.items() if "RedrivePolicy" in props)
    return LocalCloud(
        input_bucket=input_bucket,
        results_bucket=environment["RESULTS_BUCKET"],
        jobs_table=environment["JOBS_TABLE"],
        event_bus=environment["EVENT_BUS_NAME"],
        inbox_queue_url=refs[inbox_queue],
        inbox_dlq_url=refs[dlq],
        state_machine_arn=refs[sm_logical_id],
        events_queue_url=events_queue_url,
        functions=functions,
        environment=environment,
    )


def _capture_events(bus_name: str) -> str:
    """Local only: a queue that receives every event the stack publishes, so the local
    stack can show them and tests can assert on them (what a subscriber would get)."""
    sqs = boto3.client("sqs", region_name=REGION)
    events = boto3.client("events", region_name=REGION)
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


def _merge(environment: dict[str, str], env: dict[str, str], spec: FunctionSpec) -> None:
    # The functions run in one process here, so they must agree on every variable.
    for key, value in env.items():
        if environment.setdefault(key, value) != value:
            raise ValueError(f"{spec.logical_id} sets {key} differently from another function")


def _notification(config: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's notification shape -> the S3 API's."""
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


def _role() -> str:
    iam = boto3.client("iam", region_name=REGION)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role = iam.create_role(RoleName=f"{STACK}-local", AssumeRolePolicyDocument=json.dumps(trust))
    return str(role["Role"]["Arn"])
