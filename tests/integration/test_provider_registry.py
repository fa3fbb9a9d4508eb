"""A provider that exists only in this test, registered for it, runs through the real
state machine on moto, synchronous and asynchronous, without any other module knowing it:
the mode in the registry picks the workflow's path, never the provider's name."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

import boto3
import httpx
import pytest
import respx

from backdrop.providers import registry
from backdrop.providers.base import (
    MB,
    ClientFactory,
    InputLimits,
    Mode,
    PollOutcome,
    ProviderRequest,
    ProviderSettings,
    ProviderSpec,
    Submitted,
)
from backdrop_local.cloud import REGION
from backdrop_local.template import Template
from tests.integration.conftest import PNG, Stack

CDN = "https://cdn.fake-provider.test"
BODY = {
    "image_url": "https://images.example.com/mug.png",
    "prompt": "a sunlit terrace",
    "format": "PNG",
}


@dataclass
class FakeProvider:
    """In memory: records what it was asked; the async one is done at the second poll."""

    name: str
    api_key: str = ""
    requests: list[ProviderRequest] = field(default_factory=list)
    polls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def submit(self, request: ProviderRequest, *, wait_seconds: int = 0) -> Submitted:
        self.requests.append(request)
        return Submitted("fake-job-1")

    def poll(self, provider_job_id: str) -> PollOutcome:
        self.polls += 1
        if self.polls < 2:
            return PollOutcome("processing")
        count = self.requests[-1].options.count
        return PollOutcome("done", tuple(f"{CDN}/{provider_job_id}/{i}.png" for i in range(count)))

    def generate(self, request: ProviderRequest) -> AbstractContextManager[FakeImage]:
        with self.lock:
            self.requests.append(request)
        return nullcontext(FakeImage(seed=request.seed, chunks=iter([PNG])))


@dataclass(frozen=True)
class FakeImage:
    seed: int | None
    chunks: Iterator[bytes]
    content_type: str = "image/png"


@pytest.fixture
def stack(make_stack: Callable[..., Stack]) -> Stack:
    """The stack with the fake providers' secrets readable by the provider tasks, as a new
    provider's are once template.yaml grants them (docs/contributing/adding-a-provider.md)."""
    template = Template()
    grant = {
        "Effect": "Allow",
        "Action": "secretsmanager:GetSecretValue",
        "Resource": "arn:aws:secretsmanager:*:*:secret:fake*-key-*",
    }
    for function in ("SubmitFunction", "PollFunction", "GenerateFunction"):
        template.properties(function)["Policies"][0]["Statement"].append(grant)
    return make_stack(template)


@pytest.fixture
def fakes(
    monkeypatch: pytest.MonkeyPatch, picsart: respx.MockRouter
) -> Iterator[dict[str, FakeProvider]]:
    made: dict[str, FakeProvider] = {}

    def factory(name: str) -> ClientFactory:
        def make(api_key: str, settings: ProviderSettings, http: httpx.Client) -> FakeProvider:
            made.setdefault(name, FakeProvider(name))
            made[name].api_key = api_key
            return made[name]

        return make

    for name, mode in (("fakeasync", Mode.ASYNC), ("fakesync", Mode.SYNC)):
        registry.register(
            ProviderSpec(
                name=name,
                mode=mode,
                limits=InputLimits(formats=("PNG", "JPEG"), max_bytes=10 * MB),
                default_url=f"https://{name}.test",
                client=factory(name),
                options=frozenset({"seed"}),
            )
        )
        monkeypatch.setenv(f"{name.upper()}_SECRET_NAME", f"{name}-key")
    picsart.route(host="cdn.fake-provider.test").respond(
        200, content=PNG, headers={"content-type": "image/png"}
    )
    yield made
    for name in ("fakeasync", "fakesync"):
        registry.unregister(name)


def _secrets(*names: str) -> None:
    client = boto3.client("secretsmanager", region_name=REGION)
    for name in names:
        client.create_secret(Name=f"{name}-key", SecretString=f"secret-of-{name}")


def test_an_async_provider_from_the_registry_is_submitted_polled_and_stored(
    stack: Stack, fakes: dict[str, FakeProvider]
) -> None:
    _secrets("fakeasync")

    answer = stack.create_generation({**BODY, "provider": "fakeasync", "count": 2})
    job_id = json.loads(answer["body"])["id"]

    assert answer["statusCode"] == 202
    assert stack.wait_for_execution(job_id)["status"] == "SUCCEEDED"
    fake = fakes["fakeasync"]
    assert fake.api_key == "secret-of-fakeasync"  # from Secrets Manager, by its settings
    assert [r.image_url for r in fake.requests] == [BODY["image_url"]]
    assert fake.polls == 2
    assert stack.states_entered(job_id)[:5] == [
        "Synchronous?",
        "Submit",
        "Next step?",
        "WaitForResult",
        "Poll",
    ]
    assert "Generate" not in stack.states_entered(job_id)
    job = stack.job(job_id)
    assert (job["status"], job["provider"], job["provider_job_id"]) == (
        "succeeded",
        "fakeasync",
        "fake-job-1",
    )
    assert stack.result_keys() == [f"results/{job_id}/0.png", f"results/{job_id}/1.png"]


def test_a_sync_provider_from_the_registry_generates_each_image(
    stack: Stack, fakes: dict[str, FakeProvider]
) -> None:
    _secrets("fakesync")

    answer = stack.create_generation({**BODY, "provider": "fakesync", "count": 3, "seed": 7})
    job_id = json.loads(answer["body"])["id"]

    assert stack.wait_for_execution(job_id)["status"] == "SUCCEEDED"
    fake = fakes["fakesync"]
    assert sorted(r.seed for r in fake.requests if r.seed is not None) == [7, 8, 9]
    states = stack.states_entered(job_id)
    assert states[:2] == ["Synchronous?", "Generate"]
    assert "Submit" not in states
    assert stack.job(job_id)["status"] == "succeeded"
    assert sorted(stack.result_keys()) == [f"results/{job_id}/{i}.png" for i in range(3)]


def test_the_registry_decides_what_a_provider_honours(
    stack: Stack, fakes: dict[str, FakeProvider]
) -> None:
    # The fakes honour a seed but no negative prompt: refused before anything starts.
    status = stack.create_generation({**BODY, "provider": "fakeasync", "negative_prompt": "x"})

    body = json.loads(status["body"])
    assert status["statusCode"] == 422
    assert body["error"]["code"] == "unsupported_option"
    assert body["error"]["details"] == [
        {"field": "negative_prompt", "reason": "fakeasync does not support negative_prompt"}
    ]
    assert stack.executions() == []


def test_an_unregistered_provider_is_refused_naming_the_registered_ones(stack: Stack) -> None:
    answer = stack.create_generation({**BODY, "provider": "fakeasync"})

    body = json.loads(answer["body"])
    assert answer["statusCode"] == 422
    (detail,) = body["error"]["details"]
    assert detail["field"] == "provider"
    assert "picsart, photoroom" in detail["reason"]
