"""IAM's evaluation of identity-based policies, for the calls a function makes.

What AWS does for one role in one account: an explicit Deny wins, else an Allow that
matches the action, the resource and every condition, else the call is denied. Actions
match case-insensitively with `*` and `?`; a resource ARN matches component by component
(partition, service, region, account), the resource part as a whole, so `*` in
`execution:name/*` spans the `:` of a child execution's name, as AWS documents. Condition
operators outside the table below raise, so a policy this model cannot judge fails loudly.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any


class UnsupportedPolicy(Exception):
    """A policy element the local IAM model does not evaluate."""


@dataclass(frozen=True)
class Request:
    """One permission a call needs: IAM checks each separately (a transaction, a copy)."""

    action: str  # service:Action
    resource: str  # an ARN, or * for actions without resource-level permissions
    context: Mapping[str, str] = field(default_factory=dict)  # condition keys, e.g. s3:prefix


@lru_cache(maxsize=4096)
def _pattern(text: str, *, ignore_case: bool) -> re.Pattern[str]:
    # IAM knows only * and ? (no [...] classes, as fnmatch has).
    escaped = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in text)
    return re.compile(escaped, re.IGNORECASE if ignore_case else 0)


def _like(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    return _pattern(pattern, ignore_case=ignore_case).fullmatch(value) is not None


def action_matches(pattern: str, action: str) -> bool:
    return _like(pattern, action, ignore_case=True)


def arn_matches(pattern: str, arn: str) -> bool:
    if pattern == "*":
        return True
    wanted, given = pattern.split(":", 5), arn.split(":", 5)
    if len(wanted) != 6 or len(given) != 6:
        return _like(pattern, arn)
    return all(_like(w, g) for w, g in zip(wanted, given, strict=True))


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _numeric(compare: Callable[[float, float], bool]) -> Callable[[str, str], bool]:
    return lambda given, wanted: compare(float(given), float(wanted))


# Operator -> how one value of the request compares with one value of the policy.
_OPERATORS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda given, wanted: given == wanted,
    "StringEqualsIgnoreCase": lambda given, wanted: given.lower() == wanted.lower(),
    "StringLike": lambda given, wanted: _like(wanted, given),
    # IAM matches both ARN operators component by component, wildcards included.
    "ArnEquals": lambda given, wanted: arn_matches(wanted, given),
    "ArnLike": lambda given, wanted: arn_matches(wanted, given),
    "Bool": lambda given, wanted: given.lower() == str(wanted).lower(),
    "NumericEquals": _numeric(lambda a, b: a == b),
    "NumericLessThan": _numeric(lambda a, b: a < b),
    "NumericLessThanEquals": _numeric(lambda a, b: a <= b),
    "NumericGreaterThan": _numeric(lambda a, b: a > b),
    "NumericGreaterThanEquals": _numeric(lambda a, b: a >= b),
}
_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
    "NumericNotEquals": "NumericEquals",
}


# The condition keys the calls' rules put in a request (calls.py), when the call has them:
# a policy conditioned on any other key (aws:SourceIp, aws:RequestedRegion, ...) cannot be
# judged here, and is refused rather than read as "the key is absent".
MODELLED_KEYS = frozenset({"s3:prefix", "cloudwatch:namespace"})


def _condition_holds(operator: str, key: str, wanted: Any, context: Mapping[str, str]) -> bool:
    if operator.startswith(("ForAnyValue:", "ForAllValues:")):
        raise UnsupportedPolicy(f"{operator}: multi-valued condition keys are not modelled")
    if key.lower() not in MODELLED_KEYS:
        raise UnsupportedPolicy(f"condition key {key} is not modelled")
    if_exists = operator.endswith("IfExists")
    operator = operator.removesuffix("IfExists")
    known = operator == "Null" or operator in _OPERATORS or operator in _NEGATED
    if not known:
        raise UnsupportedPolicy(f"condition operator {operator} is not modelled")
    # Condition keys are case-insensitive.
    given = next((v for k, v in context.items() if k.lower() == key.lower()), None)
    if operator == "Null":
        return (given is None) == (str(wanted).lower() == "true")
    if given is None:
        # A key absent from the request: ...IfExists and negated operators hold, the rest
        # do not (IAM's rule).
        return if_exists or operator in _NEGATED
    if operator in _NEGATED:
        compare = _OPERATORS[_NEGATED[operator]]
        return not any(compare(given, str(w)) for w in _as_list(wanted))
    compare = _OPERATORS[operator]
    return any(compare(given, str(w)) for w in _as_list(wanted))


@dataclass(frozen=True)
class Statement:
    effect: str
    actions: tuple[str, ...]
    not_actions: tuple[str, ...]
    resources: tuple[str, ...]
    not_resources: tuple[str, ...]
    conditions: Mapping[str, Mapping[str, Any]]

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> Statement:
        unknown = set(raw) - {
            "Sid",
            "Effect",
            "Action",
            "NotAction",
            "Resource",
            "NotResource",
            "Condition",
        }
        if unknown:
            raise UnsupportedPolicy(f"statement elements {sorted(unknown)} are not modelled")
        if ("Resource" in raw) == ("NotResource" in raw):
            raise UnsupportedPolicy("a statement needs exactly one of Resource and NotResource")
        return cls(
            effect=raw["Effect"],
            actions=tuple(_as_list(raw.get("Action", []))),
            not_actions=tuple(_as_list(raw.get("NotAction", []))),
            resources=tuple(_as_list(raw.get("Resource", []))),
            not_resources=tuple(_as_list(raw.get("NotResource", []))),
            conditions=raw.get("Condition", {}),
        )

    def applies(self, request: Request) -> bool:
        if self.actions:
            if not any(action_matches(p, request.action) for p in self.actions):
                return False
        elif any(action_matches(p, request.action) for p in self.not_actions):
            return False
        if self.resources:
            if not any(arn_matches(p, request.resource) for p in self.resources):
                return False
        elif any(arn_matches(p, request.resource) for p in self.not_resources):
            return False
        return all(
            _condition_holds(operator, key, wanted, request.context)
            for operator, keys in self.conditions.items()
            for key, wanted in keys.items()
        )


@dataclass(frozen=True)
class Policy:
    """Every statement of a role's policies (inline and managed), in one list."""

    statements: tuple[Statement, ...]

    @classmethod
    def of(cls, documents: Iterable[Mapping[str, Any]]) -> Policy:
        return cls(
            tuple(
                Statement.parse(raw)
                for document in documents
                for raw in _as_list(document.get("Statement", []))
            )
        )

    def allows(self, request: Request) -> bool:
        applying = [s for s in self.statements if s.applies(request)]
        if any(s.effect == "Deny" for s in applying):
            return False
        return any(s.effect == "Allow" for s in applying)
