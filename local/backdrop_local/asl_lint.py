"""The state machines' definitions as AWS reads them (`make lint`), before CloudFormation
does: moto runs definitions that CreateStateMachine refuses, and cfn-lint does not open a
DefinitionUri file.

Each AWS::Serverless::StateMachine's definition, its DefinitionSubstitutions filled as
CloudFormation would (an ARN or a name of the right kind for each resource), goes through
the pinned asl-validator (the Makefile installs it into tools/asl-validator/: the States
Language's schema, JSONPath and intrinsic-function syntax, state names unique across the
whole machine, transition targets that exist, terminal states), then through the rules
checked here that it does not check: a transition stays in its scope (a Map's processor,
a Parallel branch), every state is reachable from its scope's StartAt, state names are at
most 80 characters, States.ALL is alone in the last rule, a Retry's BackoffRate is at
least 1, only a DISTRIBUTED Map has an ItemReader, a ResultWriter and the like, with an
S3 resource it supports, and no JSON object has a key twice (a JSON parser keeps the last
one: a state silently lost).

    python -m backdrop_local.asl_lint [--template template.yaml]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from backdrop_local.template import (
    PROJECT_ROOT,
    TEMPLATE_PATH,
    StateMachineSpec,
    Template,
    substitute,
)

VALIDATOR = PROJECT_ROOT / "tools" / "asl-validator" / "node_modules" / ".bin" / "asl-validator"
REGION, ACCOUNT, STACK = "us-east-1", "123456789012", "backdrop"
MAX_NAME = 80

# Each resource type's Ref and attributes, as CloudFormation gives them ({name}: physical).
_A = f"{REGION}:{ACCOUNT}"
_KINDS: dict[str, tuple[str, dict[str, str]]] = {
    "AWS::Serverless::Function": ("{name}", {"Arn": f"arn:aws:lambda:{_A}:function:{{name}}"}),
    "AWS::Serverless::StateMachine": (
        f"arn:aws:states:{_A}:stateMachine:{{name}}",
        {"Arn": f"arn:aws:states:{_A}:stateMachine:{{name}}", "Name": "{name}"},
    ),
    "AWS::S3::Bucket": ("{name}", {"Arn": "arn:aws:s3:::{name}"}),
    "AWS::DynamoDB::Table": ("{name}", {"Arn": f"arn:aws:dynamodb:{_A}:table/{{name}}"}),
    "AWS::SQS::Queue": (
        f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{{name}}",
        {"Arn": f"arn:aws:sqs:{_A}:{{name}}", "QueueName": "{name}"},
    ),
    "AWS::SNS::Topic": (f"arn:aws:sns:{_A}:{{name}}", {"TopicName": "{name}"}),
    "AWS::Events::EventBus": ("{name}", {"Arn": f"arn:aws:events:{_A}:event-bus/{{name}}"}),
}
_KINDS["AWS::Lambda::Function"] = _KINDS["AWS::Serverless::Function"]
_KINDS["AWS::StepFunctions::StateMachine"] = _KINDS["AWS::Serverless::StateMachine"]
_NAME_PROPERTIES = (
    *("FunctionName", "StateMachineName", "Name"),
    *("BucketName", "TableName", "QueueName", "TopicName"),
)
_PSEUDO = {
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::Partition": "aws",
    "AWS::StackName": STACK,
    "AWS::URLSuffix": "amazonaws.com",
}

_DISTRIBUTED_ONLY = (
    *("ItemReader", "ItemBatcher", "ResultWriter", "Label"),
    *("ToleratedFailureCount", "ToleratedFailureCountPath"),
    *("ToleratedFailurePercentage", "ToleratedFailurePercentagePath"),
)
_S3_RESOURCES = {
    "ItemReader": {"arn:aws:states:::s3:getObject", "arn:aws:states:::s3:listObjectsV2"},
    "ResultWriter": {"arn:aws:states:::s3:putObject"},
}


class Unfillable(Exception):
    """A DefinitionSubstitutions value this module has no stand-in for."""


class ValidatorMissing(Exception):
    """asl-validator is not installed (`make lint` and `make test` install it)."""


class Problem(NamedTuple):
    where: str  # a JSON pointer into the definition (as asl-validator gives them)
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


# ---- DefinitionSubstitutions, filled as CloudFormation would --------------------------


def filled(template: Template, machine: StateMachineSpec) -> str:
    """The machine's ASL text, each ${Name} replaced by its substitution's stand-in."""
    values = {name: _value(template, value) for name, value in machine.substitutions.items()}
    return substitute(machine.definition, values)


def _value(template: Template, value: Any) -> str:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, dict) and len(value) == 1:
        ((function, arg),) = value.items()
        if function == "Ref" and isinstance(arg, str):
            return _ref(template, arg)
        if function == "Fn::GetAtt":
            logical_id, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
            return _attribute(template, logical_id, attribute)
        if function == "Fn::Sub" and isinstance(arg, str):
            return re.sub(r"\$\{([^}!]+)\}", lambda m: _sub(template, m.group(1)), arg)
    raise Unfillable(f"{value!r}: no stand-in for this value (asl_lint.py knows Ref, GetAtt, Sub)")


def _sub(template: Template, name: str) -> str:
    if "." in name:
        logical_id, attribute = name.split(".", 1)
        return _attribute(template, logical_id, attribute)
    return _ref(template, name)


def _ref(template: Template, name: str) -> str:
    if name in _PSEUDO:
        return _PSEUDO[name]
    if name not in template.resources:
        return template.parameter_defaults().get(name, name)  # a parameter
    return _kind(template, name)[0].format(name=_physical_name(template, name))


def _attribute(template: Template, logical_id: str, attribute: str) -> str:
    attributes = _kind(template, logical_id)[1]
    if attribute not in attributes:
        kind = template.type_of(logical_id)
        raise Unfillable(f"{logical_id}.{attribute}: no stand-in for a {kind}'s {attribute}")
    return attributes[attribute].format(name=_physical_name(template, logical_id))


def _kind(template: Template, logical_id: str) -> tuple[str, dict[str, str]]:
    kind = template.type_of(logical_id)
    if kind not in _KINDS:
        raise Unfillable(f"{logical_id}: no stand-in for a {kind} (add one to asl_lint.py)")
    return _KINDS[kind]


def _physical_name(template: Template, logical_id: str) -> str:
    """The name the template gives the resource, or one like CloudFormation's own."""
    properties = template.properties(logical_id)
    for key in _NAME_PROPERTIES:
        if key in properties:
            return _value(template, properties[key])
    name = f"{STACK}-{logical_id}-EXAMPLE"
    return name.lower() if template.type_of(logical_id) == "AWS::S3::Bucket" else name


