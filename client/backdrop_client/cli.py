"""The `backdrop` client commands, for any stack's API (deployed, or `backdrop local`):
`generate` (backgrounds for photos), `jobs` (a table of jobs), `cancel` (a job) and `batch`
(start one over a folder or a manifest, watch it, cancel, retry, list).

They need nothing but httpx and Pillow: `pip install ./client` installs them alone. The
project's own `backdrop` command (backdrop_local.cli) adds them beside the local stack's
commands with `add_commands`."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from backdrop_client import client as api
from backdrop_client.batch_watch import (
    batch_problems,
    batch_summary,
    count_text,
    quote_lines,
    watch_batch,
)
from backdrop_client.status_line import StatusLine

DESCRIPTION = """backdrop's client, for any stack's API (deployed, or `backdrop local`):
`generate` (backgrounds for photos), `jobs` (a table of jobs), `cancel` (a job) and `batch`
(start one over a folder or a manifest, watch it, cancel, retry, list). The API's URL and
key: --api-url and --api-key, else BACKDROP_API_URL and BACKDROP_API_KEY, else the ready
file of a running `backdrop local` (.backdrop/ready.json)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="backdrop", description=DESCRIPTION)
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.run(args))


def add_commands(commands: Any) -> None:
    """Add generate, jobs, cancel and batch to `commands` (an argparse subparsers action,
    its dest "command"); each sets `run`, which takes the parsed arguments and answers the
    exit code."""
    generate = commands.add_parser(
        "generate",
        help="generate backgrounds for photos through any stack's API",
        description="One job per photo (a file, or an http(s) URL the provider fetches). "
        "Files up to 4 MB go inline, larger ones through POST /v1/uploads. With --wait "
        "(the default) it polls the jobs and downloads the results into OUT/<job id>/, "
        "printing each file's path. Exit codes: 0 every job succeeded, 1 a job failed, "
        "2 bad usage or a request the API refused, 3 the API cannot be reached.",
    )
    generate.add_argument(
        "photos", nargs="+", metavar="PHOTO", help="a JPEG, PNG or WEBP file, or an http(s) URL"
    )
    generate.add_argument("--prompt", help="what the new background shows")
    generate.add_argument("--count", type=_positive, help="images per photo (1..10)")
    generate.add_argument("--provider", help="picsart or photoroom (default: the stack's)")
    generate.add_argument(
        "--format", type=str.upper, choices=["JPG", "PNG", "WEBP"], help="of the results"
    )
    generate.add_argument(
        "--out", default="backdrop-results", help="results go to OUT/<job id>/ (%(default)s)"
    )
    generate.add_argument(
        "--wait",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="wait for the jobs and download their results (default), or print their ids",
    )
    generate.add_argument(
        "--timeout", type=float, default=600.0, help="seconds to wait (%(default)s)"
    )
    _client_arguments(generate)
    generate.set_defaults(run=_client_command(_generate))

    jobs = commands.add_parser("jobs", help="list a stack's jobs, newest first")
    jobs.add_argument("--status", choices=["queued", "running", "succeeded", "failed", "canceled"])
    jobs.add_argument("--limit", type=_positive, default=20, help="jobs to show (%(default)s)")
    _client_arguments(jobs)
    jobs.set_defaults(run=_client_command(_jobs))

    cancel = commands.add_parser("cancel", help="cancel a job that has not finished")
    cancel.add_argument("job_id", help="the job's id")
    _client_arguments(cancel)
    cancel.set_defaults(run=_client_command(_cancel))

    _batch_parser(commands)


