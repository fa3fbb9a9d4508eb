"""Read template.yaml so the local stack builds what SAM deploys: the same resources,
names resolved locally, the same environment, the same state machine definition."""

from __future__ import annotations

import copy
import functools
import graphlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = PROJECT_ROOT / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form tags (!Ref, !GetAtt, !Sub, ...)."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _tag)


@functools.cache
def _parsed(path: Path, mtime_ns: int) -> dict[str, Any]:
    """The template, parsed once per version of the file: every test builds a stack from
    it, and parsing its YAML takes most of a second (callers get a copy to change)."""
    return Template.parse(path.read_text())


class LocalStackUnsupported(Exception):
    """The template asks for something the local stack cannot create or run."""


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    handler: str
    timeout: int
    environment: dict[str, Any]
    events: dict[str, Any]


class StateMachineSpec(NamedTuple):
    logical_id: str
    definition: str  # the ASL text, ${...} placeholders still in
    substitutions: dict[str, Any]


STATE_MACHINE = "AWS::Serverless::StateMachine"


class Template:
    @staticmethod
    def parse(text: str) -> dict[str, Any]:
        """A template's text (YAML with CloudFormation's short-form tags, or JSON)."""
        return yaml.load(text, Loader=_CfnLoader)  # type: ignore[no-any-return]  # noqa: S506

    def __init__(self, path: Path = TEMPLATE_PATH) -> None:
        self.path = path
        self.body: dict[str, Any] = copy.deepcopy(_parsed(path, path.stat().st_mtime_ns))
        self.resources: dict[str, dict[str, Any]] = self.body["Resources"]

    def parameter_defaults(self) -> dict[str, str]:
        return {
            name: str(spec["Default"])
            for name, spec in self.body.get("Parameters", {}).items()
            if "Default" in spec
        }

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource.get("Properties", {})
            for logical_id, resource in self.resources.items()
            if resource["Type"] == resource_type
        }

    def type_of(self, logical_id: str) -> str:
        return str(self.resources[logical_id]["Type"])

    def properties(self, logical_id: str) -> dict[str, Any]:
        return self.resources[logical_id].get("Properties", {})  # type: ignore[no-any-return]

    def creation_order(self) -> list[str]:
        """Logical ids, each after every resource it references (as CloudFormation
        creates them): a dead-letter queue before its queue, functions before the state
        machine whose definition names them, that state machine before the functions that
        start it."""
        graph = {logical_id: self._dependencies(logical_id) for logical_id in self.resources}
        try:
            return list(graphlib.TopologicalSorter(graph).static_order())
        except graphlib.CycleError as error:
            raise LocalStackUnsupported(f"circular references: {error.args[1]}") from error

    def _dependencies(self, logical_id: str) -> set[str]:
        resource = self.resources[logical_id]
        depends_on = resource.get("DependsOn", [])
        names = {depends_on} if isinstance(depends_on, str) else set(depends_on)
        names |= references(resource)
        if resource["Type"] == "AWS::Serverless::Function":
            names |= references(self._function_globals())  # e.g. the shared environment
        return (names & set(self.resources)) - {logical_id}

    def _function_globals(self) -> dict[str, Any]:
        return self.body.get("Globals", {}).get("Function", {})  # type: ignore[no-any-return]

    def functions(self) -> list[FunctionSpec]:
        return [
            self.function(logical_id) for logical_id in self.of_type("AWS::Serverless::Function")
        ]

    def function(self, logical_id: str) -> FunctionSpec:
        props = self.properties(logical_id)
        globals_ = self._function_globals()
        shared_env = globals_.get("Environment", {}).get("Variables", {})
        return FunctionSpec(
            logical_id=logical_id,
            handler=props["Handler"],
            timeout=int(props.get("Timeout", globals_.get("Timeout", 3))),
            environment={**shared_env, **props.get("Environment", {}).get("Variables", {})},
            events=props.get("Events", {}),
        )

    def state_machines(self) -> list[StateMachineSpec]:
        return [self.state_machine(logical_id) for logical_id in self.of_type(STATE_MACHINE)]

    def state_machine(self, logical_id: str | None = None) -> StateMachineSpec:
        """A state machine, by logical id; without one, the template's only state machine."""
        if logical_id is None:
            (logical_id,) = self.of_type(STATE_MACHINE)
        props = self.properties(logical_id)
        if "DefinitionUri" in props:
            definition = (self.path.parent / props["DefinitionUri"]).read_text()
        else:
            definition = json.dumps(props["Definition"])  # inline in the template
        return StateMachineSpec(
            logical_id=logical_id,
            definition=definition,
            substitutions=props.get("DefinitionSubstitutions", {}),
        )


