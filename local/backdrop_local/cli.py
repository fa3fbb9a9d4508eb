"""The `backdrop` command: `local` (the stack on one machine), `demo`, `emulator`,
`preflight` (what would fail a deploy, checked before it), `provider` (pauses of the
providers: status, resume), and a client of any stack's API:
`generate` (backgrounds for photos), `jobs` (a table of jobs) and `batch` (start one over a
folder or a manifest, watch it, cancel, retry, list). The client commands are
backdrop_client.cli's, which installs on its own (client/)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from backdrop_client import cli as client_cli
from backdrop_client.client import DEFAULT_READY_FILE
from backdrop_local import provider_cli

# Only what the client commands need is imported here: the local stack's own modules
# (the emulator, moto, the service's code) are imported by the commands that run them.


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
        choices=_ProviderNames(),
        metavar="PROVIDER",
        help="use this provider's real API (%(choices)s), with the key in PICSART_API_KEY "
        "or PHOTOROOM_API_KEY (repeatable); the others stay emulated",
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


class _ProviderNames:
    """The registry's provider names, as argparse choices, read only when a local
    command's --provider is checked or its help shown (not for the client commands)."""

    def __contains__(self, name: object) -> bool:
        return name in self._names()

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    @staticmethod
    def _names() -> tuple[str, ...]:
        from backdrop.providers import registry

        return registry.names()


def _options(args: argparse.Namespace, events_file: Path | None) -> Any:
    from backdrop_local.emulator import EmulatorSettings
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
            f"  published    {ready['published_bucket']}   (approved images, under published/)",
            f"  console      {ready['console_url']}   (review, ReviewMode={ready['review_mode']})",
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
        default=str(DEFAULT_READY_FILE),
        help="write the stack's URLs, key and names here, as JSON, for clients "
        "(default: %(default)s; removed when the stack stops)",
    )
    local.add_argument("--events-file", default="local-events.jsonl", help="JSON-lines event log")
    local.set_defaults(run=run_local)

    demo = commands.add_parser("demo", help="generate backgrounds for the bundled samples")
    _stack_arguments(demo, api_port=0)
    demo.add_argument("--output", default="demo-output", help="where results and index.html go")
    demo.set_defaults(run=_run_demo)

    client_cli.add_commands(commands)

    _preflight_parser(commands)
    provider_cli.add_commands(commands)

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


def _preflight_parser(commands: Any) -> None:
    preflight = commands.add_parser(
        "preflight",
        help="check a deploy before `sam deploy` runs (`make deploy` does first)",
        description="Check what would otherwise fail `sam deploy` half-way and roll the stack "
        "back: the stack name and region, the parameter values (template.yaml's defaults, the "
        "deployed stack's, samconfig.toml's, then --parameter-overrides), each function's "
        "environment, the account's Lambda concurrency and API Gateway settings, and the "
        "build. Read-only. Exit codes: 0 every check passed, 1 one failed, 2 bad usage.",
    )
    preflight.add_argument(
        "--config-env",
        default="default",
        metavar="ENV",
        help="samconfig.toml's environment: its stack_name, region and parameter_overrides "
        "(%(default)s; dev)",
    )
    preflight.add_argument(
        "--config-file",
        type=Path,
        metavar="FILE",
        help="the SAM config file (default: the project's samconfig.toml)",
    )
    preflight.add_argument("--region", help="the AWS region (default: samconfig's, else yours)")
    preflight.add_argument("--profile", help="the AWS profile (default: samconfig's, else yours)")
    preflight.add_argument("--stack-name", help="the stack (default: samconfig's stack_name)")
    preflight.add_argument(
        "--parameter-overrides",
        nargs="+",
        action="extend",
        default=[],
        metavar="NAME=VALUE",
        help="template parameters on top of samconfig.toml's (`sam deploy "
        "--parameter-overrides` replaces samconfig's instead: put lasting ones there)",
    )
    preflight.add_argument(
        "--build-dir", type=Path, metavar="DIR", help="sam build's output (default: .aws-sam/build)"
    )
    preflight.set_defaults(run=_run_preflight)


def _run_preflight(args: argparse.Namespace) -> int:
    from backdrop_local import preflight

    options = preflight.Options(
        config_env=args.config_env,
        region=args.region,
        profile=args.profile,
        stack_name=args.stack_name,
        parameter_overrides=tuple(args.parameter_overrides),
        build_dir=args.build_dir or preflight.DEFAULT_BUILD_DIR,
        config_file=args.config_file or preflight.SAMCONFIG_PATH,
    )
    return preflight.report(preflight.run(options), sys.stdout)


def _print_openapi(args: argparse.Namespace) -> int:
    from backdrop.api.app import openapi_document  # from the code alone: no settings

    print(json.dumps(openapi_document(), indent=2))
    return 0


def _run_demo(args: argparse.Namespace) -> int:
    from backdrop_local.demo import run_demo

    return run_demo(_options(args, None), Path(args.output))


if __name__ == "__main__":
    sys.exit(main())
