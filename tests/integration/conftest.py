"""The real template, state machine and handlers on moto, with provider HTTP faked by respx.

moto's Step Functions engine runs the ASL from template.yaml; its Lambda tasks are
dispatched in-process to our handlers (backdrop_local.lambdas), exactly as in `backdrop local`.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
import respx
from moto import mock_aws

from backdrop import config, thumbnails
from backdrop.domain import JOB_ID_PATTERN
from backdrop.jobs import JobStore
from backdrop_local import distributed_map, eventbridge, lambdas, moto_shortcuts, s3_events
from backdrop_local.cloud import REGION, LocalCloud, provision
from backdrop_local.pollers import batch_failures, sqs_event
from backdrop_local.template import Template
from tests.conftest import image_bytes, load_event

PICSART = "https://genai-api.picsart.io/v1"
# The stack's webhook signing secret in these tests (Standard Webhooks: whsec_ + base64).
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"integration-tests-signing-key").decode()
CDN = "https://cdn.picsart.test"
# What the fake provider "generates": a tiny PNG Pillow reads (so it gets a preview).
PNG = image_bytes("PNG", (2, 2))


@dataclass
class Stack:
    cloud: LocalCloud

    def invoke(self, logical_id: str, event: dict[str, Any]) -> tuple[Any, str | None]:
        """Invoke a function the way AWS does (through Lambda), return (payload, error)."""
        answer = boto3.client("lambda", region_name=REGION).invoke(
            FunctionName=self.cloud.functions[logical_id], Payload=json.dumps(event).encode()
        )
        return json.loads(answer["Payload"].read()), answer.get("FunctionError")

    def create_generation(self, body: dict[str, Any]) -> dict[str, Any]:
        event = load_event("api-create-generation")
        event["body"] = json.dumps(body)
        payload, error = self.invoke("ApiFunction", event)
        assert error is None, payload
        return payload  # type: ignore[no-any-return]

    def get_generation(self, job_id: str) -> dict[str, Any]:
        event = load_event("api-get-generation")
        event["path"] = f"/v1/generations/{job_id}"
        event["pathParameters"] = {"id": job_id}
        payload, _ = self.invoke("ApiFunction", event)
        return payload  # type: ignore[no-any-return]

    def cancel_generation(
        self, job_id: str, api_key_id: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        """POST /v1/generations/{id}/cancel through the API function (the sample event's key,
        or another key id)."""
        event = load_event("api-get-generation")
        event["httpMethod"] = event["requestContext"]["httpMethod"] = "POST"
        event["resource"] = event["requestContext"]["resourcePath"] = "/v1/generations/{id}/cancel"
        event["path"] = f"/v1/generations/{job_id}/cancel"
        event["pathParameters"] = {"id": job_id}
        if api_key_id is not None:
            event["requestContext"]["identity"]["apiKeyId"] = api_key_id
        payload, error = self.invoke("ApiFunction", event)
        assert error is None, payload
        return payload["statusCode"], json.loads(payload["body"])

    def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        api_key_id: str | None = None,
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Any route through the API function, as API Gateway's proxy event: (status,
        JSON body, headers)."""
        event = load_event("api-get-generation")
        event["httpMethod"] = event["requestContext"]["httpMethod"] = method
        event["path"] = path
        event["resource"] = event["requestContext"]["resourcePath"] = path
        event["pathParameters"] = None
        event["body"] = None if body is None else json.dumps(body)
        event["queryStringParameters"] = query or None
        event["multiValueQueryStringParameters"] = {
            k: [v] for k, v in (query or {}).items()
        } or None
        for name, value in (headers or {}).items():
            event["headers"][name] = value
            event["multiValueHeaders"][name] = [value]
        if api_key_id is not None:
            event["requestContext"]["identity"]["apiKeyId"] = api_key_id
        payload, error = self.invoke("ApiFunction", event)
        assert error is None, payload
        headers = {k: v[0] for k, v in (payload.get("multiValueHeaders") or {}).items()}
        return payload["statusCode"], json.loads(payload["body"]), headers

    def wait_for_execution(self, job_id: str, timeout: float = 60) -> dict[str, Any]:
        sfn = boto3.client("stepfunctions", region_name=REGION)
        arn = self.cloud.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{job_id}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            execution = sfn.describe_execution(executionArn=arn)
            if execution["status"] != "RUNNING":
                return execution  # type: ignore[no-any-return]
            time.sleep(0.1)
        raise AssertionError(f"execution {job_id} still running after {timeout}s")

    def states_entered(self, job_id: str) -> list[str]:
        """The states the job's execution entered, in order."""
        sfn = boto3.client("stepfunctions", region_name=REGION)
        arn = self.cloud.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{job_id}"
        history = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        entered = [e.get("stateEnteredEventDetails") for e in history]
        return [details["name"] for details in entered if details]

    def stop_executions(self) -> None:
        """Let executions end on their own (stopping one that is just starting trips moto),
        then stop any that would run on (a job left processing on purpose)."""
        sfn = boto3.client("stepfunctions", region_name=REGION)
        # Long enough for any execution to be past its start (stopping one that is starting
        # trips moto); jobs waiting for a turn or a poll sleep in Wait states at least a
        # second, so they are stopped.
        deadline = time.monotonic() + 1.5
        while any(e["status"] == "RUNNING" for e in self.executions()):
            if time.monotonic() > deadline:
                for execution in self.executions():
                    if execution["status"] == "RUNNING":
                        sfn.stop_execution(executionArn=execution["executionArn"])
                deadline = time.monotonic() + 1.5
            time.sleep(0.05)

    def executions(self) -> list[dict[str, Any]]:
        sfn = boto3.client("stepfunctions", region_name=REGION)
        answer = sfn.list_executions(stateMachineArn=self.cloud.state_machine_arn)
        return answer["executions"]  # type: ignore[no-any-return]

    def job(self, job_id: str) -> dict[str, Any]:
        """The job record as stored, internals included (the API shows less of it)."""
        return self.store().get(job_id).model_dump(mode="json")

    def store(self) -> JobStore:
        return JobStore(config.read(config.JobSettings, self.cloud.environment))

    def list_generations(self, **query: str) -> tuple[int, dict[str, Any]]:
        """GET /v1/generations with this query string, through the API function."""
        event = load_event("api-list-generations")
        event["queryStringParameters"] = query or None
        event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} or None
        payload, error = self.invoke("ApiFunction", event)
        assert error is None, payload
        return payload["statusCode"], json.loads(payload["body"])

    def result_keys(self, prefix: str = "") -> list[str]:
        """The results bucket's keys under `prefix`; the previews (thumbnails/) only if the
        prefix names them."""
        s3 = boto3.client("s3", region_name=REGION)
        answer = s3.list_objects_v2(Bucket=self.cloud.results_bucket, Prefix=prefix)
        keys = [item["Key"] for item in answer.get("Contents", [])]
        if prefix.startswith(thumbnails.PREFIX):
            return keys
        return [key for key in keys if not key.startswith(thumbnails.PREFIX)]

    def job_ids(self) -> list[str]:
        """Every job recorded, however it ended (read from the table, not the API: not the
        counters and claims it holds beside them, whose ids are no job's)."""
        table = boto3.resource("dynamodb", region_name=REGION).Table(self.cloud.jobs_table)
        ids = [item["id"] for item in table.scan(ProjectionExpression="id")["Items"]]
        return [job_id for job_id in ids if re.fullmatch(JOB_ID_PATTERN, job_id)]

    def manifest(self, prefix: str) -> dict[str, Any]:
        s3 = boto3.client("s3", region_name=REGION)
        body = s3.get_object(Bucket=self.cloud.results_bucket, Key=f"{prefix}manifest.json")
        return json.loads(body["Body"].read())  # type: ignore[no-any-return]

    def feed(self, queue_id: str, function_id: str) -> int:
        """What Lambda's event source mapping does for a queue, once: the visible messages
        to the function, those it did not fail deleted. Returns how many it got."""
        sqs = boto3.client("sqs", region_name=REGION)
        queue = self.cloud.queues[queue_id]
        messages = sqs.receive_message(
            QueueUrl=queue.url, MaxNumberOfMessages=10, WaitTimeSeconds=0, AttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            return 0
        payload, error = self.invoke(function_id, sqs_event(messages, queue.arn, REGION))
        failed = batch_failures(payload, error, messages)
        for message in messages:
            if message["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=queue.url, ReceiptHandle=message["ReceiptHandle"])
        return len(messages)

    def deliver_webhooks(self) -> int:
        return self.feed("WebhookQueue", "WebhookFunction")

    def dead_webhooks(self) -> list[dict[str, Any]]:
        sqs = boto3.client("sqs", region_name=REGION)
        url = self.cloud.queues["WebhookDeadLetterQueue"].url
        answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        return [json.loads(m["Body"]) for m in answer.get("Messages", [])]

    def published_events(self) -> list[dict[str, Any]]:
        sqs = boto3.client("sqs", region_name=REGION)
        found: list[dict[str, Any]] = []
        while True:
            answer = sqs.receive_message(
                QueueUrl=self.cloud.events_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            )
            messages = answer.get("Messages", [])
            if not messages:
                return found
            found += [json.loads(m["Body"]) for m in messages]


@pytest.fixture
def make_stack(
    monkeypatch: pytest.MonkeyPatch, picsart: respx.MockRouter
) -> Iterator[Callable[..., Stack]]:
    # Depends on `picsart` so that provider HTTP stays faked until every execution has
    # ended: no test can reach the real network, even from a leftover execution.
    config = {"lambda": {"use_docker": False}, "stepfunctions": {"execute_state_machine": True}}
    with mock_aws(config=config):  # type: ignore[arg-type]
        lambdas.install()
        s3_events.install()
        distributed_map.install()
        moto_shortcuts.install()
        moto_shortcuts.atomic_dynamodb()
        eventbridge.install()

        stacks: list[Stack] = []

        def make(template: Template | None = None, **parameters: str) -> Stack:
            # Waits are real sleeps in moto's engine: keep them at zero unless a test says.
            defaults = {"PollFirstWaitSeconds": "0", "PollIntervalSeconds": "0"}
            cloud = provision(
                parameters={**defaults, **parameters},
                secrets={"WebhookSigningSecret": WEBHOOK_SECRET},
                template=template,
            )
            for key, value in cloud.environment.items():
                monkeypatch.setenv(key, value)
            lambdas.reset()  # a new stack: every function cold-starts with its environment
            stacks.append(Stack(cloud))
            return stacks[-1]

        yield make
        # Executions run on moto's threads: end them before the mock (and its fake AWS) goes.
        for stack in stacks:
            stack.stop_executions()
        lambdas.reset()


@pytest.fixture
def stack(make_stack: Callable[..., Stack]) -> Stack:
    return make_stack()


@pytest.fixture
def picsart() -> Iterator[respx.MockRouter]:
    """Picsart's API and CDN, faked at the HTTP layer; the real httpx client is used."""
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        router.route(host="cdn.picsart.test").respond(
            200, content=PNG, headers={"content-type": "image/png"}
        )
        yield router


def submitted(inference_id: str = "inf-1") -> respx.MockResponse:
    return respx.MockResponse(202, json={"status": "processing", "inference_id": inference_id})


def processing() -> respx.MockResponse:
    return respx.MockResponse(202, json={"status": "processing", "inference_id": "inf-1"})


def done(count: int, fmt: str = "png") -> respx.MockResponse:
    data = [{"id": f"img-{i}", "url": f"{CDN}/inf-1/{i}.{fmt}"} for i in range(count)]
    return respx.MockResponse(200, json={"status": "success", "data": data})
