"""Read template.yaml so the local stack builds what SAM deploys: the same resources,
names resolved locally, the same environment, the same state machine definition."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    handler: str
    timeout: int
    environment: dict[str, Any]
    events: dict[str, Any]


class Template:
    def __init__(self, path: Path = TEMPLATE_PATH) -> None:
        self.path = path
        self.body: dict[str, Any] = yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506
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

    def functions(self) -> list[FunctionSpec]:
        globals_ = self.body.get("Globals", {}).get("Function", {})
        shared_env = globals_.get("Environment", {}).get("Variables", {})
        return [
            FunctionSpec(
                logical_id=logical_id,
                handler=props["Handler"],
                timeout=int(props.get("Timeout", globals_.get("Timeout", 3))),
                environment={**shared_env, **props.get("Environment", {}).get("Variables", {})},
                events=props.get("Events", {}),
            )
            for logical_id, props in self.of_type("AWS::Serverless::Function").items()
        ]

    def state_machine(self) -> tuple[str, str, dict[str, Any]]:
        """(logical id, definition text with ${...} placeholders, substitutions)."""
        ((logical_id, props),) = self.of_type("AWS::Serverless::StateMachine").items()
        definition = (self.path.parent / props["DefinitionUri"]).read_text()
        return logical_id, definition, props.get("DefinitionSubstitutions", {})


class Resolver:
    """Evaluates the intrinsic functions the template uses, against local values."""

    def __init__(self, refs: dict[str, str], attributes: dict[tuple[str, str], str]) -> None:
        self.refs = refs
        self.attributes = attributes

    def __call__(self, value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            ((name, arg),) = value.items()
            if name == "Ref":
                return self.refs[arg]
            if name == "Fn::GetAtt":
                return self.attributes[(arg[0], arg[1])]
            if name == "Fn::Sub":
                return re.sub(r"\$\{([^}]+)\}", lambda m: self._sub(m.group(1)), arg)
        if isinstance(value, dict):
            return {key: self(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self(item) for item in value]
        return value

    def _sub(self, name: str) -> str:
        if "." in name:
            logical_id, attribute = name.split(".", 1)
            return self.attributes[(logical_id, attribute)]
        return self.refs[name]


def substitute(definition: str, values: dict[str, str]) -> str:
    """DefinitionSubstitutions: replace ${Name} in the ASL text, failing on any left over."""
    text = re.sub(r"\$\{([A-Za-z0-9]+)\}", lambda m: values[m.group(1)], definition)
    json.loads(text)  # a definition that no longer parses is a bug here, not in moto
    return text
