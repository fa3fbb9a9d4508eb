"""Standard Webhooks signatures (v1, HMAC-SHA256): `v1,<base64>` over `{id}.{timestamp}.{body}`.

The signing secret (Secrets Manager) holds one or more secrets separated by spaces, the one
to keep first: during a rotation both are listed, and every message is signed with each, so
receivers verifying with either accept it. A secret is `whsec_` followed by base64, or the
base64 alone (the form the stack generates; the Standard Webhooks libraries take both)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

PREFIX = "whsec_"


class BadSecret(ValueError):
    """The signing secret is not base64 (with or without whsec_): nothing can be signed."""


def keys(secret_value: str) -> list[bytes]:
    """The HMAC keys in the secret's value, in order."""
    found = []
    for secret in secret_value.split():
        try:
            key = base64.b64decode(secret.removeprefix(PREFIX), validate=True)
        except binascii.Error:
            raise BadSecret("a webhook signing secret is not base64") from None
        if len(key) < 16:
            raise BadSecret("a webhook signing secret is shorter than 16 bytes")
        found.append(key)
    if not found:
        raise BadSecret("the webhook signing secret is empty")
    return found


def signature(signing_keys: list[bytes], message_id: str, timestamp: int, body: str) -> str:
    """The `webhook-signature` header: one `v1,<base64>` per key, space-separated."""
    content = f"{message_id}.{timestamp}.{body}".encode()
    return " ".join(
        "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
        for key in signing_keys
    )


def headers(
    signing_keys: list[bytes], message_id: str, timestamp: int, body: str
) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(signing_keys, message_id, timestamp, body),
    }
