"""Drop N inbox images into a local stack whose emulated Picsart account holds fewer credits
than the drop needs, top the account up once it is empty, and print what happened.

    .venv/bin/python bench/spend.py [--images 200] [--credits 120] [--rounds 2]

Each round: the account is set to `--credits`, the images are dropped (one background
each), and once the account is empty and the jobs it could pay for have succeeded the bench
waits `--hold` seconds (the rest must wait, not fail), then tops the account up with what
is missing. Printed per round: jobs succeeded and failed by code, generations the emulator
accepted (paid) and paid twice, when the account ran dry, when it was topped up, when the
governor resumed the provider (the scheduled balance check, BalanceCheckMinutes=1 here) and
the pause's length, when the last job ended, and the alarms' metrics the functions emitted
(ProviderOutOfCredits, ProviderCreditsAvailable below ProviderLowBalanceThreshold), read
from their embedded-metric lines. The stack runs on loopback only. Figures, not judgements.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import threading
import time
from typing import Any

import httpx

from backdrop.observability import logger
from backdrop_local import burst
from backdrop_local.emulator import EmulatorSettings
from backdrop_local.stack import LocalStack, StackOptions, aws_client

LOW_BALANCE = 40  # ProviderLowBalanceThreshold of the bench's stack


class MetricsTap(io.TextIOBase):
    """The process's stdout while the stack runs: embedded-metric lines (the functions run
    in this process) are kept with the time they came; the functions' logs are dropped."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._partial = ""
        self.seen: list[tuple[float, dict[str, Any]]] = []

    def write(self, text: str) -> int:
        with self._lock:
            lines = (self._partial + text).split("\n")
            self._partial = lines.pop()
            for line in lines:
                record = _json(line)
                if record is not None and "_aws" in record:
                    self.seen.append((time.monotonic(), record))
        return len(text)

    def first(self, metric: str, since: float, below: float | None = None) -> float | None:
        """When `metric` was first emitted after `since` (below a value, if given)."""
        for at, record in list(self.seen):
            value = record.get(metric)
            if at < since or value is None:
                continue
            values = value if isinstance(value, list) else [value]
            if below is None or min(values) < below:
                return at
        return None


def _json(line: str) -> dict[str, Any] | None:
    if not line.startswith("{"):
        return None
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _credits(ready: dict[str, Any], **body: Any) -> dict[str, Any]:
    answer = httpx.post(f"{ready['emulator_url']}/_emulator/credits", json=body)
    answer.raise_for_status()
    return answer.json()  # type: ignore[no-any-return]


def _paused(ready: dict[str, Any]) -> bool:
    item = (
        aws_client(ready, "dynamodb")
        .get_item(TableName=ready["governor_table"], Key={"provider": {"S": "picsart"}})
        .get("Item", {})
    )
    return float(item.get("credits_out_since", {}).get("N", "0")) > 0


def _until(predicate: Any, timeout: float, step: float = 0.25) -> float:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the bench waited too long")
        time.sleep(step)
    return time.monotonic()


def one_round(
    ready: dict[str, Any], tap: MetricsTap, *, images: int, credits: int, hold: float
) -> dict[str, Any]:
    httpx.post(f"{ready['emulator_url']}/_emulator/reset").raise_for_status()
    _credits(ready, provider="picsart", set=credits)
    began = time.monotonic()
    drop = burst.drop(ready, count=images, duplicates=0, metadata={"count": "1"})

    def ended() -> list[dict[str, Any]]:
        return burst.manifests(ready, drop)

    dry = _until(lambda: len(ended()) >= min(images, credits) and _paused(ready), 600)
    time.sleep(hold)
    held = ended()
    waiting = images - len(held)
    topped = time.monotonic()
    _credits(ready, provider="picsart", add=max(0, images - credits))
    resumed = _until(lambda: not _paused(ready), 600, step=0.5)
    done = _until(lambda: len(ended()) >= images, 900, step=0.5)
    burst.wait(ready, drop, timeout=60)
    figures = burst.figures(ready, drop, done - began)

    def at(moment: float | None) -> float | None:
        return None if moment is None else round(moment - began, 1)

    return {
        "images": images,
        "credits_at_start": credits,
        "succeeded": figures.succeeded,
        "failed": figures.failed,
        "failures": figures.failures,
        "accepted_generations": figures.submissions,
        "paid_twice": max(0, figures.submissions - figures.succeeded),
        "ended_before_top_up": len(held),
        "waiting_when_topped_up": waiting,
        "failed_while_paused": sum(1 for m in held if m["status"] == "failed"),
        "dry_at_s": at(dry),
        "topped_up_at_s": at(topped),
        "resumed_at_s": at(resumed),
        "pause_s": round(resumed - dry, 1),
        "resume_after_top_up_s": round(resumed - topped, 1),
        "last_job_ended_at_s": at(done),
        "after_top_up_to_last_job_s": round(done - topped, 1),
        "alarms": {
            "ProviderOutOfCredits_first_at_s": at(tap.first("ProviderOutOfCredits", began)),
            f"ProviderCreditsAvailable_below_{LOW_BALANCE}_first_at_s": at(
                tap.first("ProviderCreditsAvailable", began, below=LOW_BALANCE)
            ),
        },
        "throttled": figures.throttled,
        "dead_letters": figures.dead_letters,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--credits", type=int, default=120, help="the account at the start")
    parser.add_argument("--hold", type=float, default=10.0, help="seconds dry before top-up")
    parser.add_argument("--rounds", type=int, default=1, help="drops one after another")
    parser.add_argument("--processing", default="1", help="emulated Picsart job seconds")
    args = parser.parse_args(argv)

    options = StackOptions(
        api_port=0,
        echo=False,
        parameters={
            "BalanceCheckMinutes": "1",
            "ProviderLowBalanceThreshold": str(LOW_BALANCE),
            "PollFirstWaitSeconds": "1",
            "PollIntervalSeconds": "1",
        },
        emulator=EmulatorSettings.from_env().merged({"processing_seconds": args.processing}),
    )
    stack = LocalStack(options)
    real_stdout = sys.stdout
    tap = MetricsTap()
    rounds = []
    try:
        ready = stack.start()
        logger.setLevel("WARNING")  # the figures, not every job's log lines
        # The alarms' metrics, as embedded-metric lines on this process's stdout.
        os.environ["POWERTOOLS_METRICS_DISABLED"] = "false"
        with contextlib.redirect_stdout(tap):
            for _ in range(args.rounds):
                rounds.append(
                    one_round(ready, tap, images=args.images, credits=args.credits, hold=args.hold)
                )
    finally:
        stack.stop()
    print(json.dumps({"rounds": rounds}, indent=2), file=real_stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
