"""Many images dropped in the inbox at once, some of their notifications delivered twice:
what the end-to-end test asserts on and what `bench/inbox_burst.py` measures. It uses only
what a client of the stack has: the buckets, the queues and the jobs table."""

from __future__ import annotations

import itertools
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib.resources import files
from typing import Any
from urllib.parse import quote_plus

import httpx

from backdrop_local.stack import aws_client


@dataclass(frozen=True)
class Upload:
    key: str
    version_id: str | None
    etag: str
    size: int


@dataclass(frozen=True)
class Burst:
    folder: str  # every image is under inbox/<folder>/, every result under outbox/<folder>/
    uploads: list[Upload]


@dataclass(frozen=True)
class Figures:
    seconds: float  # from the first upload to the last manifest
    jobs: int
    succeeded: int  # manifests that say so
    failed: int
    failures: dict[str, int]  # failed jobs by error code
    submissions: int  # generations the provider accepted and charged for
    requests: int  # every call that reached the provider's API (429s included)
    throttled: int  # 429s the provider answered
    polls: int
    lag_p50_seconds: float | None  # result ready at the provider -> first downloaded
    lag_p95_seconds: float | None
    dead_letters: int


def samples() -> list[bytes]:
    folder = files("backdrop_local.samples")
    return [entry.read_bytes() for entry in folder.iterdir() if entry.name.endswith(".png")]


def drop(ready: dict[str, Any], *, count: int, duplicates: int, metadata: dict[str, str]) -> Burst:
    """Upload `count` images at once, then send `duplicates` of their notifications again."""
    s3 = aws_client(ready, "s3")
    folder = f"burst-{uuid.uuid4().hex[:8]}"
    bodies = itertools.cycle(samples())
    keys_and_bodies = [(f"inbox/{folder}/item {n:03d}.png", next(bodies)) for n in range(count)]

    def put(key: str, body: bytes) -> Upload:
        answer = s3.put_object(Bucket=ready["input_bucket"], Key=key, Body=body, Metadata=metadata)
        return Upload(key, answer.get("VersionId"), answer["ETag"].strip('"'), len(body))

    with ThreadPoolExecutor(max_workers=8) as pool:
        uploads = list(pool.map(lambda item: put(*item), keys_and_bodies))
    sqs = aws_client(ready, "sqs")
    for upload in uploads[:duplicates]:
        sqs.send_message(
            QueueUrl=ready["inbox_queue_url"],
            MessageBody=notification(ready["input_bucket"], upload),
        )
    return Burst(folder=folder, uploads=uploads)


def notification(bucket: str, upload: Upload) -> str:
    """The S3 event S3 puts on the queue for an upload (the key URL-encoded, as S3 does)."""
    s3_object: dict[str, Any] = {
        "key": quote_plus(upload.key, safe="/"),
        "size": upload.size,
        "eTag": upload.etag,
    }
    if upload.version_id:
        s3_object["versionId"] = upload.version_id
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": bucket}, "object": s3_object},
    }
    return json.dumps({"Records": [record]})


def manifests(ready: dict[str, Any], burst: Burst) -> list[dict[str, Any]]:
    """The manifests written so far under the burst's outbox folder (one per ended job)."""
    s3 = aws_client(ready, "s3")
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=ready["results_bucket"], Prefix=f"outbox/{burst.folder}/"
    )
    keys = [
        item["Key"]
        for page in pages
        for item in page.get("Contents", [])
        if item["Key"].endswith("/manifest.json")
    ]
    return [
        json.loads(s3.get_object(Bucket=ready["results_bucket"], Key=key)["Body"].read())
        for key in keys
    ]


def queue_depth(ready: dict[str, Any], url_name: str) -> int:
    attributes = aws_client(ready, "sqs").get_queue_attributes(
        QueueUrl=ready[url_name],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def wait(ready: dict[str, Any], burst: Burst, *, timeout: float) -> None:
    """Until every image has a manifest and the inbox queue is drained (the repeated
    notifications handled too), or `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(manifests(ready, burst)) >= len(burst.uploads) and not queue_depth(
            ready, "inbox_queue_url"
        ):
            return
        time.sleep(0.5)
    raise TimeoutError(f"{len(manifests(ready, burst))} of {len(burst.uploads)} jobs ended")


def job_count(ready: dict[str, Any], burst: Burst) -> int:
    """Jobs recorded for the burst's images, read from the jobs table."""
    return len(_job_ids(ready, burst))


def _job_ids(ready: dict[str, Any], burst: Burst) -> set[str]:
    """The ids of the jobs of the burst's images (the table also holds counters and claims,
    which have no source)."""
    pages = (
        aws_client(ready, "dynamodb").get_paginator("scan").paginate(TableName=ready["jobs_table"])
    )
    prefix = f"inbox/{burst.folder}/"
    return {
        item["id"]["S"]
        for page in pages
        for item in page["Items"]
        if item.get("source", {}).get("M", {}).get("key", {}).get("S", "").startswith(prefix)
    }


def emulator_stats(ready: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return httpx.get(f"{ready['emulator_url']}/_emulator/stats").json()  # type: ignore[no-any-return]


def figures(ready: dict[str, Any], burst: Burst, seconds: float) -> Figures:
    ended = manifests(ready, burst)
    statuses = [manifest["status"] for manifest in ended]
    codes = [m["error"]["code"] for m in ended if m["status"] == "failed" and m.get("error")]
    stats = emulator_stats(ready)
    picsart, photoroom = stats["picsart"], stats["photoroom"]
    return Figures(
        seconds=seconds,
        jobs=job_count(ready, burst),
        succeeded=statuses.count("succeeded"),
        failed=statuses.count("failed"),
        failures={code: codes.count(code) for code in sorted(set(codes))},
        submissions=int(picsart["accepted"]) + int(photoroom["accepted"]),
        requests=int(picsart["submissions"])
        + int(picsart["polls"])
        + int(picsart["throttled"])
        + int(photoroom["calls"]),
        throttled=int(picsart["throttled"]) + int(photoroom["throttled"]),
        polls=int(picsart["polls"]),
        lag_p50_seconds=picsart.get("lag_p50_seconds"),
        lag_p95_seconds=picsart.get("lag_p95_seconds"),
        dead_letters=queue_depth(ready, "inbox_dead_letter_queue_url"),
    )


def transitions(ready: dict[str, Any], burst: Burst) -> list[int]:
    """States entered by each of the burst's executions (what Standard workflows bill)."""
    sfn = aws_client(ready, "stepfunctions")
    ids = _job_ids(ready, burst)
    arn = ready["state_machine_arn"].replace(":stateMachine:", ":execution:")
    counts = []
    for job_id in sorted(ids):
        try:
            history = sfn.get_execution_history(executionArn=f"{arn}:{job_id}", maxResults=1000)
        except sfn.exceptions.ExecutionDoesNotExist:
            continue  # refused before it started: no workflow, no transitions
        counts.append(sum(1 for e in history["events"] if e["type"].endswith("StateEntered")))
    return counts


def run(
    ready: dict[str, Any],
    *,
    count: int,
    duplicates: int,
    metadata: dict[str, str],
    timeout: float,
) -> Figures:
    """Drop a burst, wait for every job to end, and count what happened."""
    began = time.monotonic()
    burst = drop(ready, count=count, duplicates=duplicates, metadata=metadata)
    wait(ready, burst, timeout=timeout)
    return figures(ready, burst, time.monotonic() - began)
