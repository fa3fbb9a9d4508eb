"""`backdrop preflight`: what would otherwise fail `sam deploy` half-way and roll the stack
back, checked before CloudFormation starts (`make deploy` runs it between `sam build` and
`sam deploy`). Every check runs; each failure says what is wrong and how to fix it.

The parameter values are those `sam deploy` sends: template.yaml's defaults, then, for a
stack that exists, the values it was deployed with (SAM passes UsePreviousValue for every
parameter not overridden), then samconfig.toml's parameter_overrides, then
--parameter-overrides. The pure checks (parameters, build) need no AWS; the others make
read-only calls to the account.
"""

from __future__ import annotations

import difflib
import importlib
import json
import re
import shlex
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel

from backdrop_local.template import PROJECT_ROOT, TEMPLATE_PATH, Template

SAMCONFIG_PATH = PROJECT_ROOT / "samconfig.toml"
DEFAULT_BUILD_DIR = Path(".aws-sam/build")
# Lambda's quota code for "Concurrent executions" (Service Quotas).
CONCURRENCY_QUOTA_CODE = "L-B99A9384"
# AWS keeps this much of an account's concurrency unreserved (all of a quota below it).
MIN_UNRESERVED = 100
API_FUNCTION = "ApiFunction"
LAYER = "DependenciesLayer"
# What the layer must be built for: template.yaml's Runtime and Architectures.
RUNTIME_TAG, RUNTIME_PLATFORM, RUNTIME_NAME = "313", "aarch64-linux-gnu", "Python 3.13 on arm64"
ELF_AARCH64 = 183
ELF_MACHINES = {3: "x86", 40: "32-bit arm", 62: "x86_64", 183: "aarch64"}

Status = Literal["pass", "fail", "skip"]


@dataclass(frozen=True)
class Result:
    check: str
    status: Status
    summary: str
    # A failure's what-is-wrong and fix lines.
    details: tuple[str, ...] = ()


def passed(check: str, summary: str) -> Result:
    return Result(check, "pass", summary)


def failed(check: str, summary: str, *details: str) -> Result:
    return Result(check, "fail", summary, details)


def skipped(check: str, summary: str) -> Result:
    return Result(check, "skip", summary)


@dataclass(frozen=True)
class Options:
    config_env: str = "default"
    region: str | None = None
    profile: str | None = None
    stack_name: str | None = None
    # NAME=VALUE items (each may hold several, space-separated, as sam's option does).
    parameter_overrides: tuple[str, ...] = ()
    build_dir: Path = DEFAULT_BUILD_DIR
    config_file: Path = SAMCONFIG_PATH
    template_path: Path = TEMPLATE_PATH


# samconfig.toml and parameter overrides.


class ConfigError(Exception):
    """samconfig.toml (or an override) cannot be read as SAM would."""


@dataclass(frozen=True)
class SamConfig:
    stack_name: str | None = None
    region: str | None = None
    profile: str | None = None
    parameter_overrides: dict[str, str] = field(default_factory=dict)


def read_samconfig(path: Path, env: str) -> SamConfig:
    """`env`'s settings: its global parameters, then its deploy parameters on top (as SAM
    merges them)."""
    try:
        document = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path.name}: {exc}") from exc
    environment = document.get(env)
    if not isinstance(environment, dict):
        known = ", ".join(name for name, value in document.items() if isinstance(value, dict))
        raise ConfigError(f"{path.name} has no environment [{env}] (it has: {known or 'none'})")
    settings: dict[str, Any] = {}
    for command in ("global", "deploy"):
        settings.update(environment.get(command, {}).get("parameters", {}))
    overrides = settings.get("parameter_overrides", "")
    items = [overrides] if isinstance(overrides, str) else [str(item) for item in overrides]
    return SamConfig(
        stack_name=settings.get("stack_name"),
        region=settings.get("region"),
        profile=settings.get("profile"),
        parameter_overrides=parse_overrides(items),
    )


def parse_overrides(items: Iterable[str]) -> dict[str, str]:
    """`Name=Value Name2="a value"` (or ParameterKey=Name,ParameterValue=Value), as SAM
    reads parameter_overrides: quotes group a value and are dropped."""
    pairs: dict[str, str] = {}
    for item in items:
        try:
            tokens = shlex.split(item)
        except ValueError as exc:
            raise ConfigError(f"cannot read parameter overrides {item!r}: {exc}") from exc
        for token in tokens:
            long_form = re.fullmatch(r"ParameterKey=([^,]+),ParameterValue=(.*)", token, re.S)
            name, sep, value = token.partition("=")
            if long_form:
                name, value = long_form.groups()
            elif not sep or not name:
                raise ConfigError(f"expected Name=Value in parameter overrides, got {token!r}")
            pairs[name] = value
    return pairs


@dataclass(frozen=True)
class Layer:
    """Parameter values from one source, named for messages."""

    source: str
    values: Mapping[str, str]


def _text(value: Any) -> str:
    # YAML's true/false would print as Python's True/False; CloudFormation reads "true".
    return str(value).lower() if isinstance(value, bool) else str(value)


