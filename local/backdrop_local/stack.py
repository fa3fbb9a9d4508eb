"""`backdrop local`: the deployed shape on one machine.

moto in server mode is the AWS (boto3 and the aws CLI talk to it; this process's own calls
reach its backends directly, in_process.py), its Step Functions engine runs the real ASL,
Lambda invokes run our handlers in-process, the provider emulator (a process of its own)
stands in for Picsart, and an HTTP front plays API Gateway.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import boto3
import httpx
from moto.server import ThreadedMotoServer

from backdrop import aws
from backdrop.providers import registry
from backdrop_local import (
    distributed_map,
    eventbridge,
    in_process,
    lambdas,
    moto_shortcuts,
    s3_events,
)
from backdrop_local.api_front import ApiFront, ApiKeys, Gateway
from backdrop_local.cloud import REGION, EventSource, LocalCloud, provision
from backdrop_local.emulator import EmulatorSettings
from backdrop_local.emulator.process import EmulatorProcess
from backdrop_local.pollers import (
    EventLog,
    Handle,
    QueuePoller,
    Ticker,
    batch_failures,
    sqs_event,
)
from backdrop_local.template import Template

# Quiet, local-friendly defaults; anything here can be overridden with --param.
LOCAL_PARAMETERS = {
    "PollFirstWaitSeconds": "2",
    "PollIntervalSeconds": "1",
    # The emulator serves result files over http on loopback, and the local AWS's presigned
    # URLs (image_url) are loopback too: only this stack lets the fetch guards allow them.
    "AllowLoopbackFetch": "true",
    # Test receivers for webhooks listen on loopback, over http.
    "AllowPrivateWebhookHosts": "true",
    # Enough items in flight for 300 a minute with 3-12 s jobs, not so many that the one
    # process playing AWS serves the emulator's photo fetches too late (measured by
    # bench/batch.py, 1,000 images at 300/min: 60 kept too few jobs going, 100 timed out
    # fetches; the template's default is for AWS).
    "BatchMaxConcurrency": "80",
}


@dataclass
class StackOptions:
    host: str = "127.0.0.1"
    api_port: int = 3000
    aws_port: int = 0
    emulator_port: int = 0
    # Providers whose real API is used (key from <NAME>_API_KEY); the others are emulated.
    real_providers: tuple[str, ...] = ()
    api_key: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    emulator: EmulatorSettings = field(default_factory=EmulatorSettings)
    events_file: Path | None = None
    echo: bool = True


class LocalStack:
    def __init__(self, options: StackOptions) -> None:
        self.options = options
        self.api_key = options.api_key or secrets.token_urlsafe(24)
        self._stoppers: list[Any] = []
        self.cloud: LocalCloud | None = None
        self.emulator: EmulatorProcess | None = None
        self.ready: dict[str, Any] = {}
        self._keys: dict[str, str] = {}  # the API front's: usage_plan_id, api_key_id

    def _echo(self, line: str) -> None:
        if self.options.echo:
            print(line, flush=True)

    def start(self) -> dict[str, Any]:
        options = self.options
        # The functions log at WARNING here unless the caller's environment asks for more
        # (POWERTOOLS_LOG_LEVEL=INFO): at INFO they would bury the stack's own output.
        log_level = os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING")
        # Request logs of the embedded servers and moto's engine traces would drown the
        # stack's own output; failures still show as jobs and events.
        for noisy in ("werkzeug", "moto", "backdrop_local.emulator"):
            logging.getLogger(noisy).setLevel(logging.CRITICAL)
        template = Template()
        moto = ThreadedMotoServer(ip_address=options.host, port=options.aws_port, verbose=False)
        moto.start()
        self._stoppers.append(moto)
        _, aws_port = moto.get_host_and_port()
        endpoint = f"http://{options.host}:{aws_port}"
        # Every boto3 client in this process, ours and moto's own engine, uses the server's
        # backends: over HTTP from outside, directly from inside (in_process).
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": endpoint,
                "MOTO_PORT": str(aws_port),
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_DEFAULT_REGION": REGION,
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_METRICS_DISABLED": "true",
            }
        )
        os.environ.pop("AWS_PROFILE", None)
        os.environ.pop("AWS_SESSION_TOKEN", None)
        httpx.post(
            f"{endpoint}/moto-api/config",
            json={
                "lambda": {"use_docker": False},
                "stepfunctions": {"execute_state_machine": True},
            },
        ).raise_for_status()
        in_process.install(endpoint)
        self._stoppers.append(_InProcess())
        lambdas.install()
        s3_events.install()
        distributed_map.install()
        moto_shortcuts.install()
        eventbridge.install()

        parameters = {**LOCAL_PARAMETERS, **options.parameters}
        # What AWS would generate for the signing secret (32 base64 characters), fresh each
        # run; the ready file names it, so local receivers can verify.
        webhook_secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        keys: dict[str, str] = {"WebhookSigningSecret": webhook_secret}
        if set(registry.names()) - set(options.real_providers):
            self.emulator = EmulatorProcess(
                options.emulator, host=options.host, port=options.emulator_port
            )
            self.emulator.start()
            self._stoppers.append(self.emulator)
        for name in registry.names():
            # Template names follow the provider: PicsartApiUrl, PicsartApiKeySecret, ...
            title = name.title()
            if name in options.real_providers:
                key = os.environ.get(f"{name.upper()}_API_KEY", "")
                if not key:
                    raise SystemExit(f"--provider {name} needs {name.upper()}_API_KEY")
            else:
                assert self.emulator is not None
                key = "local-emulator-key"
                url = self.emulator.base_url_of(name)
                if url is None:
                    raise SystemExit(f"the emulator has no {name}: use --provider {name}")
                parameters.setdefault(f"{title}ApiUrl", url)
            keys[f"{title}ApiKeySecret"] = key

        self.cloud = cloud = provision(parameters=parameters, secrets=keys, template=template)
        # Functions share this process's environment, so each gets the union of the
        # template's variables (provision checks that they agree).
        os.environ.update({**cloud.environment, "POWERTOOLS_LOG_LEVEL": log_level})
        lambdas.reset()

        front = self._start_api_front(cloud)
        # Lambda's event source mappings, one poller each; EventBridge's clock, one ticker
        # per scheduled rule; the event log, a subscriber.
        parts: list[QueuePoller | Ticker] = [
            QueuePoller(s.queue_url, self._feeder(s), batch_size=min(s.batch_size, 10))
            for s in cloud.event_sources
        ]
        parts += [
            Ticker(s.seconds, partial(eventbridge.fire_schedule, s.rule_arn))
            for s in cloud.schedules
        ]
        if cloud.events_queue_url:
            log = EventLog(options.events_file, self._echo)
            parts.append(QueuePoller(cloud.events_queue_url, log))
        for part in parts:
            part.start()
            self._stoppers.append(part)

        self.ready = {
            "api_url": front.url if front else None,
            "api_key": self.api_key,
            # More keys: create an enabled API key on the local AWS, add it to this plan.
            **self._keys,
            "aws_endpoint_url": endpoint,
            "region": REGION,
            "input_bucket": cloud.input_bucket,
            "results_bucket": cloud.results_bucket,
            "published_bucket": cloud.environment.get("PUBLISHED_BUCKET"),
            "review_mode": cloud.environment.get("REVIEW_MODE"),
            # The review console: the page the stack serves (its key, pasted, stays in the tab).
            "console_url": f"{front.url}/console" if front else None,
            "jobs_table": cloud.jobs_table,
            "governor_table": cloud.environment.get("GOVERNOR_TABLE"),
            "state_machine_arn": cloud.state_machine_arn,
            "event_bus": cloud.event_bus,
            "inbox_queue_url": cloud.inbox_queue_url,
            "inbox_dead_letter_queue_url": cloud.inbox_dlq_url,
            # Standard Webhooks: verify deliveries with this (e.g. standardwebhooks.Webhook).
            "webhook_secret": webhook_secret,
            "webhook_dead_letter_queue_url": _queue_url(cloud, "WebhookDeadLetterQueue"),
            "events_file": str(options.events_file) if options.events_file else None,
            "provider": "+".join(options.real_providers) or "emulator",
            "real_providers": list(options.real_providers),
            "emulator_url": self.emulator.base_url if self.emulator else None,
        }
        return self.ready

    def _start_api_front(self, cloud: LocalCloud) -> ApiFront | None:
        """API Gateway's part: one REST API, routing to the functions with Api events."""
        if not cloud.api_events:
            return None
        if not 20 <= len(self.api_key) <= 128:
            raise SystemExit("--api-key: API Gateway takes keys of 20 to 128 characters")
        # The usage plan and key SAM makes for the Api's Auth.UsagePlan, on the local AWS.
        keys, key_id = ApiKeys.provision(
            aws.client("apigateway"), name="backdrop-local", value=self.api_key
        )
        self._keys = {"usage_plan_id": keys.usage_plan_id, "api_key_id": key_id}
        front = ApiFront(
            gateway=Gateway.from_template(cloud.rest_api, cloud.api_events),
            invoke=lambda function, event: self._invoke(function, event)[0],
            keys=keys,
            host=self.options.host,
            port=self.options.api_port,
        )
        front.start()
        self._stoppers.append(front)
        return front

    def _feeder(self, source: EventSource) -> Handle:
        """What an SQS event source mapping does with a batch: one invocation, then keep
        (for a retry) the messages the function failed on."""

        def feed(messages: list[dict[str, Any]]) -> set[str]:
            event = sqs_event(messages, source.queue_arn, REGION)
            payload, error = self._invoke(source.function, event)
            return batch_failures(payload, error, messages)

        return feed

    def _invoke(self, logical_id: str, event: dict[str, Any]) -> tuple[Any, str | None]:
        assert self.cloud is not None
        answer = aws.client("lambda").invoke(
            FunctionName=self.cloud.functions[logical_id], Payload=json.dumps(event).encode()
        )
        return json.loads(answer["Payload"].read()), answer.get("FunctionError")

    def stop(self) -> None:
        for part in reversed(self._stoppers):
            part.stop()
        self._stoppers.clear()


class _InProcess:
    def stop(self) -> None:
        in_process.uninstall()


def aws_client(ready: dict[str, Any], service: str) -> Any:
    """A boto3 client for the local stack's AWS, from its ready information."""
    return boto3.client(
        service,
        endpoint_url=ready["aws_endpoint_url"],
        region_name=ready["region"],
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def _queue_url(cloud: LocalCloud, logical_id: str) -> str | None:
    queue = cloud.queues.get(logical_id)
    return queue.url if queue else None
