"""The `backdrop` command: `local` (the stack on one machine), `demo`, `emulator`."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from backdrop.providers import registry
from backdrop_local.emulator import EmulatorSettings


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
    try:
        ready = stack.start()
        if args.ready_file:
            Path(args.ready_file).write_text(json.dumps(ready, indent=2) + "\n")
        print(_banner(ready), flush=True)
        _wait_for_interrupt()
    finally:
        stack.stop()
    print("stopped", flush=True)
    return 0


def _banner(ready: dict[str, Any]) -> str:
    return "\n".join(
        [
            "backdrop local stack is up",
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
    local.add_argument("--ready-file", help="write the stack's URLs, key and names here (JSON)")
    local.add_argument("--events-file", default="local-events.jsonl", help="JSON-lines event log")
    local.set_defaults(run=run_local)

    demo = commands.add_parser("demo", help="generate backgrounds for the bundled samples")
    _stack_arguments(demo, api_port=0)
    demo.add_argument("--output", default="demo-output", help="where results and index.html go")
    demo.set_defaults(run=_run_demo)

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