def effective_values(specs: Mapping[str, Any], layers: Sequence[Layer]) -> dict[str, str]:
    """Each parameter's value: its default, then each layer's in turn (unknown names are
    dropped, as sam deploy drops them)."""
    values = {name: _text(spec["Default"]) for name, spec in specs.items() if "Default" in spec}
    for layer in layers:
        values.update({name: value for name, value in layer.values.items() if name in specs})
    return values


# Parameters: the template's constraints (what CloudFormation refuses), and the values
# AWS or the functions refuse later.


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _shown(value: str) -> str:
    text = value if len(value) <= 80 else value[:77] + "..."
    return text if text and not re.search(r"[\s'\"]", text) else repr(text)


_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _number(value: str) -> float | None:
    return float(value) if _NUMBER.fullmatch(value) else None


def _bound(value: Any) -> str:
    number = float(value)
    return str(int(number)) if number.is_integer() else str(number)


def constraint_problems(
    name: str, spec: Mapping[str, Any], value: str, *, pattern: bool = True
) -> list[str]:
    """What CloudFormation would refuse in `value`, from the parameter's own Type,
    AllowedValues, MinValue/MaxValue, MinLength/MaxLength and AllowedPattern."""
    kind = spec.get("Type", "String")
    problems: list[str] = []
    allowed = [_text(option) for option in spec.get("AllowedValues", [])]
    if allowed and value not in allowed:
        number = _number(value)
        if kind != "Number" or number is None or number not in map(_number, allowed):
            problems.append(f"must be one of {', '.join(allowed)}")
    if kind == "Number":
        number = _number(value)
        low, high = spec.get("MinValue"), spec.get("MaxValue")
        if number is None:
            problems.append("must be a number")
        elif (low is not None and number < float(low)) or (
            high is not None and number > float(high)
        ):
            if low is not None and high is not None:
                problems.append(f"must be between {_bound(low)} and {_bound(high)}")
            elif low is not None:
                problems.append(f"must be at least {_bound(low)}")
            else:
                problems.append(f"must be at most {_bound(high)}")
    elif kind == "String":
        shortest, longest = spec.get("MinLength"), spec.get("MaxLength")
        if shortest is not None and len(value) < int(shortest):
            problems.append(f"must be at least {shortest} characters long")
        if longest is not None and len(value) > int(longest):
            problems.append(f"must be at most {longest} characters long (it has {len(value)})")
        regex = spec.get("AllowedPattern")
        # CloudFormation matches the whole value against the pattern.
        if pattern and regex is not None and not _full_match(str(regex), value):
            problems.append(f"must match the template's AllowedPattern {regex}")
    description = spec.get("ConstraintDescription")
    suffix = f" (accepted: {description})" if description else ""
    return [f"{name}={_shown(value)}: {problem}{suffix}" for problem in problems]


def _full_match(regex: str, value: str) -> bool:
    try:
        return re.fullmatch(regex, value) is not None
    except re.error:
        return True  # a Java-only pattern: CloudFormation will judge it


def _origin_problem(entry: str) -> str | None:
    if not entry:
        return "is empty (a stray comma?)"
    if entry == "*":
        return "must stand alone: * allows every origin, so give * or a list of origins"
    if "*" in entry:
        return "has a wildcard: list each origin in full, or give * alone"
    if re.search(r"\s", entry):
        return "has a space in it"
    scheme, sep, _ = entry.partition("://")
    if not sep:
        return f"has no scheme: write https://{entry.rstrip('/')}"
    if scheme not in ("https", "http"):
        return "must start with https:// or http://"
    parts = urlsplit(entry)
    try:
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        return "has a bad port"
    if not parts.hostname:
        return "has no host"
    if parts.username is not None or parts.password is not None:
        return "must not carry credentials"
    if parts.path == "/" and not parts.query and not parts.fragment:
        return f"ends with a slash: browsers send an origin without one ({entry.rstrip('/')})"
    if parts.path or parts.query or parts.fragment or entry.endswith(("?", "#")):
        return f"has a path: an origin is scheme://host[:port] only ({scheme}://{parts.netloc})"
    return None


def cors_problems(value: str, values: Mapping[str, str]) -> list[str]:
    """`*` alone, or origins as browsers send them in their Origin header."""
    if value == "*":
        return []
    problems = []
    # The template's pattern allows spaces after a comma only; the code strips them.
    for index, raw in enumerate(value.split(",")):
        entry = raw.lstrip() if index else raw
        problem = _origin_problem(entry)
        if problem is not None:
            problems.append(f"CorsAllowOrigins: {_shown(entry)} {problem}")
    if problems:
        problems.append(
            "  accepted: * alone, or comma-separated origins scheme://host[:port] (https or "
            "http, no path, no trailing slash, no wildcard), e.g. "
            "https://app.example.com,https://admin.example.com"
        )
    return problems


def _https_url_problems(name: str, example: str) -> Callable[[str, Mapping[str, str]], list[str]]:
    def check(value: str, values: Mapping[str, str]) -> list[str]:
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018  (raises on a bad port)
        except ValueError:
            parts = None
        if (
            parts is None
            or not value.startswith("https://")
            or not parts.hostname
            or re.search(r"\s", value)
        ):
            return [
                f"{name}={_shown(value)}: must be an https URL with a host, e.g. {example} "
                "(the provider's API key travels in its requests)"
            ]
        return []

    return check