# ---- The checks ------------------------------------------------------------------------


def lint(text: str, validator: Path = VALIDATOR) -> list[Problem]:
    """Everything wrong with a definition (its placeholders filled): asl-validator's
    findings, then this module's."""
    try:
        definition = json.loads(text, object_pairs_hook=_object)
    except json.JSONDecodeError as error:
        return [Problem("/", f"not JSON: {error}")]
    return validate(text, definition, validator) + check(definition)


def validate(text: str, definition: Any, validator: Path = VALIDATOR) -> list[Problem]:
    """asl-validator's findings, each at the JSON pointer it names (a duplicate name: at
    each state of that name)."""
    if not validator.exists():
        raise ValidatorMissing(f"{validator} is missing: `make lint` or `make test` installs it")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "definition.json"
        path.write_text(text)
        done = subprocess.run(  # noqa: S603  # our pinned validator, our own file
            [str(validator), "--json-path", str(path)], capture_output=True, text=True, check=False
        )
    if done.returncode == 0:
        return []
    lines = [line.strip() for line in done.stderr.splitlines()[1:] if line.strip()]
    if done.returncode != 1 or not lines:
        output = (done.stderr + done.stdout).strip()
        return [Problem("/", f"asl-validator failed (exit {done.returncode}): {output}")]
    places = _state_places(definition)
    problems = []
    for line in lines:
        code, _, message = line.partition(": ")
        where, invalid, why = message.partition(" is invalid. ")
        duplicate = re.fullmatch(r"A state with this name already exists: (.*)", message)
        if invalid and where.startswith("/"):
            problems.append(Problem(where, f"{code}: {why}"))
        elif duplicate and duplicate[1] in places:
            problems.append(Problem(", ".join(places[duplicate[1]]), f"{code}: {message}"))
        else:
            problems.append(Problem("/", f"{code}: {message}"))
    return problems


def check(definition: Any) -> list[Problem]:
    """The rules of the States Language (as AWS applies them) asl-validator does not check."""
    problems = list(_repeated_keys(definition, ""))
    places = _state_places(definition)
    for where, scope in _scopes(definition, ""):
        problems += _scope_problems(where, scope, places)
    return problems


class _Object(dict[str, Any]):
    """A JSON object that remembers the keys it had more than once."""

    repeated: tuple[str, ...] = ()


def _object(pairs: list[tuple[str, Any]]) -> _Object:
    found = _Object(pairs)
    found.repeated = tuple(key for key, count in Counter(k for k, _ in pairs).items() if count > 1)
    return found