def _batch_parser(commands: Any) -> None:
    batch = commands.add_parser(
        "batch",
        help="start, watch, cancel, retry and list batches",
        description="A batch makes one job per image: every object under a prefix of the "
        "input bucket (catalog/...), or every row of a manifest. Exit codes: 0 the batch "
        "succeeded, 1 an item failed or the batch failed, was canceled or is still running, "
        "2 bad usage or a request the API refused, 3 the API cannot be reached.",
    )
    batches = batch.add_subparsers(dest="batch_command", required=True, metavar="COMMAND")

    start = batches.add_parser(
        "start",
        help="start a batch over a prefix or a manifest",
        description="Start a batch and print its id; with --watch, follow it to its end "
        "as `backdrop batch watch` does.",
    )
    source = start.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--prefix",
        help="every object under this prefix of the input bucket, e.g. catalog/shoes/",
    )
    source.add_argument(
        "--manifest",
        type=Path,
        metavar="FILE",
        help="a .csv (with a header) or .jsonl file, a row per image (key or image_url, "
        "and its own prompt, count, format, provider, seed, sku if need be); uploaded first",
    )
    start.add_argument("--prompt", help="what the new backgrounds show")
    start.add_argument("--negative-prompt", help="what they must not show")
    start.add_argument("--count", type=_positive, help="images per item (1..10)")
    start.add_argument(
        "--format", type=str.upper, choices=["JPG", "PNG", "WEBP"], help="of the results"
    )
    start.add_argument("--provider", help="picsart or photoroom (default: the stack's)")
    start.add_argument("--seed", type=_whole, help="for repeatable results (Photoroom)")
    start.add_argument(
        "--metadata",
        action="append",
        default=[],
        type=_pair,
        metavar="NAME=VALUE",
        help="a label on the batch, its jobs and its Batch Completed event (repeatable)",
    )
    start.add_argument(
        "--idempotency-key",
        metavar="KEY",
        help="running the command again with the same KEY answers the same batch (for "
        "24 h) rather than start another; with --manifest the file is uploaded anew, which "
        "the API takes for another request",
    )
    _budget_arguments(start)
    start.add_argument(
        "--dry-run",
        action="store_true",
        help="print what the batch would do (items, skips, refusals, images, estimated cost "
        "and duration) and start nothing",
    )
    start.add_argument(
        "--watch", action="store_true", help="then follow it to its end, as `batch watch` does"
    )
    _watch_arguments(start)
    _client_arguments(start)
    start.set_defaults(run=_client_command(_batch_start))

    watch = batches.add_parser(
        "watch",
        help="follow a batch to its end, then print its summary",
        description="Poll the batch and show its progress (a bar, the counts, the time "
        "left) on one line of stderr, rewritten on a terminal, else printed now and then; "
        "at its end print its status, counts and report URL. Exit codes: 0 the batch "
        "succeeded, 1 an item failed or the batch failed, was canceled or is still running. "
        "Ctrl-C stops watching, not the batch.",
    )
    watch.add_argument("batch_id", metavar="ID", help="the batch's id")
    _watch_arguments(watch)
    _client_arguments(watch)
    watch.set_defaults(run=_client_command(_batch_watch))

    cancel = batches.add_parser(
        "cancel",
        help="cancel a running batch",
        description="No new item of the batch starts; jobs already started finish.",
    )
    cancel.add_argument("batch_id", metavar="ID", help="the batch's id")
    _client_arguments(cancel)
    cancel.set_defaults(run=_client_command(_batch_cancel))

    retry = batches.add_parser(
        "retry",
        help="start a new batch over the failed items of a finished one",
        description="Print the new batch's id; with --watch, follow it to its end.",
    )
    retry.add_argument("batch_id", metavar="ID", help="the finished batch's id")
    _budget_arguments(retry, "instead of the batch's own")
    retry.add_argument(
        "--watch", action="store_true", help="then follow it to its end, as `batch watch` does"
    )
    _watch_arguments(retry)
    _client_arguments(retry)
    retry.set_defaults(run=_client_command(_batch_retry))

    usage = commands.add_parser(
        "usage",
        help="your jobs, images and their cost, by day and provider",
        description="GET /v1/usage: this API key's jobs (and its batches'), the images they "
        "made and their estimated cost, one line a day and provider (UTC days).",
    )
    usage.add_argument("--from", dest="start", metavar="YYYY-MM-DD", help="the first day")
    usage.add_argument("--to", dest="end", metavar="YYYY-MM-DD", help="the last day (today)")
    _client_arguments(usage)
    usage.set_defaults(run=_client_command(_usage))

    listing = batches.add_parser("list", help="list your batches, newest first")
    listing.add_argument(
        "--limit", type=_positive, default=20, help="batches to show (%(default)s)"
    )
    _client_arguments(listing)
    listing.set_defaults(run=_client_command(_batch_list))


def _budget_arguments(parser: argparse.ArgumentParser, how: str = "") -> None:
    budget = parser.add_argument_group(
        "budget",
        "items past it end not started (budget_reached); " + (how or "jobs started finish"),
    )
    budget.add_argument("--max-images", type=_positive, metavar="N", help="images in all")
    budget.add_argument(
        "--max-cost-usd", type=_dollars, metavar="USD", help="estimated dollars in all"
    )


def _budget(args: argparse.Namespace) -> dict[str, Any]:
    given = {"max_images": args.max_images, "max_cost_usd": args.max_cost_usd}
    return {name: value for name, value in given.items() if value is not None}


def _watch_arguments(parser: argparse.ArgumentParser) -> None:
    watching = parser.add_argument_group("watching")
    watching.add_argument(
        "--interval",
        type=_seconds,
        default=2.0,
        metavar="SECONDS",
        help="seconds between polls (%(default)s)",
    )
    watching.add_argument(
        "--timeout",
        type=_seconds,
        metavar="SECONDS",
        help="stop watching after this many seconds (default: when the batch ends)",
    )
    watching.add_argument(
        "--report",
        type=Path,
        metavar="FILE",
        help="also download the report (CSV, a row per item) to FILE; its URL expires",
    )