def webhook_problems(value: str, values: Mapping[str, str]) -> list[str]:
    """The functions' own rule (every cold start refuses a bad subscriber), without DNS."""
    from backdrop import fetch_guard

    allow_private = values.get("AllowPrivateWebhookHosts") == "true"
    problems = []
    for url in (item.strip() for item in value.split(",")):
        if not url:
            continue
        reason = fetch_guard.webhook_url_refusal(url, allow_private=allow_private, resolve=False)
        if reason is not None:
            problems.append(f"WebhookUrls: {_shown(url)} {reason}")
    if problems:
        problems.append(
            "  accepted: empty, or comma-separated https URLs on public hosts, e.g. "
            "https://hooks.example.com/backdrop"
        )
    return problems


# Parameters whose values the template's constraints do not fully cover.
VALUE_CHECKS: dict[str, Callable[[str, Mapping[str, str]], list[str]]] = {
    "CorsAllowOrigins": cors_problems,
    "PicsartApiUrl": _https_url_problems("PicsartApiUrl", "https://genai-api.picsart.io/v1"),
    "PhotoroomApiUrl": _https_url_problems("PhotoroomApiUrl", "https://image-api.photoroom.com"),
    "WebhookUrls": webhook_problems,
}


def settings_problems(template: Template, values: Mapping[str, str]) -> dict[str, list[str]]:
    """What each function's settings model refuses (its every cold start would fail, after
    a deploy that succeeded), per parameter: the function's environment, as template.yaml
    builds it (Globals and its own variables)."""
    from pydantic import ValidationError

    problems: dict[str, list[str]] = {}
    for spec in template.functions():
        environment: dict[str, str] = {}
        parameter_of: dict[str, str] = {}
        for variable, value in spec.environment.items():
            key = variable.lower()
            if isinstance(value, dict) and value.get("Ref") in values:
                environment[key], parameter_of[key] = values[value["Ref"]], value["Ref"]
            elif isinstance(value, str | int | float):
                environment[key] = _text(value)
            else:
                environment[key] = "preflight"  # a resource's name, known once deployed
        model = function_settings(spec.handler)
        try:
            model.model_validate({k: v for k, v in environment.items() if k in model.model_fields})
        except ValidationError as exc:
            for error in exc.errors():
                name = parameter_of.get(str(error["loc"][0])) if error["loc"] else None
                line = (
                    f"{name}={_shown(values[name])}: the functions would refuse it at every "
                    f"cold start ({error['msg']})"
                    if name is not None
                    else ""
                )
                if name is not None and line not in problems.get(name, []):
                    problems.setdefault(name, []).append(line)
    return problems


def function_settings(handler: str) -> type[BaseModel]:
    """The settings model a handler (`module.attribute`, as template.yaml names it) reads."""
    module, _, attribute = handler.rpartition(".")
    function = getattr(importlib.import_module(module), attribute)
    settings: type[BaseModel] = function.wiring.settings
    return settings


