"""Time the import of every Lambda handler module in a SAM template, against `import boto3`.

    .venv/bin/python bench/cold_start.py [--template template.yaml] [--runs 7] [--top 0]
                                         [--baseline OTHER/template.yaml] [--python PATH]
                                         [--json]

Each measurement is a fresh interpreter that imports one module and prints how long
`importlib.import_module` took, with the handler's container (its settings read, its
collaborators made) where it builds one on first use: what Lambda pays on a cold start
before the first event's own work.
`import boto3` in the same interpreter is the floor every function pays anyway; the first
rows are the libraries' floors (bench/cold_start_floor.py: boto3, pydantic's first model and
the Powertools logger; then with Powertools' batch processing, and with its validated REST
resolver), below which no function of ours can go. The code is
imported from the function's CodeUri (PYTHONPATH), the dependencies from the interpreter's
site-packages; the environment is the template's (Globals merged with the function's), with
`!Ref` to a template parameter resolved to its Default and any other intrinsic replaced by a
placeholder. One warm-up round is run and discarded, then `--runs` rounds, each timing every
target once, so machine noise falls on all of them alike. The figures are printed, not judged.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PLACEHOLDER = "local-placeholder"
FUNCTION_TYPE = "AWS::Serverless::Function"
MARKER = "--cold-start-bench: timed import starts--"

# argv[1] is the module, argv[2] (may be empty) the attribute the handler names. A handler
# that builds its container on first use (backdrop.runtime.Function) builds it inside the
# timing: a cold start pays it before the first event. A missing attribute is a failure
# like an import error.
CHILD_CODE = f"""\
import importlib, sys, time
sys.stderr.write({MARKER!r} + "\\n"); sys.stderr.flush()
t = time.perf_counter()
module = importlib.import_module(sys.argv[1])
handler = getattr(module, sys.argv[2]) if sys.argv[2] else None
if callable(getattr(handler, "container", None)):
    handler.container()