def _number(parse: Callable[[str], float], least: float, what: str) -> Callable[[str], Any]:
    """An argparse type: `parse`d, at least `least` and finite, else a usage error."""

    def read(text: str) -> Any:
        try:
            value = parse(text)
        except ValueError:
            value = least - 1
        if not least <= value < float("inf"):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return read


_positive = _number(int, 1, "a positive whole number")
_whole = _number(int, 0, "a whole number")
_seconds = _number(float, 0, "a number of seconds")
_dollars = _number(float, 0.000001, "a positive number of dollars")


def _pair(text: str) -> tuple[str, str]:
    # An argparse type, so a malformed pair is a usage error rather than a traceback.
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def _client_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_argument_group(
        "connection",
        f"the arguments, else {api.API_URL_VARIABLE} and {api.API_KEY_VARIABLE}, else the "
        "ready file of a running `backdrop local`",
    )
    where.add_argument("--api-url", help="the stack's API URL (its ApiUrl output)")
    where.add_argument("--api-key", help="the API key (x-api-key)")
    where.add_argument(
        "--ready-file", type=Path, help=f"a `backdrop local` ready file ({api.DEFAULT_READY_FILE})"
    )


def _client_command(command: Any) -> Any:
    """Run a client command: every problem is one line on stderr and an exit code."""

    def run(args: argparse.Namespace) -> int:
        try:
            connection = api.Connection.resolve(args.api_url, args.api_key, args.ready_file)
            with api.Client(connection) as client:
                return int(command(client, args))
        except api.BackdropError as error:
            print(f"{_name(args)}: {error}", file=sys.stderr)
            return error.exit_code
        except KeyboardInterrupt:
            print(f"{_name(args)}: interrupted", file=sys.stderr)
            return 130

    return run


def _name(args: argparse.Namespace) -> str:
    """The command as typed, for messages: `backdrop jobs`, `backdrop batch watch`."""
    words = ["backdrop", args.command, getattr(args, "batch_command", None)]
    return " ".join(word for word in words if word)


def _generate(client: api.Client, args: argparse.Namespace) -> int:
    # Every photo is checked before any job starts.
    photos: list[api.Photo | str] = [
        name if name.startswith(("http://", "https://")) else api.Photo.read(Path(name))
        for name in args.photos
    ]
    options = {
        name: value
        for name in ("prompt", "count", "provider", "format")
        if (value := getattr(args, name)) is not None
    }
    started = [client.generate(photo, options)["id"] for photo in photos]
    if not args.wait:
        for job_id in started:
            print(job_id)
        return 0
    # Progress only on a terminal: elsewhere stderr keeps to the problems, one line each.
    line, began = StatusLine(tty_only=True), time.monotonic()

    def progress(seen: dict[str, dict[str, Any]]) -> None:
        line.show(_progress(seen, time.monotonic() - began))

    try:
        jobs = client.wait(started, timeout=args.timeout, on_poll=progress)
    finally:
        line.close()
    code = 0
    for job_id, job in jobs.items():
        if job["status"] == "succeeded":
            for path in client.download_results(job, Path(args.out) / job_id):
                print(path)
        elif job["status"] == "failed":
            error = job.get("error") or {}
            print(
                f"backdrop generate: job {job_id} failed: "
                f"{error.get('code', 'unknown')}: {error.get('message', '')}",
                file=sys.stderr,
            )
            code = api.FAILED
        else:
            print(
                f"backdrop generate: job {job_id} still {job['status']} after {args.timeout:g} s",
                file=sys.stderr,
            )
            code = api.FAILED
    return code


def _progress(jobs: dict[str, dict[str, Any]], seconds: float) -> str:
    if len(jobs) == 1:
        ((job_id, job),) = jobs.items()
        return f"job {job_id}: {job['status']} ({seconds:.0f} s)"
    counts: dict[str, int] = {}
    for job in jobs.values():
        counts[job["status"]] = counts.get(job["status"], 0) + 1
    states = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    return f"{len(jobs)} jobs: {states} ({seconds:.0f} s)"


def _jobs(client: api.Client, args: argparse.Namespace) -> int:
    header = ("id", "status", "trigger", "provider", "created", "images", "error")
    _print_table(
        header,
        [
            (
                str(job["id"]),
                str(job["status"]),
                str(job.get("trigger", "-")),
                str(job.get("provider") or "-"),
                str(job.get("created_at", "-"))[:19].replace("T", " "),
                str(len(job.get("results") or [])),
                str((job.get("error") or {}).get("code", "-")),
            )
            for job in client.jobs(status=args.status, limit=args.limit)
        ],
    )
    return 0


