"""Start `backdrop local` as a user would (a separate process on free loopback ports)
and give the tests only its public surfaces: the HTTPS API, the AWS endpoint, the events."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from backdrop_local.samples import SAMPLES_DIR

pytestmark = pytest.mark.e2e

TERMINAL = {"succeeded", "failed", "canceled"}


@dataclass
class Local:
    ready: dict[str, Any]
    api: httpx.Client
    events_file: Path

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.ready["aws_endpoint_url"],
            region_name=self.ready["region"],
            aws_access_key_id="e2e",
            aws_secret_access_key="e2e",
        )

    def emulator(self, path: str, body: Any = None) -> Any:
        answer = httpx.request(
            "POST" if path != "settings" else "PUT",
            f"{self.ready['emulator_url']}/_emulator/{path}",
            json=body,
        )
        answer.raise_for_status()
        return answer.json() if answer.content else None

    def stats(self) -> dict[str, Any]:
        return httpx.get(f"{self.ready['emulator_url']}/_emulator/stats").json()  # type: ignore[no-any-return]

    def generate(self, **body: Any) -> str:
        answer = self.api.post("/v1/generations", json=body)
        assert answer.status_code == 202, answer.text
        return str(answer.json()["id"])

    def wait_for_job(self, job_id: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.api.get(f"/v1/generations/{job_id}").json()
            if job["status"] in TERMINAL:
                return job  # type: ignore[no-any-return]
            time.sleep(0.25)
        raise AssertionError(f"job {job_id} not finished after {timeout}s: {job}")

    def events(self) -> list[dict[str, Any]]:
        if not self.events_file.exists():
            return []
        return [json.loads(line) for line in self.events_file.read_text().splitlines() if line]

    def wait_for_event(self, key: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events():
                if event["detail"].get("source", {}).get("key") == key:
                    return event
            time.sleep(0.25)
        raise AssertionError(f"no event for {key} after {timeout}s")

    def download(self, job: dict[str, Any]) -> list[bytes]:
        """A job's results, fetched through the URLs the API gave (as a client would)."""
        answers = [httpx.get(result["url"]) for result in job["results"]]
        for answer in answers:
            answer.raise_for_status()
        return [answer.content for answer in answers]

    def upload(self, key: str, body: bytes) -> None:
        self.client("s3").put_object(Bucket=self.ready["input_bucket"], Key=key, Body=body)


@contextmanager
def running_local(workdir: Path, *arguments: str) -> Iterator[Local]:
    """`backdrop local` as a separate process on free loopback ports, until the block ends."""
    ready_file = workdir / "ready.json"
    events_file = workdir / "events.jsonl"
    command = [
        sys.executable, "-m", "backdrop_local.cli", "local",
        "--port", "0",
        "--ready-file", str(ready_file),
        "--events-file", str(events_file),
        *arguments,
    ]  # fmt: skip
    log = (workdir / "local.log").open("w")
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, cwd=workdir, env={**os.environ}
    )
    try:
        deadline = time.monotonic() + 60
        while not ready_file.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"backdrop local did not start:\n{(workdir / 'local.log').read_text()}"
                )
            time.sleep(0.2)
        ready = json.loads(ready_file.read_text())
        # A local stack running many executions answers slowly (one process does all AWS).
        api = httpx.Client(
            base_url=ready["api_url"], headers={"x-api-key": ready["api_key"]}, timeout=30
        )
        yield Local(ready=ready, api=api, events_file=events_file)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="session")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    # Short waits so the suite stays fast; five polls before a job times out.
    with running_local(
        tmp_path_factory.mktemp("local"),
        "--param", "PollFirstWaitSeconds=1",
        "--param", "PollIntervalSeconds=1",
        "--param", "PollMaxAttempts=5",
        # A dead webhook receiver reaches the dead letters after one retry (5 s later).
        "--param", "WebhookMaxAttempts=2",
        "--emulate", "processing_seconds=1",
    ) as stack:  # fmt: skip
        yield stack


@pytest.fixture
def stack(local: Local) -> Local:
    """The shared stack with the emulator back to a clean state for each test."""
    local.emulator("settings", {"honour_prefer_wait": True})  # some tests turn it off
    local.emulator("reset")
    return local


def sample(name: str = "mug") -> bytes:
    return (Path(SAMPLES_DIR) / f"{name}.png").read_bytes()
