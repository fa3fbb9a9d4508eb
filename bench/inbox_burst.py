"""Drop a burst of images into the inbox of a local stack, some notifications repeated,
and print what happened: wall time, jobs, provider submissions, dead letters.

    .venv/bin/python bench/inbox_burst.py [--images 50] [--duplicates 5] [--count 1]

The stack runs on loopback with the provider emulator (nothing leaves the machine). The
figures are printed, not judged: tests/e2e/test_inbox_burst.py asserts on the same run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from backdrop_local import burst
from backdrop_local.emulator import EmulatorSettings
from backdrop_local.stack import LocalStack, StackOptions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=50, help="images uploaded at once")
    parser.add_argument(
        "--duplicates", type=int, help="notifications sent twice (default: 10%% of the images)"
    )
    parser.add_argument("--count", type=int, default=1, help="backgrounds per image")
    parser.add_argument("--provider", choices=["picsart", "photoroom"], default="picsart")
    parser.add_argument("--processing-seconds", default="1", help="emulated Picsart job time")
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args(argv)
    duplicates = args.images // 10 if args.duplicates is None else args.duplicates

    options = StackOptions(
        api_port=0,
        echo=False,
        parameters={"PollFirstWaitSeconds": "1", "PollIntervalSeconds": "1"},
        emulator=EmulatorSettings.from_env().merged(
            {"processing_seconds": args.processing_seconds}
        ),
    )
    stack = LocalStack(options)
    try:
        ready = stack.start()
        figures = burst.run(
            ready,
            count=args.images,
            duplicates=duplicates,
            metadata={"count": str(args.count), "provider": args.provider},
            timeout=args.timeout,
        )
    finally:
        stack.stop()
    report = {"images": args.images, "repeated_notifications": duplicates}
    report |= dataclasses.asdict(figures)
    report["seconds"] = round(figures.seconds, 2)
    report["images_per_second"] = round(args.images / figures.seconds, 2)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
