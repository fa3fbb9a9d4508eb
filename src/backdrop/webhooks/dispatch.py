"""What the webhook function does with each message on its queue:

- an outcome the stack announced on its bus (the EventBridge rule's message): the job as
  `GET /v1/generations/{id}` shows it becomes one message, sent to each destination (the
  stack's `WebhookUrls` and the job's own `webhook_url`) at once;
- a delivery that failed before (the retry messages this module sends): tried again when it
  is due. Until then it stays on the queue, invisible: a delay (up to SQS's 15 minutes) when
  sent, then a visibility timeout (up to 12 hours) each time it comes back early. No Lambda
  ever sleeps.

A delivery out of attempts goes to the dead-letter queue with its last answer; the job's own
webhook shows `pending`, `delivered` or `failed` on the job."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Any

from backdrop import aws, storage
from backdrop.config import WebhookSettings
from backdrop.contracts.views import generation_view
from backdrop.domain import JobStatus, WebhookState
from backdrop.jobs import JobStore
from backdrop.observability import logger
from backdrop.webhooks import signing
from backdrop.webhooks.delivery import Delivery, Outcome, attempt, message_id, next_delay, now

TYPES = {
    JobStatus.SUCCEEDED: "generation.succeeded",
    JobStatus.FAILED: "generation.failed",
    JobStatus.CANCELED: "generation.canceled",
}
# A reviewer's decisions (ReviewMode=required), on a job that has succeeded.
REVIEW_TYPES = {
    "Generation Approved": "approved",
    "Generation Rejected": "rejected",
}
MAX_DELAY_SECONDS = 900  # SQS's longest DelaySeconds
# SQS's longest visibility timeout is 12 hours counted from the receive, so asking for all
# of it a little after the receive is refused: leave room for the invocation so far.
MAX_VISIBILITY_SECONDS = 43200 - 600


class NotDue(Exception):
    """A retry that came back before its time: it stays on the queue until then."""


@dataclass
class Dispatcher:
    settings: WebhookSettings
    jobs: JobStore

    def handle(self, body: dict[str, Any], receipt_handle: str) -> None:
        if "detail-type" in body:
            self.outcome(body)
        else:
            self.retry(Delivery.model_validate(body), receipt_handle)

    def outcome(self, event: dict[str, Any]) -> None:
        """One message per destination. With several, each goes on the queue as its own
        delivery first: a slow or failing receiver then delays, retries and dead-letters
        only its own, never the other subscribers'."""
        job = self.jobs.get(str(event["detail"]["job_id"]))
        if job.status not in TYPES:
            logger.warning("outcome of an unfinished job ignored", extra={"job_id": job.id})
            return
        kind, identity = TYPES[job.status], job.status.value
        if event["detail-type"] in REVIEW_TYPES:
            # Each decision is its own message (an approval repeated is the same one).
            decided = REVIEW_TYPES[event["detail-type"]]
            kind = f"generation.{decided}"
            identity = f"{decided}_{event['detail'].get('review_version', 0)}"
        destinations = [(url, False) for url in self.settings.stack_webhooks]
        if job.webhook_url:
            destinations.append((job.webhook_url, True))
        if not destinations:
            return
        view = generation_view(job, storage.ViewUrls(self.settings))
        data = view.model_dump(mode="json")
        # Where the job's own webhook goes is the caller's business, not every subscriber's.
        data["request"].pop("webhook_url", None)
        payload = {
            "type": kind,
            "timestamp": event.get("time") or now().isoformat(),
            "data": data,
        }
        body = json.dumps(payload, separators=(",", ":"))
        deliveries = [
            Delivery(
                message_id=message_id(job.id, identity),
                url=url,
                body=body,
                job_id=job.id,
                own=own,
            )
            for url, own in destinations
        ]
        if len(deliveries) == 1:
            self.try_once(deliveries[0])
            return
        sqs = aws.client("sqs")
        for start in range(0, len(deliveries), 10):  # SQS takes 10 messages a batch
            chunk = deliveries[start : start + 10]
            answer = sqs.send_message_batch(
                QueueUrl=self.settings.webhook_queue_url,
                Entries=[
                    {"Id": str(i), "MessageBody": d.model_dump_json()} for i, d in enumerate(chunk)
                ],
            )
            if answer.get("Failed"):
                # The outcome's message returns and is split again: a repeat, never a loss.
                raise RuntimeError(f"webhook deliveries not queued: {answer['Failed']}")

    def retry(self, delivery: Delivery, receipt_handle: str) -> None:
        early = delivery.not_before - time.time()
        if early > 1:
            aws.client("sqs").change_message_visibility(
                QueueUrl=self.settings.webhook_queue_url,
                ReceiptHandle=receipt_handle,
                VisibilityTimeout=min(math.ceil(early), MAX_VISIBILITY_SECONDS),
            )
            raise NotDue(f"due in {early:.0f} s")
        self.try_once(delivery)

    def try_once(self, delivery: Delivery) -> None:
        secret = aws.secret(self.settings.webhook_secret_name)
        outcome = attempt(
            delivery,
            signing.keys(secret),
            allow_private=self.settings.allow_private_webhook_hosts,
        )
        attempts = delivery.attempt + 1
        again = outcome.retry and attempts < self.settings.webhook_max_attempts
        self._record(delivery, outcome, attempts, again)
        if outcome.delivered:
            return
        if again:
            delay = next_delay(attempts, outcome.retry_after)
            later = delivery.model_copy(
                update={"attempt": attempts, "not_before": time.time() + delay}
            )
            aws.client("sqs").send_message(
                QueueUrl=self.settings.webhook_queue_url,
                MessageBody=later.model_dump_json(),
                DelaySeconds=min(int(delay), MAX_DELAY_SECONDS),
            )
            return
        if outcome.status_code == 410:
            return  # the receiver asked for no more: not a dead letter
        aws.client("sqs").send_message(
            QueueUrl=self.settings.webhook_dead_letter_queue_url,
            MessageBody=json.dumps(
                {
                    "delivery": delivery.model_copy(update={"attempt": attempts}).model_dump(),
                    "reason": outcome.reason,
                    "status_code": outcome.status_code,
                }
            ),
        )

    def _record(self, delivery: Delivery, outcome: Outcome, attempts: int, again: bool) -> None:
        status = "delivered" if outcome.delivered else "pending" if again else "failed"
        logger.info(
            "webhook attempt",
            extra={
                "job_id": delivery.job_id,
                "webhook_id": delivery.message_id,
                "attempt": attempts,
                "status_code": outcome.status_code,
                "outcome": status,
                "reason": outcome.reason,
            },
        )
        if delivery.own:
            self.jobs.record_webhook(
                delivery.job_id,
                WebhookState(
                    status=status,
                    attempts=attempts,
                    last_status_code=outcome.status_code,
                    last_attempt_at=now(),
                ),
            )