elapsed = time.perf_counter() - t
print(elapsed)
print(getattr(module, "__file__", None) or "")
"""


@dataclass(frozen=True)
class Ref:
    """`!Ref Name` as read from the template (resolved later against its Parameters)."""

    name: str


class CfnLoader(yaml.SafeLoader):
    """SafeLoader accepting CloudFormation short tags: `!Ref X` becomes a Ref, any other tag
    (!GetAtt, !Sub, !Join, ...) the placeholder string."""


def _ref(loader: yaml.SafeLoader, node: yaml.Node) -> Ref | str:
    if isinstance(node, yaml.ScalarNode):
        return Ref(str(loader.construct_scalar(node)))
    return PLACEHOLDER


def _other_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> str:
    return PLACEHOLDER


CfnLoader.add_constructor("!Ref", _ref)
CfnLoader.add_multi_constructor("!", _other_tag)


@dataclass
class Function:
    logical_id: str
    handler: str
    code_dir: Path
    env: dict[str, str]

    @property
    def module(self) -> str:
        return self.handler.rpartition(".")[0] or self.handler

    @property
    def attr(self) -> str:
        return self.handler.rpartition(".")[2] if "." in self.handler else ""


@dataclass
class Result:
    label: str
    times: list[float] = field(default_factory=list)
    error: str | None = None
    imported_from: str = ""
    top: list[tuple[str, float]] = field(default_factory=list)

    @property
    def median(self) -> float | None:
        return statistics.median(self.times) if self.times and self.error is None else None


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _env_value(value: Any, parameters: dict[str, Any]) -> str:
    if isinstance(value, Ref):
        default = _mapping(parameters.get(value.name)).get("Default")
        value = default if default is not None else PLACEHOLDER
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return PLACEHOLDER
    return str(value)


def load_functions(template_path: Path) -> list[Function]:
    with template_path.open(encoding="utf-8") as stream:
        template = _mapping(yaml.load(stream, Loader=CfnLoader))  # noqa: S506 (a SafeLoader)
    parameters = _mapping(template.get("Parameters"))
    defaults = _mapping(_mapping(template.get("Globals")).get("Function"))
    functions = []
    for logical_id, resource in _mapping(template.get("Resources")).items():
        if _mapping(resource).get("Type") != FUNCTION_TYPE:
            continue
        props = _mapping(resource.get("Properties"))
        handler = props.get("Handler", defaults.get("Handler"))
        code_uri = props.get("CodeUri", defaults.get("CodeUri"))
        if not isinstance(handler, str) or not isinstance(code_uri, str):
            raise SystemExit(f"{logical_id}: needs a Handler and a local CodeUri")
        variables = {
            **_mapping(_mapping(defaults.get("Environment")).get("Variables")),
            **_mapping(_mapping(props.get("Environment")).get("Variables")),
        }
        env = {str(name): _env_value(value, parameters) for name, value in variables.items()}
        code_dir = (template_path.parent / code_uri).resolve()
        functions.append(Function(str(logical_id), handler, code_dir, env))
    return functions


def base_env() -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        # Lambda has no ~/.aws: keep a developer's profile files out of client creation.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }


@dataclass
class Target:
    label: str
    module: str
    attr: str
    env: dict[str, str]
    result: Result


# The libraries' floors: what a function of ours cannot go below (bench/cold_start_floor.py).
FLOORS = {
    "": "floor: boto3, pydantic, Powertools logger",
    "sqs": "floor + Powertools batch (SQS functions)",
    "api": "floor + validated REST resolver (API)",
}


def make_targets(functions: list[Function]) -> tuple[Target, list[Target]]:
    floor = Target("boto3", "boto3", "", base_env(), Result("boto3"))
    here = str(Path(__file__).resolve().parent)
    targets = [
        Target(
            label,
            "cold_start_floor",
            "",
            {**base_env(), "PYTHONPATH": here, "COLD_START_FLOOR": kind},
            Result(label),
        )
        for kind, label in FLOORS.items()
    ]
    for function in functions:
        env = {
            **base_env(),
            **function.env,
            "AWS_LAMBDA_FUNCTION_NAME": function.logical_id,
            "PYTHONPATH": str(function.code_dir),
        }
        result = Result(function.handler)
        targets.append(Target(function.handler, function.module, function.attr, env, result))
    return floor, targets


def run_child(python: str, target: Target, extra: list[str]) -> subprocess.CompletedProcess[str]:
    command = [python, *extra, "-c", CHILD_CODE, target.module, target.attr]
    return subprocess.run(  # noqa: S603 (our own interpreter and code)
        command, env=target.env, capture_output=True, text=True, check=False
    )


def error_line(stderr: str, returncode: int) -> str:
    """The exception line of the child's traceback (`Type: message`), else its last line."""
    lines = [line for line in stderr.splitlines() if line.strip() and line != MARKER]
    for line in reversed(lines):
        name, colon, _ = line.partition(":")
        if colon and name.replace(".", "").replace("_", "").isalnum() and name[0].isalpha():
            return line.strip()
    return lines[-1].strip() if lines else f"exit status {returncode}"


def measure(python: str, target: Target, *, record: bool) -> None:
    result = target.result
    if result.error is not None:
        return
    proc = run_child(python, target, [])
    out = proc.stdout.split("\n")
    if proc.returncode != 0 or not out[0].strip():
        result.error = error_line(proc.stderr, proc.returncode)
        return
    result.imported_from = out[1] if len(out) > 1 else ""
    if record:
        result.times.append(float(out[0]))


def parse_importtime(stderr: str, k: int) -> list[tuple[str, float]]:
    """The k largest cumulative entries at nesting level 1 or 2 after the marker, in seconds.

    `importlib.import_module` itself is not logged by -X importtime (only `import` statements
    are), so level 1 is what the handler module (or its packages' __init__) imports directly,
    level 2 what those import.
    """
    entries: list[tuple[str, float]] = []
    started = False
    for line in stderr.splitlines():
        if line == MARKER:
            started = True
            continue
        if not started or not line.startswith("import time:"):
            continue
        parts = line[len("import time:") :].split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2][1:] if parts[2].startswith(" ") else parts[2]
        level = (len(name) - len(name.lstrip(" "))) // 2 + 1
        if level <= 2:
            entries.append((name.strip(), int(parts[1]) / 1e6))
    entries.sort(key=lambda entry: entry[1], reverse=True)
    return entries[:k]