def references(value: Any) -> set[str]:
    """The names a value's Ref, GetAtt and Sub point at (resources and parameters alike)."""
    if isinstance(value, list):
        return set().union(*(references(item) for item in value))
    if not isinstance(value, dict):
        return set()
    if len(value) == 1:
        ((name, arg),) = value.items()
        if name == "Ref":
            return {arg}
        if name == "Fn::GetAtt":
            return {arg[0]}
        if name == "Fn::Sub" and isinstance(arg, str):
            return {match.split(".", 1)[0] for match in re.findall(r"\$\{([^}!]+)\}", arg)}
    return set().union(*(references(item) for item in value.values()))


class Resolver:
    """Evaluates the intrinsic functions the template uses, against local values, and its
    Conditions (Fn::Equals, Fn::Not, Fn::And, Fn::Or, Condition) for Fn::If."""

    def __init__(
        self,
        refs: dict[str, str],
        attributes: dict[tuple[str, str], str],
        conditions: dict[str, Any] | None = None,
    ) -> None:
        self.refs = refs
        self.attributes = attributes
        self.conditions = conditions or {}

    def __call__(self, value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            ((name, arg),) = value.items()
            if name == "Ref":
                return self._ref(arg)
            if name == "Fn::GetAtt":
                return self._attribute(arg[0], arg[1])
            if name == "Fn::Sub":
                return re.sub(r"\$\{([^}]+)\}", lambda m: self._sub(m.group(1)), arg)
            if name == "Fn::If":
                condition, if_true, if_false = arg
                return self(if_true if self.holds(condition) else if_false)
        if isinstance(value, dict):
            return {key: self(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self(item) for item in value]
        return value

    def holds(self, condition: str) -> bool:
        """Whether one of the template's Conditions is true."""
        if condition not in self.conditions:
            raise LocalStackUnsupported(f"condition {condition}: not in the template")
        return self._truth(self.conditions[condition])

    def _truth(self, value: Any) -> bool:
        ((name, arg),) = value.items()
        if name == "Fn::Equals":
            left, right = (str(self(item)) for item in arg)
            return left == right
        if name == "Fn::Not":
            return not self._truth(arg[0])
        if name == "Fn::And":
            return all(self._truth(item) for item in arg)
        if name == "Fn::Or":
            return any(self._truth(item) for item in arg)
        if name == "Condition":
            return self.holds(arg)
        raise LocalStackUnsupported(f"condition function {name}: not supported locally")

    def _sub(self, name: str) -> str:
        if "." in name:
            logical_id, attribute = name.split(".", 1)
            return self._attribute(logical_id, attribute)
        return self._ref(name)

    def _ref(self, name: str) -> str:
        if name not in self.refs:
            raise LocalStackUnsupported(f"{name}: referenced, but it has no local value")
        return self.refs[name]

    def _attribute(self, logical_id: str, attribute: str) -> str:
        if (logical_id, attribute) not in self.attributes:
            raise LocalStackUnsupported(f"{logical_id}.{attribute}: referenced, but not local")
        return self.attributes[(logical_id, attribute)]


def substitute(definition: str, values: dict[str, str]) -> str:
    """DefinitionSubstitutions: replace ${Name} in the ASL text, failing on any left over."""
    text = re.sub(r"\$\{([A-Za-z0-9]+)\}", lambda m: values[m.group(1)], definition)
    json.loads(text)  # a definition that no longer parses is a bug here, not in moto
    return text
