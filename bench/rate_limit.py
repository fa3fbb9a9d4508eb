"""Drop N images into the inbox of a local stack whose provider emulator and rate governor
both allow R requests a minute, and print what happened against the rate-limit bound.

    .venv/bin/python bench/rate_limit.py --images 200 --rate 120 [--processing 3-12]
        [--submit-wait 15] [--no-prefer] [--faults] [--poll-first 8 --poll-interval 3]

Printed: wall time; the bound (provider API calls made / R) and the ratio; jobs succeeded
and failed by code; generations accepted (paid) against distinct images; 429s received;
polls per job; result lag p50/p95 (ready at the provider -> first downloaded); state
transitions per job (what Standard workflows bill). `--no-prefer` plays a gateway that
ignores `Prefer: respond-async, wait=N`; `--faults` adds 5 % each of 500, 503, slow,
`error` and expired results. The stack runs on loopback only. Figures, not judgements.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from typing import Any

import httpx

from backdrop_local import burst
from backdrop_local.emulator import EmulatorSettings
from backdrop_local.stack import LocalStack, StackOptions

FAULTS = {
    "fault_500": "0.05",
    "fault_503": "0.05",
    "fault_slow": "0.05",
    "slow_seconds": "5",
    "fault_error": "0.05",
    "fault_expired": "0.05",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--rate", type=int, default=120, help="requests a minute (both sides)")
    parser.add_argument("--processing", default="3-12", help="emulated Picsart job seconds")
    parser.add_argument("--submit-wait", type=int, default=15, help="PicsartSubmitWaitSeconds")
    parser.add_argument("--no-prefer", action="store_true", help="the gateway ignores Prefer")
    parser.add_argument("--faults", action="store_true", help="5%% each of five faults")
    parser.add_argument("--poll-first", default="8", help="PollFirstWaitSeconds")
    parser.add_argument("--poll-interval", default="3", help="PollIntervalSeconds")
    parser.add_argument(
        "--rounds", type=int, default=1, help="drops one after another on the same stack"
    )
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args(argv)

    emulated = {
        "processing_seconds": args.processing,
        "rate_limit_per_minute": str(args.rate),
        "honour_prefer_wait": "false" if args.no_prefer else "true",
        "seed": "7",
    } | (FAULTS if args.faults else {})
    options = StackOptions(
        api_port=0,
        echo=False,
        parameters={
            "PicsartRequestsPerMinute": str(args.rate),
            "PicsartSubmitWaitSeconds": str(args.submit_wait),
            "PollFirstWaitSeconds": args.poll_first,
            "PollIntervalSeconds": args.poll_interval,
        },
        emulator=EmulatorSettings.from_env().merged(emulated),
    )
    stack = LocalStack(options)
    try:
        ready = stack.start()
        for round_number in range(1, args.rounds + 1):
            # Each round starts with the emulator's figures and window at zero; the governor
            # keeps what it learned (the poll share, recent job times), as a live stack does.
            httpx.post(f"{ready['emulator_url']}/_emulator/reset").raise_for_status()
            report(args, *one_round(ready, args.images, args.timeout), round_number)
    finally:
        stack.stop()
    return 0


def one_round(
    ready: dict[str, Any], images: int, timeout: float
) -> tuple[burst.Figures, list[int]]:
    began = time.monotonic()
    dropped = burst.drop(
        ready, count=images, duplicates=0, metadata={"count": "1", "provider": "picsart"}
    )
    burst.wait(ready, dropped, timeout=timeout)
    figures = burst.figures(ready, dropped, time.monotonic() - began)
    return figures, burst.transitions(ready, dropped)


def report(
    args: argparse.Namespace, figures: burst.Figures, transitions: list[int], round_number: int
) -> None:
    bound = figures.requests / args.rate * 60
    printed = dataclasses.asdict(figures) | {
        "round": round_number,
        "images": args.images,
        "rate_per_minute": args.rate,
        "processing_seconds": args.processing,
        "prefer_wait": 0 if args.no_prefer else args.submit_wait,
        "faults": args.faults,
        "seconds": round(figures.seconds, 1),
        "bound_seconds": round(bound, 1),
        "seconds_over_bound": round(figures.seconds / bound, 2) if bound else None,
        "accepted_not_stored": figures.submissions - figures.succeeded,
        "polls_per_job": round(figures.polls / max(1, figures.jobs), 2),
        "transitions_per_job": round(statistics.mean(transitions), 1) if transitions else None,
        "transitions_max": max(transitions, default=None),
    }
    print(json.dumps(printed, indent=2), flush=True)


if __name__ == "__main__":
    sys.exit(main())