def python_version(python: str) -> str:
    proc = subprocess.run(  # noqa: S603 (our own interpreter and code)
        [python, "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout.strip()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--template", type=Path, default=Path(__file__).resolve().parents[1] / "template.yaml"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another checkout's template.yaml: its handlers timed in the same rounds, "
        "shown beside (e.g. a worktree of the last release)",
    )
    parser.add_argument("--runs", type=int, default=7, help="timed rounds (median of these)")
    parser.add_argument("--python", default=sys.executable, help="interpreter to measure with")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--top", type=int, default=0, help="show each handler's K slowest imports (-X importtime)"
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def ratio(value: float | None, floor: float | None) -> float | None:
    return value / floor if value is not None and floor else None


def report_json(
    args: argparse.Namespace,
    version: str,
    floor: Result,
    results: list[Result],
    baseline: dict[str, Result],
) -> str:
    handlers = [
        {
            "handler": result.label,
            "median_s": result.median,
            "ratio_to_boto3": ratio(result.median, floor.median),
            **(
                {"baseline_median_s": baseline[result.label].median}
                if result.label in baseline
                else {}
            ),
            "runs_s": result.times,
            "imported_from": result.imported_from,
            "error": result.error,
            **({"top": [[name, secs] for name, secs in result.top]} if args.top > 0 else {}),
        }
        for result in results
    ]
    document = {
        "template": str(args.template),
        "python": version,
        "runs": args.runs,
        "boto3_median_s": floor.median,
        "boto3_error": floor.error,
        "handlers": handlers,
    }
    return json.dumps(document, indent=2)


def report_table(
    args: argparse.Namespace,
    version: str,
    floor: Result,
    results: list[Result],
    baseline: dict[str, Result],
) -> str:
    boto3 = f"{floor.median:.4f} s" if floor.median is not None else f"ERROR {floor.error}"
    lines = [f"import boto3: {boto3} median | python {version} | runs {args.runs}"]
    width = max([len("handler"), *(len(result.label) for result in results)])
    header = f"{'handler':<{width}}  {'median_s':>9}  {'ratio_to_boto3':>14}"
    lines.append(header + (f"  {'baseline_ratio':>14}" if baseline else ""))
    for result in results:
        if result.median is None:
            lines.append(f"{result.label:<{width}}  ERROR {result.error}")
            continue
        times = ratio(result.median, floor.median)
        shown = f"{times:.2f}" if times is not None else "-"
        line = f"{result.label:<{width}}  {result.median:>9.4f}  {shown:>14}"
        if baseline:
            before = baseline.get(result.label)
            was = ratio(before.median, floor.median) if before is not None else None
            line += f"  {was:>14.2f}" if was is not None else f"  {'-':>14}"
        lines.append(line)
    if args.top > 0:
        for result in results:
            if result.top:
                lines.append(f"\n{result.label}: top {args.top} cumulative (-X importtime, 1 run)")
                lines.extend(f"  {secs:>8.4f} s  {name}" for name, secs in result.top)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    template: Path = args.template.resolve()
    floor, targets = make_targets(load_functions(template))
    version = python_version(args.python)
    compared: list[Target] = []
    if args.baseline is not None:
        _, theirs = make_targets(load_functions(args.baseline.resolve()))
        compared = [target for target in theirs if target.label not in FLOORS.values()]

    everything = [floor, *targets, *compared]
    for round_number in range(args.runs + 1):  # round 0 warms the caches and is discarded
        for target in everything:
            measure(args.python, target, record=round_number > 0)

    for target in targets:
        result = target.result
        code_dir = target.env["PYTHONPATH"]
        imported = result.imported_from
        if imported and not Path(imported).resolve().is_relative_to(code_dir):
            print(f"warning: {result.label} was imported from {imported}", file=sys.stderr)
        if args.top > 0 and result.error is None:
            proc = run_child(args.python, target, ["-X", "importtime"])
            result.top = parse_importtime(proc.stderr, args.top)

    results = [target.result for target in targets]
    baseline = {target.label: target.result for target in compared}
    report = report_json if args.json else report_table
    print(report(args, version, floor.result, results, baseline))
    failed = floor.result.error is not None or any(result.error for result in results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
