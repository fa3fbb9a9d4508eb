"""What AWS does between services that moto leaves out: the SQS event source mappings
that feed functions from queues, the clock of scheduled rules, and a subscriber that
shows the events the stack publishes."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from backdrop import aws

Handle = Callable[[list[dict[str, Any]]], set[str]]
logger = logging.getLogger(__name__)


class _Background:
    """A daemon thread running `_run` until `stop()`."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        raise NotImplementedError


class QueuePoller(_Background):
    """Long-polls a queue, hands batches to `handle`, and deletes what it did not report
    as failed: failed messages come back after the visibility timeout, then go to the DLQ."""

    def __init__(self, queue_url: str, handle: Handle, *, batch_size: int = 10) -> None:
        super().__init__()
        self._queue_url = queue_url
        self._handle = handle
        self._batch_size = batch_size

    def _run(self) -> None:
        sqs = aws.client("sqs")
        while not self._stop.is_set():
            answer = sqs.receive_message(
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=self._batch_size,
                WaitTimeSeconds=1,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            messages = answer.get("Messages", [])
            if not messages:
                continue
            failed = self._handle(messages)
            done = [m for m in messages if m["MessageId"] not in failed]
            if done:
                sqs.delete_message_batch(
                    QueueUrl=self._queue_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(done)
                    ],
                )


class Ticker(_Background):
    """Calls `tick` every `seconds` until stopped: a scheduled rule's rate."""

    def __init__(self, seconds: float, tick: Callable[[], None]) -> None:
        super().__init__()
        self._seconds = seconds
        self._tick = tick

    def _run(self) -> None:
        while not self._stop.wait(self._seconds):
            try:
                self._tick()
            except Exception:
                logger.exception("a scheduled tick failed")


def _attributes(message: dict[str, Any]) -> dict[str, str]:
    # Lambda's event source mapping always asks SQS for these; a message received without
    # them (a test's, or one built by hand) gets what SQS would have said.
    now = str(int(time.time() * 1000))
    defaults = {
        "ApproximateReceiveCount": "1",
        "SentTimestamp": now,
        "SenderId": "AIDAIENQZJOLO23YVJ4VO",
        "ApproximateFirstReceiveTimestamp": now,
    }
    return {**defaults, **message.get("Attributes", {})}


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda's SQS event source mapping builds from received messages."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": _attributes(m),
                "messageAttributes": m.get("MessageAttributes", {}),
                "md5OfBody": m.get("MD5OfBody") or hashlib.md5(m["Body"].encode()).hexdigest(),  # noqa: S324
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


def batch_failures(
    payload: Any, function_error: str | None, messages: list[dict[str, Any]]
) -> set[str]:
    """Which messages to keep: all of them if the function failed, else those it reported."""
    if function_error:
        return {m["MessageId"] for m in messages}
    failures = (payload or {}).get("batchItemFailures", [])
    return {item["itemIdentifier"] for item in failures}


class EventLog:
    """Prints each published event and appends it to a JSON-lines file."""

    def __init__(self, path: Path | None, echo: Callable[[str], None]) -> None:
        self._path = path
        self._echo = echo
        self._lock = threading.Lock()

    def __call__(self, messages: list[dict[str, Any]]) -> set[str]:
        for message in messages:
            event = json.loads(message["Body"])
            detail = event.get("detail", {})
            summary = detail.get("error", {}).get("code") or ", ".join(
                detail.get("results", {}).get("keys", [])
            )
            subject = detail.get("job_id") or detail.get("batch_id")
            self._echo(f"event: {event.get('detail-type')} {subject} {summary}")
            if self._path is not None:
                with self._lock, self._path.open("a") as out:
                    out.write(json.dumps(event) + "\n")
        return set()