def unknown_names(specs: Mapping[str, Any], layers: Sequence[Layer]) -> list[str]:
    problems = []
    for layer in layers:
        for name in layer.values:
            if name not in specs:
                close = difflib.get_close_matches(name, list(specs), n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                problems.append(
                    f"{name} (in {layer.source}) is not a parameter of template.yaml{hint}: "
                    "sam deploy would drop it silently"
                )
    return problems


def parameter_problems(
    template: Template, values: Mapping[str, str], overrides: Sequence[Layer]
) -> list[str]:
    """Every value CloudFormation, AWS or the functions would refuse, a line each (its
    name first)."""
    specs: dict[str, Any] = template.body.get("Parameters", {})
    problems = unknown_names(specs, overrides)
    found: dict[str, list[str]] = {}
    for name, spec in specs.items():
        if name not in values:
            found[name] = [f"{name} has no value and no default: give it in parameter_overrides"]
            continue
        value_check = VALUE_CHECKS.get(name)
        own = value_check(values[name], values) if value_check else []
        # A parameter's own check explains a refused pattern better than the pattern does.
        found[name] = own + constraint_problems(name, spec, values[name], pattern=not own)
    for name, lines in settings_problems(template, values).items():
        if not found.get(name):
            found[name] = lines
    return problems + [line for lines in found.values() for line in lines]


def parameters_result(
    template: Template,
    values: Mapping[str, str],
    layers: Sequence[Layer],
    config_env: str,
    errors: Sequence[str] = (),
) -> Result:
    overrides = [layer for layer in layers if layer.source != DEPLOYED]
    problems = [*errors, *parameter_problems(template, values, overrides)]
    if problems:
        return failed(
            "parameters",
            f"{_count(len(problems), 'problem')} in the parameter values",
            *problems,
            f"fix: change them in samconfig.toml's [{config_env}.deploy.parameters] "
            "parameter_overrides (or --parameter-overrides here)",
        )
    sources = [f"{len(layer.values)} from {layer.source}" for layer in layers if layer.values]
    return passed(
        "parameters",
        f"{len(values)} values valid ({', '.join(sources) or 'all defaults'})",
    )


def _named(value: Any, stack: str) -> str:
    """A Name property (a string, or !Sub of one naming the stack) for this stack."""
    if isinstance(value, dict) and isinstance(value.get("Fn::Sub"), str):
        value = value["Fn::Sub"]
    return _text(value).replace("${AWS::StackName}", stack)


# The functions' environment: Lambda refuses one over 4 KB (keys and values together), and
# the template's own variables already take about half (resource names and ARNs).
ENVIRONMENT_BYTES = 4096
# What CloudFormation and SAM add to a name they generate (a hyphen and a random suffix).
_SUFFIX = "-" + "X" * 13


def _estimated_ref(template: Template, logical_id: str, stack: str, region: str) -> str:
    """A resource's Ref as it will be once deployed, as long as CloudFormation makes it."""
    kind = template.type_of(logical_id)
    prefix = f"{region}:123456789012"
    generated = f"{stack}-{logical_id}{_SUFFIX}"
    own_name = template.properties(logical_id).get("Name")
    name = _named(own_name, stack) if own_name is not None else None
    if kind == "AWS::Serverless::StateMachine":  # its Ref is its ARN, named or not
        return f"arn:aws:states:{prefix}:stateMachine:{name or logical_id + _SUFFIX}"
    if name is not None:
        return name
    if kind == "AWS::SecretsManager::Secret":
        return f"arn:aws:secretsmanager:{prefix}:secret:{logical_id}{_SUFFIX}-XXXXXX"
    if kind == "AWS::SQS::Queue":
        return f"https://sqs.{region}.amazonaws.com/123456789012/{generated}"
    return generated[:63].lower() if kind == "AWS::S3::Bucket" else generated


def environment_sizes(
    template: Template, values: Mapping[str, str], *, stack: str, region: str
) -> dict[str, tuple[int, dict[str, int]]]:
    """Each function's environment in bytes, as estimated for this stack and region, and
    what each parameter in it takes. Measured as the JSON of the variables (AWS does not
    say how it counts; this is the larger of the plausible ways)."""
    sizes = {}
    for spec in template.functions():
        environment: dict[str, str] = {}
        parameters = {}
        for key, value in spec.environment.items():
            ref = value.get("Ref") if isinstance(value, dict) else None
            if not isinstance(ref, str):
                text = _text(value)
            elif ref in values:
                text = values[ref]
                parameters[ref] = len(key) + len(text.encode())
            elif ref in template.resources:
                text = _estimated_ref(template, ref, stack, region)
            else:
                text = ref  # a pseudo parameter's value is about its name's length
            environment[key] = text
        total = len(json.dumps(environment, ensure_ascii=False).encode())
        sizes[spec.logical_id] = (total, parameters)
    return sizes


def environment_result(
    template: Template, values: Mapping[str, str], *, stack: str, region: str, config_env: str
) -> Result:
    sizes = environment_sizes(template, values, stack=stack, region=region)
    function, (largest, parameters) = max(sizes.items(), key=lambda item: item[1][0])
    if largest <= ENVIRONMENT_BYTES:
        return passed(
            "environment",
            f"the largest function environment ({function}) is about {largest:,} bytes of "
            f"Lambda's {ENVIRONMENT_BYTES:,}",
        )
    heaviest = sorted(parameters.items(), key=lambda item: -item[1])[:3]
    return failed(
        "environment",
        f"{function}'s environment would be about {largest:,} bytes: Lambda takes at most "
        f"{ENVIRONMENT_BYTES:,} (keys and values together)",
        "the largest parameters in it: " + ", ".join(f"{n} ({b:,} bytes)" for n, b in heaviest),
        'CloudFormation would stop at the function ("Lambda was unable to configure your '
        "environment variables because the environment variables you have provided exceeded "
        'the 4KB limit") and roll the stack back',
        f"fix: shorten them in samconfig.toml's [{config_env}.deploy.parameters] "
        "parameter_overrides (webhook subscribers beyond a few belong to jobs' own "
        "webhook_url, or to an EventBridge rule on the stack's bus)",
    )


# The build: sam build's output, and the layer's compiled modules.

_EXTENSION = re.compile(r"\.cpython-(?P<tag>\d+[a-z]*)-(?P<platform>[^.]+)\.so$")
_SHARED_OBJECT = re.compile(r"\.so(\.\d+)*$")


def _elf_machine(path: Path) -> int | None:
    """The ELF header's e_machine, or None if the file is no ELF binary."""
    try:
        with path.open("rb") as binary:
            header = binary.read(20)
    except OSError:
        return None
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return None
    return int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")


def _built_for(path: Path) -> str | None:
    """What a shared object was built for, if not the functions' runtime; else None."""
    match = _EXTENSION.search(path.name)
    if match and (match["tag"], match["platform"]) != (RUNTIME_TAG, RUNTIME_PLATFORM):
        tag = match["tag"]
        return f"CPython {tag[0]}.{tag[1:]} on {match['platform']}"
    machine = _elf_machine(path)
    if machine is not None and machine != ELF_AARCH64:
        return f"{ELF_MACHINES.get(machine, f'ELF machine {machine}')} (an ELF binary)"
    return None


def build_result(build_dir: Path) -> Result:
    """sam build ran, and the dependencies layer holds modules the runtime can load (a
    wrong one fails every function's first import, after the deploy succeeded)."""
    fix = (
        "fix: run `make build` with python3.13 on PATH (`pyenv install 3.13`, or "
        "RUNTIME_PYTHON=...): dependencies/Makefile installs the locked wheels for "
        f"{RUNTIME_NAME} into {LAYER}/python"
    )
    if not build_dir.is_dir():
        return failed("build", f"no build in {build_dir}", "fix: run `make build` first")
    if not (build_dir / "template.yaml").is_file():
        return failed(
            "build",
            f"{build_dir} has no template.yaml: the build did not finish",
            "fix: run `make build` first",
        )
    layer = build_dir / LAYER / "python"
    if not layer.is_dir():
        return failed("build", f"{layer} is missing: the layer was not built", fix)
    shared = sorted(path for path in layer.rglob("*") if _SHARED_OBJECT.search(path.name))
    extensions = [path for path in shared if _EXTENSION.search(path.name) or ".abi3." in path.name]
    wrong = [(path, built) for path in shared if (built := _built_for(path)) is not None]
    if wrong:
        lines = [f"{path.relative_to(build_dir)}: built for {built}" for path, built in wrong]
        more = [f"... and {len(lines) - 5} more"] if len(lines) > 5 else []
        return failed(
            "build",
            f"{LAYER} was not built for {RUNTIME_NAME}: "
            f"{_count(len(wrong), 'compiled module')} for another Python or machine",
            *lines[:5],
            *more,
            fix,
        )
    if not extensions:
        return failed(
            "build",
            f"{layer} has no compiled extension modules (pydantic_core's, Pillow's): "
            "the layer is incomplete",
            fix,
        )
    return passed(
        "build",
        f"{build_dir} holds the built template; {LAYER} is built for {RUNTIME_NAME} "
        f"({_count(len(extensions), 'compiled module')}, e.g. {extensions[0].name})",
    )


# Lambda concurrency.


@dataclass(frozen=True)
class Concurrency:
    quota: int  # AccountLimit.ConcurrentExecutions
    unreserved: int  # AccountLimit.UnreservedConcurrentExecutions
    api_reserved: int = 0  # what the deployed ApiFunction reserves (free again on update)


def minimum_unreserved(quota: int) -> int:
    """What Lambda keeps unreserved: 100, or the whole quota when it is under 100 (a new
    account's 10: nothing can be reserved)."""
    return min(MIN_UNRESERVED, quota)


def most_reservable(concurrency: Concurrency) -> int:
    available = concurrency.unreserved + concurrency.api_reserved
    return max(0, available - minimum_unreserved(concurrency.quota))


def concurrency_result(
    requested: int, concurrency: Concurrency, *, region: str, config_env: str
) -> Result:
    most = most_reservable(concurrency)
    account = (
        f"the account's Lambda concurrency quota in {region} is {concurrency.quota}, "
        f"{concurrency.unreserved} unreserved"
    )
    if concurrency.api_reserved:
        account += f" (plus the {concurrency.api_reserved} the deployed {API_FUNCTION} reserves)"
    if requested == 0:
        return passed(
            "concurrency",
            f"ApiReservedConcurrency=0: {API_FUNCTION} reserves none ({account}; "
            f"it could reserve at most {most})",
        )
    if requested <= most:
        return passed(
            "concurrency",
            f"ApiReservedConcurrency={requested} fits: {account}, at most {most} reservable",
        )
    minimum = minimum_unreserved(concurrency.quota)
    value = f"ApiReservedConcurrency={most}` (or 0, none)" if most else "ApiReservedConcurrency=0`"
    return failed(
        "concurrency",
        f"ApiReservedConcurrency={requested} is more than this account allows "
        f"(at most {most} here)",
        f"{account}; Lambda keeps at least {minimum} unreserved, so {API_FUNCTION} may "
        f"reserve at most {most}",
        'CloudFormation would stop at ApiFunction ("Specified ReservedConcurrentExecutions '
        "for function decreases account's UnreservedConcurrentExecution below its minimum "
        f'value of [{minimum}]") and roll the stack back',
        f"fix: add `{value} to parameter_overrides in samconfig.toml's "
        f"[{config_env}.deploy.parameters] (0 reserves none), or ask AWS for a higher "
        f"quota: Service Quotas, AWS Lambda, Concurrent executions ({CONCURRENCY_QUOTA_CODE}): "
        "aws service-quotas request-service-quota-increase --service-code lambda "
        f"--quota-code {CONCURRENCY_QUOTA_CODE} --desired-value 1000 --region {region}",
    )


# API Gateway's account setting (its CloudWatch role, per region).


def api_gateway_result(manage: str, role_arn: str | None, *, region: str) -> Result:
    if manage == "true":
        replaces = f"; it replaces the current {role_arn}" if role_arn else ""
        return passed(
            "api-gateway",
            "ManageApiGatewayAccount=true: the stack sets API Gateway's CloudWatch role "
            f"(account-wide, in {region}){replaces}",
        )
    if role_arn:
        return passed(
            "api-gateway",
            f"ManageApiGatewayAccount={manage}: API Gateway in {region} already has a "
            f"CloudWatch role ({role_arn})",
        )
    return failed(
        "api-gateway",
        f"ManageApiGatewayAccount={manage}, but API Gateway in {region} has no CloudWatch role",
        "the API's stage writes access logs, which API Gateway refuses without one: "
        'CloudFormation would stop at the stage ("CloudWatch Logs role ARN must be set in '
        'account settings to enable logging") and roll the stack back',
        "fix: set ManageApiGatewayAccount=true (the stack sets its own role; the setting is "
        "account-wide, per region), or set one yourself: aws apigateway update-account "
        f"--region {region} --patch-operations op=replace,path=/cloudwatchRoleArn,value=ARN "
        "(a role API Gateway may assume, with the AmazonAPIGatewayPushToCloudWatchLogs policy)",
    )


# The stack as it stands.

DEPLOYED = "the deployed stack"
# CloudFormation refuses to update a stack in these states; the fix for each.
STUCK_STATES = {
    "ROLLBACK_COMPLETE": "its creation failed and it cannot be updated: delete it "
    "(`make delete ENV={env}`, the buckets emptied first), then deploy again",
    "ROLLBACK_FAILED": "its creation failed and so did the rollback: delete it "
    "(`make delete ENV={env}`), then deploy again",
    "DELETE_FAILED": "a delete failed: delete it again (`make delete ENV={env}`)",
    "UPDATE_ROLLBACK_FAILED": "an update's rollback failed: aws cloudformation "
    "continue-update-rollback --stack-name {stack}, then deploy again",
}


@dataclass(frozen=True)
class DeployedStack:
    status: str
    parameters: dict[str, str]


def stack_result(stack_name: str, stack: DeployedStack | None, *, config_env: str) -> Result:
    if stack is None:
        return passed("stack", f"{stack_name} does not exist yet: CloudFormation creates it")
    if stack.status in STUCK_STATES:
        fix = STUCK_STATES[stack.status].format(env=config_env, stack=stack_name)
        return failed("stack", f"{stack_name} is {stack.status}", f"fix: {fix}")
    if stack.status.endswith("_IN_PROGRESS"):
        return failed(
            "stack",
            f"{stack_name} is {stack.status}: another operation is under way",
            f"fix: wait for it to end (aws cloudformation describe-stacks --stack-name "
            f"{stack_name}), then deploy again",
        )
    return passed(
        "stack",
        f"{stack_name} exists ({stack.status}): parameters not overridden keep their "
        "deployed values",
    )


# DynamoDB's indexes: an update of a table may create or delete one global secondary index
# (UpdateTable takes one at a time); CloudFormation refuses more, rolling the stack back.


def _indexes(resource: Mapping[str, Any] | None) -> dict[str, str] | None:
    """A table's global secondary indexes by name (their definition, to compare), or None
    where there is no such table."""
    if not resource or resource.get("Type") != "AWS::DynamoDB::Table":
        return None
    indexes = resource.get("Properties", {}).get("GlobalSecondaryIndexes") or []
    return {
        str(index["IndexName"]): json.dumps(
            {k: index.get(k) for k in ("KeySchema", "Projection")}, sort_keys=True
        )
        for index in indexes
    }


def index_problems(deployed: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Each table of `new` whose update from `deployed` would create or delete more than one
    global secondary index (an index whose keys or projection change is deleted and created
    again: two)."""
    problems = []
    before_resources = deployed.get("Resources") or {}
    for logical_id, resource in (new.get("Resources") or {}).items():
        after = _indexes(resource)
        before = _indexes(before_resources.get(logical_id))
        if after is None or before is None:
            continue  # not a table, or a new one: created with all its indexes
        created = sorted(n for n in after if before.get(n) != after[n])
        deleted = sorted(n for n in before if after.get(n) != before[n])
        if len(created) + len(deleted) > 1:
            changes = [f"creates {', '.join(created)}"] if created else []
            changes += [f"deletes {', '.join(deleted)}"] if deleted else []
            problems.append(
                f"{logical_id}: this update {' and '.join(changes)}; DynamoDB takes one index "
                "a deploy, so CloudFormation would roll the stack back"
            )
    return problems


def indexes_result(deployed: Mapping[str, Any] | None, new: Mapping[str, Any]) -> Result:
    if deployed is None:
        return passed("indexes", "a new stack: every table is created with all its indexes")
    problems = index_problems(deployed, new)
    if problems:
        return failed(
            "indexes",
            "an update would change more than one index of a table",
            *problems,
            "fix: deploy in steps, one index created or deleted each (the release notes "
            "name the versions in between)",
        )
    return passed("indexes", "each table gains or loses at most one index")


def read_deployed_template(session: Any, stack_name: str) -> dict[str, Any]:
    """The template the stack was last deployed from, as it was given (before SAM's
    transform)."""
    answer = session.client("cloudformation").get_template(
        StackName=stack_name, TemplateStage="Original"
    )
    body = answer["TemplateBody"]
    return body if isinstance(body, dict) else Template.parse(str(body))


# Talking to AWS (read-only).


def read_stack(session: Any, stack_name: str) -> DeployedStack | None:
    from botocore.exceptions import ClientError

    try:
        stacks = session.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    # A stack only ever given a changeset is one SAM creates anew.
    if not stacks or stacks[0]["StackStatus"] == "REVIEW_IN_PROGRESS":
        return None
    parameters = {
        item["ParameterKey"]: item.get("ParameterValue", "")
        for item in stacks[0].get("Parameters", [])
    }
    return DeployedStack(stacks[0]["StackStatus"], parameters)


def read_concurrency(session: Any, stack_name: str, *, deployed: bool) -> Concurrency:
    limit = session.client("lambda").get_account_settings()["AccountLimit"]
    return Concurrency(
        quota=int(limit["ConcurrentExecutions"]),
        unreserved=int(limit["UnreservedConcurrentExecutions"]),
        api_reserved=read_api_reservation(session, stack_name) if deployed else 0,
    )


def read_api_reservation(session: Any, stack_name: str) -> int:
    """What the stack's ApiFunction reserves now (0 if it has none, or no such function)."""
    from botocore.exceptions import ClientError

    try:
        resource = session.client("cloudformation").describe_stack_resource(
            StackName=stack_name, LogicalResourceId=API_FUNCTION
        )["StackResourceDetail"]
        answer = session.client("lambda").get_function_concurrency(
            FunctionName=resource["PhysicalResourceId"]
        )
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code in ("ValidationError", "ResourceNotFoundException"):
            return 0
        raise
    return int(answer.get("ReservedConcurrentExecutions") or 0)


def read_cloudwatch_role(session: Any) -> str | None:
    role = session.client("apigateway").get_account().get("cloudwatchRoleArn")
    return str(role) if role else None


def _aws_failure(check: str, what: str, exc: Exception) -> Result:
    return failed(
        check,
        f"could not read {what}: {exc}",
        "fix: check the credentials and their permissions (this check needs read access: "
        "cloudformation:Describe*, lambda:GetAccountSettings, lambda:GetFunctionConcurrency, "
        "apigateway:GET)",
    )


@dataclass
class Target:
    """Where the deploy goes, once known."""

    stack_name: str | None = None
    region: str | None = None
    session: Any = None
    account: str | None = None


def resolve_target(
    options: Options, config: SamConfig | None, config_error: str | None
) -> tuple[Target, Result]:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    target = Target(stack_name=options.stack_name or (config.stack_name if config else None))
    problems = [config_error] if config_error else []
    profile = options.profile or (config.profile if config else None)
    region = options.region or (config.region if config else None)
    try:
        session = boto3.Session(profile_name=profile, region_name=region)
    except BotoCoreError as exc:
        session = None
        problems.append(f"{exc}: fix --profile, or the profile in your AWS configuration")
    region = region or (session.region_name if session else None)
    if not target.stack_name:
        problems.append(
            f"no stack name: set stack_name in samconfig.toml's [{options.config_env}."
            "global.parameters], or pass --stack-name"
        )
    elif not re.fullmatch(r"[A-Za-z][-A-Za-z0-9]{0,127}", target.stack_name):
        problems.append(
            f"stack name {target.stack_name!r}: CloudFormation takes letters, digits and "
            "hyphens, starting with a letter (at most 128)"
        )
    else:
        problems += _named_after_the_stack(Template(options.template_path), target.stack_name)
    if not region:
        problems.append(
            "no region: pass one (`make deploy REGION=eu-west-1`, --region), add "
            f'region = "..." to samconfig.toml\'s [{options.config_env}.global.parameters], '
            "or configure one (AWS_DEFAULT_REGION, or your profile's region)"
        )
    elif not re.fullmatch(r"[a-z]{2,}(-[a-z]+)+-\d+", region):
        problems.append(f"region {region!r} is not an AWS region name (like eu-west-1)")
    if problems:
        return target, failed("target", "cannot tell where the deploy goes", *problems)
    target.region, target.session = region, session
    try:
        target.account = session.client("sts").get_caller_identity()["Account"]
    except (BotoCoreError, ClientError) as exc:
        who = f"profile {profile}" if profile else "your default credentials"
        return target, failed(
            "target",
            f"cannot reach AWS with {who}: {exc}",
            "fix: sign in (aws sso login, aws configure) or pass --profile; check with "
            "`aws sts get-caller-identity`",
        )
    return target, passed(
        "target", f"stack {target.stack_name} in {region}, account {target.account}"
    )


# Names the template makes of the stack's and the most AWS takes for each.
NAME_LIMITS = {"AWS::Serverless::StateMachine": 80, "AWS::Events::EventBus": 256}


def _named_after_the_stack(template: Template, stack: str) -> list[str]:
    problems = []
    for kind, limit in NAME_LIMITS.items():
        for logical_id, props in template.of_type(kind).items():
            if "Name" not in props:
                continue
            name = _named(props["Name"], stack)
            if len(name) > limit:
                problems.append(
                    f"stack name {stack!r} is too long: {logical_id} is named {name} "
                    f"({len(name)} characters; AWS takes at most {limit}): use a stack name "
                    f"of at most {limit - len(name) + len(stack)} characters"
                )
    return problems


# The whole preflight.


def run(options: Options) -> list[Result]:
    from botocore.exceptions import BotoCoreError, ClientError

    template = Template(options.template_path)
    specs: dict[str, Any] = template.body.get("Parameters", {})
    errors: list[str] = []
    config: SamConfig | None = None
    config_error: str | None = None
    try:
        config = read_samconfig(options.config_file, options.config_env)
    except ConfigError as exc:
        config_error = str(exc)
        errors.append(f"samconfig.toml's parameter_overrides are not used: {exc}")
    try:
        given = parse_overrides(options.parameter_overrides)
    except ConfigError as exc:
        given, errors = {}, [*errors, f"--parameter-overrides: {exc}"]

    target, target_check = resolve_target(options, config, config_error)
    results = [target_check]
    stack: DeployedStack | None = None
    reachable = target_check.status == "pass" and target.stack_name is not None
    if reachable:
        try:
            stack = read_stack(target.session, str(target.stack_name))
            results.append(
                stack_result(str(target.stack_name), stack, config_env=options.config_env)
            )
        except (BotoCoreError, ClientError) as exc:
            results.append(_aws_failure("stack", "the stack", exc))
    else:
        results.append(skipped("stack", "needs the target (above)"))

    samconfig_source = f"samconfig.toml [{options.config_env}]"
    layers = [
        Layer(DEPLOYED, stack.parameters if stack else {}),
        Layer(samconfig_source, config.parameter_overrides if config else {}),
        Layer("--parameter-overrides", given),
    ]
    values = effective_values(specs, layers)
    results.append(parameters_result(template, values, layers, options.config_env, errors))
    if target.stack_name and target.region:
        results.append(
            environment_result(
                template,
                values,
                stack=target.stack_name,
                region=target.region,
                config_env=options.config_env,
            )
        )
    else:
        results.append(skipped("environment", "needs the stack name and region (above)"))
    results.append(_indexes_check(target, template, reachable, stack is not None))
    results.append(_concurrency_check(target, values, options, reachable, stack is not None))
    results.append(_api_gateway_check(target, values, reachable))
    results.append(build_result(options.build_dir))
    return results


def _indexes_check(target: Target, template: Template, reachable: bool, deployed: bool) -> Result:
    from botocore.exceptions import BotoCoreError, ClientError

    if not reachable:
        return skipped("indexes", "needs the target (above)")
    if not deployed:
        return indexes_result(None, template.body)
    try:
        before = read_deployed_template(target.session, str(target.stack_name))
    except (BotoCoreError, ClientError) as exc:
        return _aws_failure("indexes", "the deployed template", exc)
    return indexes_result(before, template.body)


def _concurrency_check(
    target: Target, values: Mapping[str, str], options: Options, reachable: bool, deployed: bool
) -> Result:
    from botocore.exceptions import BotoCoreError, ClientError

    text = values.get("ApiReservedConcurrency", "0")
    if not text.isdigit():
        return skipped("concurrency", f"ApiReservedConcurrency={_shown(text)} is no count")
    if not reachable:
        return skipped("concurrency", "needs the target (above)")
    try:
        concurrency = read_concurrency(target.session, str(target.stack_name), deployed=deployed)
    except (BotoCoreError, ClientError) as exc:
        if int(text) == 0:  # reserving none needs no room
            return passed("concurrency", "ApiReservedConcurrency=0: ApiFunction reserves none")
        return _aws_failure("concurrency", "the account's Lambda concurrency", exc)
    return concurrency_result(
        int(text), concurrency, region=str(target.region), config_env=options.config_env
    )


def _api_gateway_check(target: Target, values: Mapping[str, str], reachable: bool) -> Result:
    from botocore.exceptions import BotoCoreError, ClientError

    manage = values.get("ManageApiGatewayAccount", "true")
    if not reachable:
        return skipped("api-gateway", "needs the target (above)")
    try:
        role = read_cloudwatch_role(target.session)
    except (BotoCoreError, ClientError) as exc:
        return _aws_failure("api-gateway", "API Gateway's account settings", exc)
    return api_gateway_result(manage, role, region=str(target.region))


def report(results: Sequence[Result], out: IO[str]) -> int:
    """One line per check, a failure's details under it; 1 if any check failed."""
    width = max(len(result.check) for result in results)
    for result in results:
        print(f"{result.status.upper():4}  {result.check:{width}}  {result.summary}", file=out)
        for line in result.details:
            print(f"{'':{width + 8}}{line}", file=out)
    failures = [result.check for result in results if result.status == "fail"]
    if failures:
        print(
            f"preflight: {len(failures)} of {len(results)} checks failed "
            f"({', '.join(failures)}): nothing was deployed",
            file=out,
        )
        return 1
    print(f"preflight: all {len(results)} checks passed", file=out)
    return 0