def _repeated_keys(value: Any, where: str) -> Iterator[Problem]:
    if isinstance(value, _Object):
        for key in value.repeated:
            yield Problem(where or "/", f"key {key!r} appears twice: a JSON parser keeps the last")
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _repeated_keys(item, f"{where}/{_escape(key)}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _repeated_keys(item, f"{where}/{index}")


def _escape(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")  # a JSON pointer's (RFC 6901)


def _scopes(machine: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every scope of states: the machine, each Map's processor, each Parallel branch."""
    states = machine.get("States") if isinstance(machine, dict) else None
    if not isinstance(states, dict):
        return
    yield where, machine
    for name, state in states.items():
        if not isinstance(state, dict):
            continue
        at = f"{where}/States/{_escape(name)}"
        for key in ("ItemProcessor", "Iterator"):
            yield from _scopes(state.get(key), f"{at}/{key}")
        branches = state.get("Branches")
        for index, branch in enumerate(branches if isinstance(branches, list) else []):
            yield from _scopes(branch, f"{at}/Branches/{index}")


def _state_places(definition: Any) -> dict[str, list[str]]:
    """Each state name, and the pointer of every state of that name."""
    places: dict[str, list[str]] = {}
    for where, scope in _scopes(definition, ""):
        for name in scope["States"]:
            places.setdefault(name, []).append(f"{where}/States/{_escape(name)}")
    return places


def _targets(state: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """A state's transitions: (the field, relative to the state, and its target)."""
    for key in ("Next", "Default"):
        if key in state:
            yield key, state[key]
    for key in ("Choices", "Catch"):
        rules = state.get(key)
        for index, rule in enumerate(rules if isinstance(rules, list) else []):
            if isinstance(rule, dict) and "Next" in rule:
                yield f"{key}/{index}/Next", rule["Next"]


def _scope_problems(
    where: str, scope: dict[str, Any], places: dict[str, list[str]]
) -> Iterator[Problem]:
    states: dict[str, Any] = scope["States"]
    edges: dict[str, list[Any]] = {}
    for name, state in states.items():
        at = f"{where}/States/{_escape(name)}"
        if len(name) > MAX_NAME:
            yield Problem(at, f"a state name is at most {MAX_NAME} characters; {len(name)} here")
        if not isinstance(state, dict):
            continue
        edges[name] = []
        for field, target in _targets(state):
            edges[name].append(target)
            if isinstance(target, str) and target not in states:
                elsewhere = places.get(target)
                hint = (
                    f" (it is {elsewhere[0]}: a transition never leaves or enters a Map's"
                    " processor or a Parallel branch)"
                    if elsewhere
                    else ""
                )
                yield Problem(f"{at}/{field}", f"{target!r} is not a state of this scope{hint}")
        yield from _rule_problems(at, state)
        yield from _map_problems(at, state)
    start = scope.get("StartAt")
    if start not in states:
        yield Problem(f"{where}/StartAt", f"{start!r} is not a state of this scope")
    reached: set[str] = set()
    todo: list[Any] = [start]
    while todo:
        here = todo.pop()
        if isinstance(here, str) and here in edges and here not in reached:
            reached.add(here)
            todo += edges[here]
    for name in states:
        if name not in reached and start in states:
            yield Problem(f"{where}/States/{_escape(name)}", f"not reachable from {start!r}")


def _rule_problems(at: str, state: dict[str, Any]) -> Iterator[Problem]:
    for key in ("Retry", "Catch"):
        found = state.get(key)
        rules = (
            [rule for rule in found if isinstance(rule, dict)] if isinstance(found, list) else []
        )
        for index, rule in enumerate(rules):
            errors = rule.get("ErrorEquals")
            alone = errors == ["States.ALL"] and index == len(rules) - 1
            if isinstance(errors, list) and "States.ALL" in errors and not alone:
                yield Problem(f"{at}/{key}/{index}", "States.ALL must be alone, in the last rule")
            rate = rule.get("BackoffRate")
            if key == "Retry" and isinstance(rate, int | float) and rate < 1:
                yield Problem(f"{at}/{key}/{index}/BackoffRate", f"at least 1.0, not {rate}")


def _map_problems(at: str, state: dict[str, Any]) -> Iterator[Problem]:
    if state.get("Type") != "Map":
        return
    processor = state.get("ItemProcessor")
    config = processor.get("ProcessorConfig") if isinstance(processor, dict) else None
    mode = config.get("Mode", "INLINE") if isinstance(config, dict) else "INLINE"
    for field in _DISTRIBUTED_ONLY:
        if field in state and mode != "DISTRIBUTED":
            yield Problem(f"{at}/{field}", f"only a DISTRIBUTED Map has one (this one is {mode})")
    for field, supported in _S3_RESOURCES.items():
        config = state.get(field)
        resource = config.get("Resource") if isinstance(config, dict) else None
        if field in state and resource not in supported:
            yield Problem(f"{at}/{field}/Resource", f"one of {sorted(supported)}, not {resource!r}")


# ---- The command -------------------------------------------------------------------------


def _label(template: Template, logical_id: str) -> str:
    uri = template.properties(logical_id).get("DefinitionUri")
    return str(uri) if isinstance(uri, str) else f"{template.path.name} ({logical_id})"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m backdrop_local.asl_lint",
        description="Check each state machine's definition as AWS reads it.",
    )
    parser.add_argument("--template", type=Path, default=TEMPLATE_PATH)
    args = parser.parse_args(argv)
    template = Template(args.template)
    failed = False
    for machine in template.state_machines():
        label = _label(template, machine.logical_id)
        try:
            problems = lint(filled(template, machine))
        except Unfillable as error:
            problems = [Problem("/", str(error))]
        except ValidatorMissing as error:
            print(error, file=sys.stderr)
            return 2
        for problem in problems:
            print(f"{label}: {problem}")
        if not problems:
            print(f"{label}: valid")
        failed = failed or bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
