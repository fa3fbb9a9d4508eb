"""Each function calls AWS as its own role allows, as on AWS (moto allows everything).

While a handler runs (backdrop_local.lambdas), every boto3 call it makes, on its own
thread or on the threads it hands work to (an S3 upload's parts), is checked against its
role's policies before moto sees it: a call the role does not allow fails with the error
AWS answers, naming the function, the action and the resource. S3 also answers 403, not
404, for a missing object when the role may not list the bucket, as AWS does.

Calls made outside a handler (the local stack's own plumbing, the tests' checks) are not
checked; the state machines' roles are checked from their definitions (state_machines.py).
"""

from __future__ import annotations

import atexit
import contextvars
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import ClientError
from moto.secretsmanager.models import secretsmanager_backends

from backdrop_local.iam import calls
from backdrop_local.iam.policy import Policy, Request


@dataclass(frozen=True)
class Identity:
    role_arn: str
    session: str  # the function's name: an assumed role's session, as Lambda names it
    policy: Policy

    @property
    def principal(self) -> str:
        _, partition, _, _, account, resource = self.role_arn.split(":", 5)
        role = resource.rsplit("/", 1)[-1]
        return f"arn:{partition}:sts::{account}:assumed-role/{role}/{self.session}"

    @property
    def account(self) -> str:
        return self.role_arn.split(":")[4]


logger = logging.getLogger(__name__)
_policies: dict[str, Policy] = {}  # role ARN -> its policies
_acting: contextvars.ContextVar[Identity | None] = contextvars.ContextVar(
    "backdrop_local_iam_identity", default=None
)
_make_api_call = BaseClient._make_api_call
_submit = ThreadPoolExecutor.submit
# BACKDROP_IAM_USAGE=<file>: every permission a call used, per role, written at exit (what
# `python -m backdrop_local.iam.usage` compares with the template's grants).
_USAGE_FILE = os.environ.get("BACKDROP_IAM_USAGE")
_used: set[tuple[str, str, str]] = set()
_used_lock = threading.Lock()


def register(role_arn: str, documents: Sequence[Mapping[str, Any]]) -> None:
    """A role and its policy documents (inline and managed, references resolved)."""
    _policies[role_arn] = Policy.of(documents)


def policy_of(role_arn: str) -> Policy:
    """A provisioned role's policies, inline and managed, as every check reads them."""
    return _policies[role_arn]


def forget() -> None:
    _policies.clear()


@contextmanager
def acting_as(role_arn: str, session: str) -> Iterator[None]:
    """Calls in this block (and on threads it hands work to) are made with this role."""
    policy = _policies.get(role_arn)
    if policy is None:
        raise LookupError(f"{session}: its role {role_arn} was not provisioned with policies")
    token = _acting.set(Identity(role_arn, session, policy))
    try:
        yield
    finally:
        _acting.reset(token)


def _write_usage() -> None:
    if _USAGE_FILE and _used:
        with open(_USAGE_FILE, "a") as out:
            out.writelines(json.dumps(used) + "\n" for used in sorted(_used))


if _USAGE_FILE:
    atexit.register(_write_usage)


def install() -> None:
    BaseClient._make_api_call = _checked_call
    ThreadPoolExecutor.submit = _submit_in_context  # type: ignore[method-assign,assignment]


def _submit_in_context(
    self: ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
) -> Future[Any]:
    # Work a handler hands to a pool runs as the handler (threads start with no context).
    if _acting.get() is None:
        return _submit(self, fn, *args, **kwargs)
    return _submit(self, contextvars.copy_context().run, fn, *args, **kwargs)


def _checked_call(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
    identity = _acting.get()
    if identity is None:
        return _make_api_call(self, operation, params)
    service = self.meta.service_model.service_name
    region = self.meta.region_name
    where = calls.Where(
        self.meta.partition,
        region,
        identity.account,
        secret_arn=lambda name: _secret_arn(identity.account, region, name),
    )
    for request in calls.requests(service, operation, where, params):
        if not identity.policy.allows(request):
            raise _denied(self, operation, identity, request)
        _record(identity, request)
    try:
        return _make_api_call(self, operation, params)
    except ClientError as error:
        if service == "s3" and operation in ("GetObject", "HeadObject") and _missing(error):
            listing = Request("s3:ListBucket", f"arn:{where.partition}:s3:::{params['Bucket']}")
            if not identity.policy.allows(listing):
                raise _denied(self, operation, identity, listing) from None
            _record(identity, listing)
        raise


def _secret_arn(account: str, region: str, name: str) -> str | None:
    secrets = secretsmanager_backends[account][region].secrets
    return str(secrets[name].arn) if name in secrets else None


def _record(identity: Identity, request: Request) -> None:
    if _USAGE_FILE:
        with _used_lock:
            _used.add((identity.role_arn, request.action, request.resource))


def _missing(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey")


# How each service says it: S3 and SQS with AccessDenied and 403, the JSON services with
# AccessDeniedException (DynamoDB, Step Functions and Secrets Manager with a 400).
_CODES = {"s3": ("AccessDenied", 403), "sqs": ("AccessDenied", 403), "lambda": (None, 403)}


def _denied(client: BaseClient, operation: str, who: Identity, request: Request) -> ClientError:
    service = client.meta.service_model.service_name
    code, status = _CODES.get(service, (None, 400))
    code = code or "AccessDeniedException"
    message = (
        f"User: {who.principal} is not authorized to perform: {request.action} on resource: "
        f"{request.resource} because no identity-based policy allows the {request.action} "
        "action"
    )
    if operation == "HeadObject":
        # A HEAD answer has no body: botocore reports the status alone, as from AWS. The
        # reason goes to the log, which is all AWS's CloudTrail would add.
        logger.warning("%s refused: %s", operation, message)
        code, message = "403", "Forbidden"
    response: Any = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    error: ClientError = client.exceptions.from_code(code)(response, operation)
    return error