def _print_table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip())


def _cancel(client: api.Client, args: argparse.Namespace) -> int:
    job = client.cancel_generation(args.job_id)
    print(f"{job['id']} {job['status']}: {(job.get('error') or {}).get('message', '')}")
    return 0


# Batches.


def _batch_start(client: api.Client, args: argparse.Namespace) -> int:
    # A manifest is checked before anything is uploaded or started.
    source: str | api.Manifest = (
        args.prefix if args.prefix is not None else api.Manifest.read(args.manifest)
    )
    options: dict[str, Any] = {
        name: value
        for name in ("prompt", "negative_prompt", "count", "format", "provider", "seed")
        if (value := getattr(args, name)) is not None
    }
    if args.metadata:
        options["metadata"] = dict(args.metadata)
    options |= _budget(args)
    if args.dry_run:
        for line in quote_lines(client.quote_batch(source, options)):
            print(line)
        return 0
    batch = client.start_batch(source, options, idempotency_key=args.idempotency_key)
    # Printed at once: a script reads the id while the watch goes on.
    print(batch["id"], flush=True)
    return _follow(client, batch["id"], args) if args.watch else 0


def _batch_watch(client: api.Client, args: argparse.Namespace) -> int:
    return _follow(client, args.batch_id, args)


def _batch_cancel(client: api.Client, args: argparse.Namespace) -> int:
    batch = client.cancel_batch(args.batch_id)
    if batch["status"] == "running":
        print(f"{batch['id']} canceling: no new item starts; jobs already started finish")
    else:
        print(f"{batch['id']} {batch['status']}")
    return 0


def _batch_retry(client: api.Client, args: argparse.Namespace) -> int:
    batch = client.retry_batch(args.batch_id, _budget(args) or None)
    print(batch["id"], flush=True)
    return _follow(client, batch["id"], args) if args.watch else 0


def _batch_list(client: api.Client, args: argparse.Namespace) -> int:
    header = ("id", "status", "source", "items", "succeeded", "failed", "skipped", "started")
    rows = []
    for batch in client.batches(limit=args.limit):
        counts, source = batch.get("counts") or {}, batch.get("source") or {}
        rows.append(
            (
                str(batch["id"]),
                str(batch["status"]),
                str(
                    source.get("prefix")
                    or source.get("manifest_key")
                    or f"retry of {source.get('retry_of')}"
                ),
                count_text(counts.get("total")),
                count_text(counts.get("succeeded")),
                count_text(counts.get("failed")),
                count_text(counts.get("skipped")),
                str(batch.get("started_at", "-"))[:19].replace("T", " "),
            )
        )
    _print_table(header, rows)
    return 0


def _usage(client: api.Client, args: argparse.Namespace) -> int:
    report = client.usage(start=args.start, end=args.end)
    header = ("day", "provider", "jobs", "succeeded", "images", "units", "estimated $")
    rows = [
        (
            str(day["date"]),
            str(day["provider"]),
            str(day["jobs"]),
            str(day["succeeded"]),
            str(day["images"]),
            f"{day['units']:g} {day['unit']}".strip(),
            f"{day['estimated_usd']:.2f}",
        )
        for day in report["days"]
    ]
    totals = report["totals"]
    print(f"{report['from']} to {report['to']}")
    _print_table(header, rows)
    print(
        f"total: {totals['jobs']} jobs, {totals['succeeded']} succeeded, {totals['images']} "
        f"images, ${totals['estimated_usd']:.2f} estimated"
    )
    return 0


def _follow(client: api.Client, batch_id: str, args: argparse.Namespace) -> int:
    """`batch watch`: the progress until the end, the summary on stdout, what went wrong
    on stderr; 0 only if every item succeeded (or had already)."""
    try:
        batch = watch_batch(client, batch_id, interval=args.interval, timeout=args.timeout)
    except KeyboardInterrupt:
        print(
            f"{_name(args)}: stopped watching; batch {batch_id} goes on "
            f"(`backdrop batch watch {batch_id}` to follow it again)",
            file=sys.stderr,
        )
        return 130
    for line in batch_summary(batch):
        print(line)
    if batch.get("report_url"):
        where = batch["report_url"]
        if args.report is not None:
            where = str(client.download(batch["report_url"], args.report))
        print(f"  report: {where}")
    problems = batch_problems(batch)
    for problem in problems:
        print(f"{_name(args)}: {problem}", file=sys.stderr)
    return api.FAILED if problems else 0


if __name__ == "__main__":
    sys.exit(main())
