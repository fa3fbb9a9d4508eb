"""Start a batch over N catalogue images on a local stack whose provider emulator and rate
governor both allow R requests a minute, then the same batch again, and print what happened
against the rate-limit bound.

    .venv/bin/python bench/batch.py --images 1000 --rate 300 [--concurrency 80]
        [--processing-seconds 3-12] [--submit-wait 15] [--poll-first 8 --poll-interval 3]
        [--param NAME=VALUE ...]

Printed, per batch: wall time (POST /v1/batches to a finished status); the bound (N / R,
and provider API calls made / R as bench/rate_limit.py has it) and the ratios; the batch's
counts and the jobs it made; failed jobs by error code and message (the report CSV), those
failed for throttling apart; where its time went (its start to its first job, to its last
job's end, then to its own end); provider submissions, generations accepted (paid), polls
and 429s (the emulator's figures, before and after); job seconds p50/p95 (created to last
update, the jobs table); this process's CPU seconds per wall second and per image (the
whole stack, moto's engine and the functions included, runs in it: beside the seconds per
image the rate allows, it says whether the machine can keep up), and apart the provider
emulator's (its own process, as a provider's work is done on its machines); state
transitions per image (a sample of the generation executions, the Map's item path from the
deployed ASL, the batch execution's own over N); the functions' warnings by message. The
functions' log lines go to stderr, with a progress line every `--every` seconds. Loopback
only. Figures, not judgements.
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import json
import logging
import os
import resource
import statistics
import sys
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import httpx

from backdrop_local import burst
from backdrop_local.emulator import EmulatorSettings
from backdrop_local.stack import LocalStack, StackOptions, aws_client

# Error codes of jobs failed for the provider's rate limit: a 429 it would not get past, or
# a turn at the governor that would come after the queue deadline.
THROTTLING = ("provider_throttled", "queue_timeout")
COUNTERS = ("submissions", "accepted", "polls", "throttled")  # the emulator's, for Picsart
FINISHED = ("succeeded", "failed")
SAMPLED_EXECUTIONS = 10  # generation executions whose history is read, spread over the batch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=300, help="requests a minute (both sides)")
    parser.add_argument(
        "--concurrency", type=int, help="BatchMaxConcurrency (default: the template's)"
    )
    parser.add_argument("--processing-seconds", default="3-12", help="emulated Picsart job seconds")
    parser.add_argument("--submit-wait", type=int, default=15, help="PicsartSubmitWaitSeconds")
    parser.add_argument("--poll-first", default="8", help="PollFirstWaitSeconds")
    parser.add_argument("--poll-interval", default="3", help="PollIntervalSeconds")
    parser.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="any other parameter"
    )
    parser.add_argument("--every", type=float, default=15, help="seconds between progress lines")
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args(argv)

    parameters = {
        "PicsartRequestsPerMinute": str(args.rate),
        "PicsartSubmitWaitSeconds": str(args.submit_wait),
        "PollFirstWaitSeconds": args.poll_first,
        "PollIntervalSeconds": args.poll_interval,
    }
    if args.concurrency is not None:
        parameters["BatchMaxConcurrency"] = str(args.concurrency)
    parameters |= dict(item.split("=", 1) for item in args.param)
    emulated = {
        "processing_seconds": args.processing_seconds,
        "rate_limit_per_minute": str(args.rate),
        "seed": "7",
    }
    options = StackOptions(
        api_port=0,
        echo=False,
        parameters=parameters,
        emulator=EmulatorSettings.from_env().merged(emulated),
    )
    stack = LocalStack(options)
    try:
        ready = stack.start()
        warnings = route_logs()
        assert stack.cloud is not None
        batch_machine = stack.cloud.state_machines["BatchStateMachine"]
        concurrency = int(stack.cloud.environment["BATCH_MAX_CONCURRENCY"])
        paths = item_paths(ready, batch_machine)
        emulator = stack.emulator.pid if stack.emulator else None
        # The emulator's figures and rate window start at zero, as in bench/rate_limit.py.
        httpx.post(f"{ready['emulator_url']}/_emulator/reset").raise_for_status()
        prefix = upload(ready, args.images)
        headers = {"x-api-key": ready["api_key"]}
        with httpx.Client(base_url=ready["api_url"], headers=headers, timeout=60) as api:
            for run in ("first", "second"):  # the second over the same images: all skipped
                warnings.clear()
                emulator_before = process_cpu_seconds(emulator)
                figures = one_batch(ready, api, prefix, args, batch_machine, paths)
                emulator_after = process_cpu_seconds(emulator)
                if emulator_before is not None and emulator_after is not None and args.images:
                    spent = emulator_after - emulator_before
                    figures["emulator_cpu_seconds_per_image"] = round(spent / args.images, 3)
                figures["warnings"] = dict(warnings)
                printed = {"run": run, "concurrency": concurrency} | figures
                print(json.dumps(printed, indent=2), flush=True)
    finally:
        stack.stop()
    return 0


class _Counting(logging.Handler):
    def __init__(self, counts: Counter[str]) -> None:
        super().__init__(logging.WARNING)
        self.counts = counts

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[record.getMessage()] += 1


def route_logs() -> Counter[str]:
    """The functions' log lines to stderr (stdout has the figures alone), and their warnings
    counted by message (e.g. "rate governor contended")."""
    from backdrop.observability import logger  # once the stack has named the service

    functions = logging.getLogger(logger.name)
    for handler in functions.handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
            handler.setStream(sys.stderr)
    counts: Counter[str] = Counter()
    functions.addHandler(_Counting(counts))
    return counts


def item_paths(ready: dict[str, Any], batch_machine: str) -> dict[str, int]:
    """States one item enters in the batch's Map (its child execution's transitions, which
    moto keeps no history of), from the deployed ASL: an item run as a job, an item skipped
    (the `RunListedItem?` choice's two ways), no retries counted."""
    definition = json.loads(
        aws_client(ready, "stepfunctions").describe_state_machine(stateMachineArn=batch_machine)[
            "definition"
        ]
    )
    processor = definition["States"]["FromPrefix"]["ItemProcessor"]
    states = processor["States"]

    def entered(choose: str) -> int:
        name, count = processor["StartAt"], 0
        while name:
            state = states[name]
            count += 1
            if state["Type"] == "Choice":
                name = state["Choices"][0]["Next"] if choose == "run" else state["Default"]
            else:
                name = None if state.get("End") else state.get("Next")
        return count

    return {"run": entered("run"), "skipped": entered("skipped")}


def upload(ready: dict[str, Any], images: int) -> str:
    """N small PNGs under a fresh catalog/ prefix; the prefix."""
    s3 = aws_client(ready, "s3")
    prefix = f"catalog/bench-{uuid.uuid4().hex[:8]}/"
    bodies = itertools.cycle(burst.samples())
    keys_and_bodies = [(f"{prefix}item-{n:04d}.png", next(bodies)) for n in range(images)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(
            pool.map(
                lambda item: s3.put_object(Bucket=ready["input_bucket"], Key=item[0], Body=item[1]),
                keys_and_bodies,
            )
        )
    return prefix


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu_seconds(pid: int | None) -> float | None:
    """Another process's CPU seconds so far (Linux's /proc), or None where unknown."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except (OSError, TypeError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def one_batch(
    ready: dict[str, Any],
    api: httpx.Client,
    prefix: str,
    args: argparse.Namespace,
    batch_machine: str,
    paths: dict[str, int],
) -> dict[str, Any]:
    before = burst.emulator_stats(ready)["picsart"]
    cpu_before = cpu_seconds()
    began = time.monotonic()
    answer = api.post("/v1/batches", json={"prefix": prefix, "count": 1})
    if answer.status_code != 202:
        raise SystemExit(f"POST /v1/batches: {answer.status_code} {answer.text}")
    batch = wait(ready, api, answer.json()["id"], began, args)
    seconds = time.monotonic() - began
    cpu = cpu_seconds() - cpu_before
    after = burst.emulator_stats(ready)["picsart"]
    delta = {name: int(after[name]) - int(before[name]) for name in COUNTERS}
    rows = report_rows(batch)
    codes = Counter(row["error_code"] for row in rows if row["status"] == "failed")
    job_ids = [row["job_id"] for row in rows if row["job_id"]]
    calls = delta["submissions"] + delta["polls"] + delta["throttled"]
    bound = args.images / args.rate * 60
    calls_bound = calls / args.rate * 60
    made = batch_jobs(ready, batch["id"])
    latencies = [
        (end - start).total_seconds() for status, start, end in made.values() if status in FINISHED
    ]
    phases = batch_phases(batch, made)
    generation = generation_transitions(ready, sorted(made))
    batch_states = execution_transitions(ready, f"{execution_prefix(batch_machine)}:{batch['id']}")
    counts = batch["counts"]
    map_states = paths["run"] * len(made) + paths["skipped"] * counts["skipped"]
    per_image = None
    if args.images:
        mean_generation = statistics.mean(generation) if generation else 0
        share = len(made) / args.images  # images that ran a generation workflow
        per_image = round(mean_generation * share + (map_states + batch_states) / args.images, 1)
    return {
        "batch": batch["id"],
        "status": batch["status"],
        "images": args.images,
        "rate_per_minute": args.rate,
        "processing_seconds": args.processing_seconds,
        "seconds": round(seconds, 1),
        "bound_seconds": round(bound, 1),
        "seconds_over_bound": round(seconds / bound, 2) if bound else None,
        "calls_bound_seconds": round(calls_bound, 1),
        "seconds_over_calls_bound": round(seconds / calls_bound, 2) if calls_bound else None,
        "counts": counts,
        "items_with_a_job": len(set(job_ids)),
        "jobs_made": len(made),
        "failures": dict(sorted(codes.items())),
        "failure_messages": dict(
            Counter(
                f"{row['error_code']}: {row['error_message']}"
                for row in rows
                if row["status"] == "failed"
            ).most_common(5)
        ),
        "failed_for_throttling": sum(codes[code] for code in THROTTLING),
        "submissions": delta["submissions"],
        "accepted": delta["accepted"],
        "polls": delta["polls"],
        "throttled": delta["throttled"],
        **phases,
        "job_seconds_p50": percentile(latencies, 0.5),
        "job_seconds_p95": percentile(latencies, 0.95),
        "cpu_seconds_per_second": round(cpu / seconds, 2),
        "cpu_seconds_per_image": round(cpu / args.images, 3) if args.images else None,
        "seconds_per_image_at_rate": round(60 / args.rate, 3),
        "transitions_per_generation": round(statistics.mean(generation), 1) if generation else None,
        "batch_execution_transitions": batch_states,
        "map_item_transitions": map_states,
        "transitions_per_image": per_image,
    }


def wait(
    ready: dict[str, Any],
    api: httpx.Client,
    batch_id: str,
    began: float,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Until the batch has a finished status (a progress line to stderr every so often)."""
    deadline = began + args.timeout
    shown, cpu_shown = began, cpu_seconds()
    while time.monotonic() < deadline:
        batch: dict[str, Any] = api.get(f"/v1/batches/{batch_id}").json()
        if batch["status"] != "running":
            return batch
        now = time.monotonic()
        if now - shown >= args.every:
            cpu = cpu_seconds()
            share = (cpu - cpu_shown) / (now - shown)
            shown, cpu_shown = now, cpu
            stats = burst.emulator_stats(ready)["picsart"]
            print(
                f"{now - began:6.0f} s  {json.dumps(batch['counts'])}  "
                f"submissions {stats['submissions']}  429s {stats['throttled']}  "
                f"cpu {share:.2f}",
                file=sys.stderr,
                flush=True,
            )
        time.sleep(1)
    raise TimeoutError(f"batch {batch_id} still running after {args.timeout:.0f} s")


def report_rows(batch: dict[str, Any]) -> list[dict[str, str]]:
    if not batch.get("report_url"):
        return []
    text = httpx.get(batch["report_url"]).raise_for_status().text
    return list(csv.DictReader(io.StringIO(text)))


def batch_jobs(ready: dict[str, Any], batch_id: str) -> dict[str, tuple[str, datetime, datetime]]:
    """The jobs the batch made (the jobs table), by id: status, created, last updated."""
    pages = (
        aws_client(ready, "dynamodb").get_paginator("scan").paginate(TableName=ready["jobs_table"])
    )
    made = {}
    for page in pages:
        for item in page["Items"]:
            if item.get("batch_id", {}).get("S") != batch_id:
                continue
            created = datetime.fromisoformat(item["created_at"]["S"])
            updated = datetime.fromisoformat(item["updated_at"]["S"])
            made[item["id"]["S"]] = (item["status"]["S"], created, updated)
    return made


def batch_phases(
    batch: dict[str, Any], made: dict[str, tuple[str, datetime, datetime]]
) -> dict[str, float | None]:
    """Where the batch's time went: its start to its first job, its jobs, its last job's
    end to its own (the report)."""
    if not made or not batch.get("started_at") or not batch.get("finished_at"):
        return dict.fromkeys(
            ("first_job_after_seconds", "last_job_ended_seconds", "after_last_job_seconds")
        )
    started = datetime.fromisoformat(batch["started_at"])
    finished = datetime.fromisoformat(batch["finished_at"])
    first = min(created for _, created, _ in made.values())
    last = max(updated for _, _, updated in made.values())
    return {
        "first_job_after_seconds": round((first - started).total_seconds(), 1),
        "last_job_ended_seconds": round((last - started).total_seconds(), 1),
        "after_last_job_seconds": round((finished - last).total_seconds(), 1),
    }


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 1)


def execution_prefix(state_machine_arn: str) -> str:
    return state_machine_arn.replace(":stateMachine:", ":execution:")


def execution_transitions(ready: dict[str, Any], execution_arn: str) -> int:
    """States entered by one execution (what Standard workflows bill)."""
    sfn = aws_client(ready, "stepfunctions")
    try:
        pages = sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn)
        return sum(
            1
            for page in pages
            for event in page["events"]
            if event["type"].endswith("StateEntered")
        )
    except sfn.exceptions.ExecutionDoesNotExist:
        return 0


def generation_transitions(ready: dict[str, Any], job_ids: list[str]) -> list[int]:
    """States entered by a few of the generation executions the batch started, spread
    over them."""
    if not job_ids:
        return []
    step = max(1, len(job_ids) // SAMPLED_EXECUTIONS)
    arn = execution_prefix(ready["state_machine_arn"])
    counts = [execution_transitions(ready, f"{arn}:{job_id}") for job_id in job_ids[::step]]
    return [count for count in counts if count]


if __name__ == "__main__":
    sys.exit(main())
