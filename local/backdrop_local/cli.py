"""The `backdrop` command: `local` (the stack on one machine), `demo`, `emulator`, and a
client of any stack's API: `generate` (backgrounds for photos) and `jobs` (a table of jobs)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from backdrop.providers import registry
from backdrop_local import client as api
from backdrop_local.emulator import EmulatorSettings
from backdrop_local.status_line import StatusLine


def _pairs(values: list[str]) -> dict[str, str]:
    pairs = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {item!r}")
        pairs[key] = value
    return pairs


def _stack_arguments(parser: argparse.ArgumentParser, *, api_port: int) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (loopback)")
    parser.add_argument("--port", type=int, default=api_port, help="API port (0 picks a free one)")
    parser.add_argument("--aws-port", type=int, default=0, help="embedded AWS port (0: free)")
    parser.add_argument("--emulator-port", type=int, default=0, help="emulator port (0: free)")
    parser.add_argument(
        "--provider",
        action="append",
        default=[],
        choices=registry.names(),
        help="use this provider's real API, with the key in PICSART_API_KEY or "
        "PHOTOROOM_API_KEY (repeatable); the others stay emulated",
    )
    parser.add_argument("--api-key", help="API key to require (default: a random one, printed)")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a template.yaml parameter, e.g. --param DefaultCount=3",
    )
    parser.add_argument(
        "--emulate",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="emulator setting, e.g. --emulate fault_429=0.2 (also BACKDROP_EMULATOR_<NAME>)",
    )


def _options(args: argparse.Namespace, events_file: Path | None) -> Any:
    from backdrop_local.stack import StackOptions

    emulator = EmulatorSettings.from_env().merged(_pairs(args.emulate))
    return StackOptions(
        host=args.host,
        api_port=args.port,
        aws_port=args.aws_port,
        emulator_port=args.emulator_port,
        real_providers=tuple(args.provider),
        api_key=args.api_key,
        parameters=_pairs(args.param),
        emulator=emulator,
        events_file=events_file,
    )


def _wait_for_interrupt() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


def run_local(args: argparse.Namespace) -> int:
    from backdrop_local.stack import LocalStack

    stack = LocalStack(_options(args, Path(args.events_file) if args.events_file else None))
    ready_file = Path(args.ready_file)
    written = ""
    try:
        ready = stack.start()
        ready_file.parent.mkdir(parents=True, exist_ok=True)
        written = json.dumps(ready, indent=2) + "\n"
        ready_file.write_text(written)
        print(_banner(ready, ready_file), flush=True)
        _wait_for_interrupt()
    finally:
        stack.stop()
        # A stale file would send clients to a stack that is gone (unless another took it).
        if written and ready_file.exists() and ready_file.read_text() == written:
            ready_file.unlink()
    print("stopped", flush=True)
    return 0


def _banner(ready: dict[str, Any], ready_file: Path) -> str:
    return "\n".join(
        [
            f"backdrop local stack is up (written to {ready_file} for `backdrop generate`)",
            f"  API          {ready['api_url']}   (header x-api-key: {ready['api_key']})",
            f"  AWS endpoint {ready['aws_endpoint_url']}   (region {ready['region']})",
            f"  input bucket {ready['input_bucket']}   (upload under inbox/)",
            f"  results      {ready['results_bucket']}",
            f"  provider     {ready['provider']}"
            + (f" at {ready['emulator_url']}" if ready["emulator_url"] else ""),
            "  events       printed here"
            + (f" and appended to {ready['events_file']}" if ready["events_file"] else ""),
            "Ctrl-C stops it.",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="backdrop", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    local = commands.add_parser("local", help="run the whole stack on this machine")
    _stack_arguments(local, api_port=3000)
    local.add_argument(
        "--ready-file",
        default=str(api.DEFAULT_READY_FILE),
        help="write the stack's URLs, key and names here, as JSON, for clients "
        "(default: %(default)s; removed when the stack stops)",
    )
    local.add_argument("--events-file", default="local-events.jsonl", help="JSON-lines event log")
    local.set_defaults(run=run_local)

    demo = commands.add_parser("demo", help="generate backgrounds for the bundled samples")
    _stack_arguments(demo, api_port=0)
    demo.add_argument("--output", default="demo-output", help="where results and index.html go")
    demo.set_defaults(run=_run_demo)

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

    openapi = commands.add_parser("openapi", help="print the API's OpenAPI document")
    openapi.set_defaults(run=_print_openapi)

    emulator = commands.add_parser(
        "emulator", help="run only the provider emulator", add_help=False
    )
    emulator.set_defaults(run=None)

    args, rest = parser.parse_known_args(argv)
    if args.command == "emulator":
        from backdrop_local.emulator.cli import main as emulator_main

        return emulator_main(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return int(args.run(args))


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


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
            print(f"backdrop {args.command}: {error}", file=sys.stderr)
            return error.exit_code
        except KeyboardInterrupt:
            print(f"backdrop {args.command}: interrupted", file=sys.stderr)
            return 130

    return run


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
    rows = [
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
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip())
    return 0


def _cancel(client: api.Client, args: argparse.Namespace) -> int:
    job = client.cancel_generation(args.job_id)
    print(f"{job['id']} {job['status']}: {(job.get('error') or {}).get('message', '')}")
    return 0


def _print_openapi(args: argparse.Namespace) -> int:
    from backdrop.config import Settings

    # The document comes from the code alone; placeholders let the API modules load.
    for name, field in Settings.model_fields.items():
        if field.is_required():
            os.environ.setdefault(name.upper(), "unset")
    from backdrop.api.app import openapi_document

    print(json.dumps(openapi_document(), indent=2))
    return 0


def _run_demo(args: argparse.Namespace) -> int:
    from backdrop_local.demo import run_demo

    return run_demo(_options(args, None), Path(args.output))


if __name__ == "__main__":
    sys.exit(main())
