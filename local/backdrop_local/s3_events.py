"""S3 event notifications as AWS sends them. moto leaves out the object's version id,
which S3 always sends for a versioned bucket; without it the inbox would identify a job
by the object's ETag locally and by its version on AWS."""

from __future__ import annotations

from typing import Any

from moto.s3 import notifications

_moto_event = notifications._get_s3_event


def _event_with_version(
    event_name: str, bucket: Any, key: Any, notification_id: str
) -> dict[str, list[dict[str, Any]]]:
    event = _moto_event(event_name, bucket, key, notification_id)
    version = getattr(key, "version_id", None)
    if version and version != "null":  # "null": a bucket that was never versioned
        for record in event["Records"]:
            record["s3"]["object"]["versionId"] = version
    return event


def install() -> None:
    notifications._get_s3_event = _event_with_version
