"""What IAM checks for each AWS call the functions make: its actions, resources and
condition keys, from the call's own parameters (AWS's Service Authorization Reference).

A call not listed here raises `Unmodelled`: a new kind of call must be added here before
it runs locally, so no call escapes its function's role.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from backdrop_local.iam.policy import Request


class Unmodelled(Exception):
    """A call the local IAM model has no rule for."""


@dataclass(frozen=True)
class Where:
    """The account and region a client calls."""

    partition: str
    region: str
    account: str
    # A secret's ARN from its name (the ARN ends in a suffix only Secrets Manager knows).
    secret_arn: Callable[[str], str | None] = field(default=lambda name: None, compare=False)

    def arn(self, service: str, resource: str) -> str:
        return f"arn:{self.partition}:{service}:{self.region}:{self.account}:{resource}"


Params = Mapping[str, Any]
Rule = Callable[[Where, Params], list[Request]]


# ---- DynamoDB -------------------------------------------------------------------------


def _table(where: Where, name: str, index: str | None = None) -> str:
    table = name if name.startswith("arn:") else where.arn("dynamodb", f"table/{name}")
    return f"{table}/index/{index}" if index else table


def _dynamodb(action: str) -> Rule:
    def rule(where: Where, params: Params) -> list[Request]:
        resource = _table(where, params["TableName"], params.get("IndexName"))
        return [Request(f"dynamodb:{action}", resource)]

    return rule


def _batch_get(where: Where, params: Params) -> list[Request]:
    return [Request("dynamodb:BatchGetItem", _table(where, t)) for t in params["RequestItems"]]


def _batch_write(where: Where, params: Params) -> list[Request]:
    return [Request("dynamodb:BatchWriteItem", _table(where, t)) for t in params["RequestItems"]]


# A transaction needs each item's own action on its table.
_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}


def _transact(where: Where, params: Params) -> list[Request]:
    requests = []
    for item in params["TransactItems"]:
        ((kind, body),) = item.items()
        action = f"dynamodb:{_TRANSACT_ACTIONS[kind]}"
        requests.append(Request(action, _table(where, body["TableName"])))
    return requests


# ---- S3 --------------------------------------------------------------------------------


def _object_arn(where: Where, bucket: str, key: str) -> str:
    return f"arn:{where.partition}:s3:::{bucket}/{key}"


def _bucket_arn(where: Where, bucket: str) -> str:
    return f"arn:{where.partition}:s3:::{bucket}"


# Parameters that need permissions of their own (s3:PutObjectAcl, s3:PutObjectTagging, ...):
# no call sends them yet, so a call that does is refused until its rule says what it needs.
_UNMODELLED_PARAMS = frozenset(
    {"ACL", "GrantFullControl", "GrantRead", "GrantReadACP", "GrantWriteACP", "Tagging"}
    | {"ObjectLockMode", "ObjectLockRetainUntilDate", "ObjectLockLegalHoldStatus"}
)


def _plain(params: Params, what: str) -> None:
    extra = _UNMODELLED_PARAMS & set(params)
    if extra:
        raise Unmodelled(f"{what} with {sorted(extra)}: add their permissions to calls.py")


def _object(action: str, *, versioned: str | None = None) -> Rule:
    def rule(where: Where, params: Params) -> list[Request]:
        _plain(params, f"s3 {action}")
        name = versioned if versioned and params.get("VersionId") else action
        resource = _object_arn(where, params["Bucket"], params["Key"])
        return [Request(f"s3:{name}", resource)]

    return rule


def _listing(action: str) -> Rule:
    def rule(where: Where, params: Params) -> list[Request]:
        # s3:prefix is in the request context only when the listing names a prefix.
        context = {"s3:prefix": params["Prefix"]} if "Prefix" in params else {}
        return [Request(action, _bucket_arn(where, params["Bucket"]), context)]

    return rule


_list_objects = _listing("s3:ListBucket")


def _delete_objects(where: Where, params: Params) -> list[Request]:
    return [
        Request(
            "s3:DeleteObjectVersion" if item.get("VersionId") else "s3:DeleteObject",
            _object_arn(where, params["Bucket"], item["Key"]),
        )
        for item in params["Delete"]["Objects"]
    ]


def _copy_object(where: Where, params: Params) -> list[Request]:
    _plain(params, "s3 CopyObject")
    source = params["CopySource"]
    if isinstance(source, str):
        path, _, version = source.lstrip("/").partition("?versionId=")
        bucket, _, key = path.partition("/")
        source = {"Bucket": bucket, "Key": key, "VersionId": version}
    read = "s3:GetObjectVersion" if source.get("VersionId") else "s3:GetObject"
    return [
        Request(read, _object_arn(where, source["Bucket"], source["Key"])),
        Request("s3:PutObject", _object_arn(where, params["Bucket"], params["Key"])),
    ]


# ---- Step Functions, SQS, EventBridge, Secrets Manager, Lambda ----------------------------


def _states(action: str, parameter: str) -> Rule:
    def rule(where: Where, params: Params) -> list[Request]:
        return [Request(f"states:{action}", params[parameter])]

    return rule


def _list_executions(where: Where, params: Params) -> list[Request]:
    arn = params.get("mapRunArn") or params["stateMachineArn"]
    return [Request("states:ListExecutions", arn)]


def queue_arn(where: Where, url: str) -> str:
    """A queue's ARN from its URL (.../<account>/<name>)."""
    account, name = urlsplit(url).path.strip("/").split("/")[-2:]
    return f"arn:{where.partition}:sqs:{where.region}:{account}:{name}"


