"""boto3 clients, created once per container and reused across invocations.

The endpoint comes from boto3's own `AWS_ENDPOINT_URL` handling, which is how the
local stack points every client at its embedded AWS.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

# Standard retry mode: AWS's own throttling/transient errors are retried with backoff.
_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=30
)


# Presigned URLs signed with SigV4: SigV2 is deprecated and refused by newer regions.
_SERVICE_CONFIG = {"s3": _CONFIG.merge(Config(signature_version="s3v4"))}
SECRET_MAX_AGE_SECONDS = 300  # a rotated secret is picked up within five minutes


@cache
def client(service: str) -> Any:
    return boto3.client(service, config=_SERVICE_CONFIG.get(service, _CONFIG))


@cache
def _secrets() -> Any:
    # Powertools' default provider would make a boto3 session of its own at each cold start,
    # reading botocore's data files again; this one uses the container's client.
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    return SecretsProvider(boto3_client=client("secretsmanager"))


def secret(name: str) -> str:
    """A secret's value (kept for SECRET_MAX_AGE_SECONDS)."""
    return str(_secrets().get(name, max_age=SECRET_MAX_AGE_SECONDS))


def reset() -> None:
    """Forget cached clients and secrets (tests switch endpoints and credentials between
    cases; the local stack's cold starts)."""
    client.cache_clear()
    _secrets.cache_clear()
