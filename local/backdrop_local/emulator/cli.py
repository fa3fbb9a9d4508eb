"""Command line: run the provider emulator in the foreground until Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from backdrop_local.emulator.server import ProviderEmulator
from backdrop_local.emulator.settings import ENV_PREFIX, EmulatorSettings

DEFAULT_PORT = 4010

# Raw text: argparse would otherwise run the route table together into one paragraph.
_ROUTES = """\
control routes, under http://HOST:PORT/_emulator/:
  GET  stats | settings | credits | script   figures, settings, balances, scripts
  PUT  settings    partial JSON; a new "credits" refills both balances
  POST credits     {"provider": "picsart", "add": 100} tops up one account,
                   {"provider": "photoroom", "set": 0} sets it; no "provider": both
  POST script      forced next answers, e.g. {"picsart_submit": [429, 503]}
  POST reset       counters, jobs, scripts, limits and balances back to the start
  e.g. curl -X POST http://127.0.0.1:4010/_emulator/credits \\
         -H 'content-type: application/json' -d '{"provider": "picsart", "add": 100}'
balances as the providers answer them: GET /picsart/v1/balance, GET /photoroom/v2/account
"""


def _boolean(text: str) -> bool:
    # argparse's type=bool would take any non-empty text, "false" included, as True.
    words = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
    try:
        return words[text.strip().lower()]
    except KeyError:
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}") from None


# flag -> (settings field, argparse type, metavar); help texts come from the settings model.
_FLAGS: dict[str, tuple[str, Callable[[str], Any], str]] = {
    "--processing-seconds": ("processing_seconds", str, "SECONDS"),
    "--honour-prefer-wait": ("honour_prefer_wait", _boolean, "BOOL"),
    "--rate-limit": ("rate_limit_per_minute", int, "PER_MINUTE"),
    "--fault-429": ("fault_429", float, "SHARE"),
    "--fault-500": ("fault_500", float, "SHARE"),
    "--fault-503": ("fault_503", float, "SHARE"),
    "--fault-slow": ("fault_slow", float, "SHARE"),
    "--slow-seconds": ("slow_seconds", float, "SECONDS"),
    "--fault-stuck": ("fault_stuck", float, "SHARE"),
    "--fault-error": ("fault_error", float, "SHARE"),
    "--fault-expired": ("fault_expired", float, "SHARE"),
    "--seed": ("seed", int, "INT"),
    "--credits": ("credits", int, "INT"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="backdrop emulator",
        description=(
            "Serve stand-ins for the Picsart and Photoroom APIs on this machine.\n"
            f"Settings not given as flags come from {ENV_PREFIX}<FIELD> variables,\n"
            "then the defaults."
        ),
        epilog=_ROUTES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port, 0 for any free one ({DEFAULT_PORT})"
    )
    fields = EmulatorSettings.model_fields
    for flag, (name, kind, metavar) in _FLAGS.items():
        parser.add_argument(
            flag, dest=name, type=kind, metavar=metavar, help=fields[name].description
        )
    parser.add_argument(
        "--api-key",
        dest="api_keys",
        action="append",
        metavar="KEY",
        help="accept only this key (repeat for more); without it any non-empty key is accepted",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    overrides: dict[str, Any] = {
        name: value
        for name in (*(flag[0] for flag in _FLAGS.values()), "api_keys")
        if (value := getattr(args, name)) is not None
    }
    try:
        settings = EmulatorSettings.from_env().merged(overrides)
    except ValidationError as error:
        print(f"invalid emulator settings:\n{error}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

    emulator = ProviderEmulator(settings, host=args.host, port=args.port)
    try:
        emulator.start()
    except OSError as error:
        print(f"cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1
    # Ctrl-C and `kill` stop it, wherever they land, and even when started where SIGINT is
    # ignored (a background job of a script: Python then raises no KeyboardInterrupt).
    finished = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: finished.set())
    try:
        print(f"Picsart   {emulator.picsart_base_url}")
        print(f"Photoroom {emulator.photoroom_base_url}")
        print(f"Control   {emulator.base_url}/_emulator/(stats|settings|credits|script|reset)")
        print("Ctrl-C to stop.", flush=True)
        finished.wait()
    except KeyboardInterrupt:  # run off the main thread (a test), where no handler is set
        pass
    finally:
        emulator.stop()
    print("emulator stopped", flush=True)
    return 0