def _sqs(action: str) -> Rule:
    def rule(where: Where, params: Params) -> list[Request]:
        return [Request(f"sqs:{action}", queue_arn(where, params["QueueUrl"]))]

    return rule


def _put_events(where: Where, params: Params) -> list[Request]:
    requests = []
    for entry in params["Entries"]:
        bus = entry.get("EventBusName", "default")
        arn = bus if bus.startswith("arn:") else where.arn("events", f"event-bus/{bus}")
        requests.append(Request("events:PutEvents", arn))
    return requests


def _secret(where: Where, params: Params) -> list[Request]:
    secret = params["SecretId"]
    if not secret.startswith("arn:"):
        # IAM judges the secret's ARN, whatever names it; one that does not exist has none.
        secret = where.secret_arn(secret) or where.arn("secretsmanager", f"secret:{secret}")
    return [Request("secretsmanager:GetSecretValue", secret)]


def _invoke(where: Where, params: Params) -> list[Request]:
    name = params["FunctionName"]
    arn = name if name.startswith("arn:") else where.arn("lambda", f"function:{name}")
    return [Request("lambda:InvokeFunction", arn)]


RULES: dict[tuple[str, str], Rule] = {
    ("dynamodb", "GetItem"): _dynamodb("GetItem"),
    ("dynamodb", "PutItem"): _dynamodb("PutItem"),
    ("dynamodb", "UpdateItem"): _dynamodb("UpdateItem"),
    ("dynamodb", "DeleteItem"): _dynamodb("DeleteItem"),
    ("dynamodb", "Query"): _dynamodb("Query"),
    ("dynamodb", "Scan"): _dynamodb("Scan"),
    ("dynamodb", "BatchGetItem"): _batch_get,
    ("dynamodb", "BatchWriteItem"): _batch_write,
    ("dynamodb", "TransactWriteItems"): _transact,
    ("dynamodb", "TransactGetItems"): _transact,
    ("s3", "GetObject"): _object("GetObject", versioned="GetObjectVersion"),
    # HeadObject is authorised as GetObject (there is no s3:HeadObject).
    ("s3", "HeadObject"): _object("GetObject", versioned="GetObjectVersion"),
    ("s3", "PutObject"): _object("PutObject"),
    ("s3", "DeleteObject"): _object("DeleteObject", versioned="DeleteObjectVersion"),
    ("s3", "DeleteObjects"): _delete_objects,
    ("s3", "CopyObject"): _copy_object,
    ("s3", "CreateMultipartUpload"): _object("PutObject"),
    ("s3", "UploadPart"): _object("PutObject"),
    ("s3", "CompleteMultipartUpload"): _object("PutObject"),
    ("s3", "AbortMultipartUpload"): _object("AbortMultipartUpload"),
    ("s3", "ListParts"): _object("ListMultipartUploadParts"),
    ("s3", "ListObjectsV2"): _list_objects,
    ("s3", "ListObjects"): _list_objects,
    ("s3", "ListObjectVersions"): _listing("s3:ListBucketVersions"),
    ("stepfunctions", "StartExecution"): _states("StartExecution", "stateMachineArn"),
    ("stepfunctions", "StopExecution"): _states("StopExecution", "executionArn"),
    ("stepfunctions", "DescribeExecution"): _states("DescribeExecution", "executionArn"),
    ("stepfunctions", "GetExecutionHistory"): _states("GetExecutionHistory", "executionArn"),
    ("stepfunctions", "ListMapRuns"): _states("ListMapRuns", "executionArn"),
    ("stepfunctions", "DescribeMapRun"): _states("DescribeMapRun", "mapRunArn"),
    ("stepfunctions", "ListExecutions"): _list_executions,
    ("sqs", "SendMessage"): _sqs("SendMessage"),
    # A batch is authorised as its single-message action.
    ("sqs", "SendMessageBatch"): _sqs("SendMessage"),
    ("sqs", "ChangeMessageVisibility"): _sqs("ChangeMessageVisibility"),
    ("sqs", "ChangeMessageVisibilityBatch"): _sqs("ChangeMessageVisibility"),
    ("sqs", "ReceiveMessage"): _sqs("ReceiveMessage"),
    ("sqs", "DeleteMessage"): _sqs("DeleteMessage"),
    ("sqs", "DeleteMessageBatch"): _sqs("DeleteMessage"),
    ("sqs", "GetQueueAttributes"): _sqs("GetQueueAttributes"),
    ("events", "PutEvents"): _put_events,
    ("secretsmanager", "GetSecretValue"): _secret,
    ("lambda", "Invoke"): _invoke,
    ("cloudwatch", "PutMetricData"): lambda where, params: [
        Request("cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": params["Namespace"]})
    ],
}
# Calls IAM does not authorise.
FREE = {("sts", "GetCallerIdentity")}


def requests(service: str, operation: str, where: Where, params: Params) -> list[Request]:
    """The permissions one call needs (empty for a call every identity may make)."""
    if (service, operation) in FREE:
        return []
    rule = RULES.get((service, operation))
    if rule is None:
        raise Unmodelled(
            f"{service} {operation}: the local IAM model has no rule for this call; add one "
            "to backdrop_local/iam/calls.py"
        )
    return rule(where, params)
