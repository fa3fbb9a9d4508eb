"""`backdrop provider status|resume NAME`: what the rate governor knows of each provider (a
rate-limit pause, an account out of credits) and, by hand, lifting an out-of-credits pause.
Against a deployed stack (`--stack-name`, with the AWS credentials and region of the shell)
or the local one (its ready file)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from backdrop_client.client import DEFAULT_READY_FILE

EXIT_USAGE = 2


def add_commands(commands: Any) -> None:
    provider = commands.add_parser(
        "provider",
        help="show providers' pauses; resume one whose credits are back",
        description="What the rate governor knows of each provider: a rate-limit pause, or "
        "an account out of credits (new work waits; the balance check resumes it). "
        "`resume NAME` lifts an out-of-credits pause at once.",
    )
    actions = provider.add_subparsers(dest="action", required=True)
    status = actions.add_parser("status", help="each provider's pauses")
    resume = actions.add_parser("resume", help="lift a provider's out-of-credits pause")
    resume.add_argument("name", help="the provider (picsart, photoroom)")
    for parser in (status, resume):
        where = parser.add_mutually_exclusive_group()
        where.add_argument("--stack-name", help="a deployed stack (its GovernorTable)")
        where.add_argument(
            "--ready-file", type=Path, help=f"a `backdrop local` ready file ({DEFAULT_READY_FILE})"
        )
        parser.add_argument("--region", help="the deployed stack's region (default: yours)")
    provider.set_defaults(run=run)


def run(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    from backdrop.governor import Governor, Limit
    from backdrop.providers import registry

    names = registry.names()
    if args.action == "resume" and args.name not in names:
        print(
            f"backdrop provider resume: unknown provider {args.name!r}; "
            f"the providers are: {', '.join(names)}",
            file=err,
        )
        return EXIT_USAGE
    try:
        table = _governor_table(args)
    except LookupError as exc:
        print(f"backdrop provider: {exc}", file=err)
        return EXIT_USAGE
    from backdrop.governor import DynamoBuckets

    buckets = DynamoBuckets(table)
    governor = Governor(buckets)
    if args.action == "resume":
        resumed = governor.resume(args.name, Limit.of(registry.get(args.name)))
        print(
            f"{args.name}: resumed: new work goes again"
            if resumed
            else f"{args.name}: was not out of credits; nothing to resume",
            file=out,
        )
        return 0
    for name in names:
        print(_status(name, buckets), file=out)
    return 0


def _status(name: str, buckets: Any) -> str:
    bucket, _ = buckets.read(name)
    if bucket is None:
        return f"{name}: not called yet"
    parts = []
    if bucket.credits_out_since:
        parts.append(
            f"out of credits since {_when(bucket.credits_out_since)} (new work waits; resumes "
            f"at a balance of {max(1, int(bucket.credits_needed))})"
        )
    paused = bucket.paused_until - time.time()
    if paused > 0:
        parts.append(f"rate-limited for {paused:.0f} s more (the provider answered 429)")
    return f"{name}: " + ("; ".join(parts) if parts else "calling")


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _governor_table(args: argparse.Namespace) -> str:
    """The governor's table, with the environment pointed at the stack's AWS."""
    if args.stack_name:
        import boto3

        if args.region:
            os.environ["AWS_DEFAULT_REGION"] = args.region
        cfn = boto3.client("cloudformation")
        try:
            found = cfn.describe_stack_resource(
                StackName=args.stack_name, LogicalResourceId="GovernorTable"
            )
        except Exception as exc:  # botocore's errors: say which stack, and why
            raise LookupError(f"stack {args.stack_name}: {exc}") from None
        return str(found["StackResourceDetail"]["PhysicalResourceId"])
    path = args.ready_file or DEFAULT_READY_FILE
    try:
        ready = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise LookupError(
            f"no local stack at {path} ({exc}); start one (`backdrop local`) or give --stack-name"
        ) from None
    os.environ["AWS_ENDPOINT_URL"] = ready["aws_endpoint_url"]
    os.environ["AWS_DEFAULT_REGION"] = ready["region"]
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    return str(ready["governor_table"])
