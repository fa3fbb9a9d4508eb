"""The error catalogue (backdrop/error_codes.py) is the whole truth: the tables of
docs/reference/errors.md are what it generates, every code the source emits is in it, every
entry is emitted somewhere, and its statuses and retry policies are what the API and the
workflow really do."""

from __future__ import annotations

import ast
import json
import re
import sys
from collections import defaultdict
from collections.abc import Iterator
from functools import cache
from http import HTTPStatus
from pathlib import Path
from typing import Any, cast

import pytest
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from backdrop import error_codes
from backdrop.api import errors as api_errors
from backdrop.batches.store import BatchNotFound
from backdrop.error_codes import CATALOGUE, WORKFLOW_RETRIES, Retry
from backdrop.jobs import JobNotFound
from backdrop.providers import errors
from backdrop.workflow import failures
from backdrop_local import docs_tables
from backdrop_local.api_front import DEFAULT_STATUS
from backdrop_local.template import Template
from tests.conftest import ROOT, load_event

SRC = ROOT / "src" / "backdrop"
GENERATION_ASL = json.loads((ROOT / "statemachine" / "generation.asl.json").read_text())
CATALOGUED = set(error_codes.BY_NAME)
# Step Functions' own errors, as opposed to our exception classes' names.
STATES_ERROR = re.compile(r"^(States|Sandbox|Lambda)\.")


# --- the scan: every string the source gives as an error code -----------------------------

Sites = dict[str, set[str]]  # code -> where ("path:line")
_DEPTH = 4  # how far a name is followed back to the strings assigned to it


class _Scan:
    """One pass over some modules' syntax trees. A code is given as:
    - an argument named `code` of any call (`JobError(code=...)`), or the argument at the
      place of a `code` parameter (`Refused("x", ...)`, `ApiError(status, "x", ...)`, a
      helper's `_invalid(field, reason, "x")`, subclasses' constructors too);
    - the default of a `code` parameter (`def field_error(..., code="invalid_request")`);
    - a class attribute `code = "..."` (the provider errors');
    - a comparison with a code (`exc.code == "x"`, `code in ("x", "y")`);
    - a lookup in the catalogue (`error_codes.get("x")`).
    A name is followed to the strings assigned to it in its function (`code = "a" if ...
    else "b"`, `code, why = ("a", ...) if ... else ("b", ...)`)."""

    def __init__(self, modules: dict[str, ast.Module]) -> None:
        self.modules = modules
        self.sites: Sites = defaultdict(set)  # given as a code
        self.compared: Sites = defaultdict(set)  # only compared with one
        self.statuses: dict[str, set[tuple[int, str]]] = defaultdict(set)  # ApiError's
        self.positions = self._code_positions()

    def run(self) -> _Scan:
        for path, tree in self.modules.items():
            for scope in [tree, *self._functions(tree)]:
                self._scope(path, scope)
        return self

    # Which callables take a code, and at which place: {name: {module: index or None}}.
    def _code_positions(self) -> dict[str, dict[str, int | None]]:
        positions: dict[str, dict[str, int | None]] = defaultdict(dict)
        bases: dict[str, tuple[str, list[str]]] = {}
        for path, tree in self.modules.items():
            methods: set[int] = set()
            for node in ast.walk(tree):
                if not isinstance(node, ast.ClassDef):
                    continue
                bases[node.name] = (path, [_name(b) for b in node.bases])
                for method in node.body:
                    if isinstance(method, ast.FunctionDef | ast.AsyncFunctionDef):
                        methods.add(id(method))
                        index = _code_index(method)
                        # Called on the class (its __init__) or on an instance: no `self`.
                        name = node.name if method.name == "__init__" else method.name
                        positions[name].setdefault(path, None if index is None else index - 1)
            for function in self._functions(tree):
                if id(function) not in methods:
                    positions[function.name].setdefault(path, _code_index(function))
        changed = True
        while changed:  # a subclass without its own __init__ takes its base's
            changed = False
            for name, (path, names) in bases.items():
                if path in positions.get(name, {}):
                    continue
                for base in names:
                    index = _unique(positions.get(base, {}), path)
                    if index is not None:
                        positions[name][path] = index
                        changed = True
                        break
        return positions

    def _functions(self, tree: ast.Module) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                yield node

    def _own_nodes(self, scope: ast.AST) -> Iterator[ast.AST]:
        """The nodes of `scope` that are not in a function nested in it (each is a scope)."""
        pending = list(ast.iter_child_nodes(scope))
        while pending:
            node = pending.pop()
            yield node
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                pending.extend(ast.iter_child_nodes(node))

    def _scope(self, path: str, scope: ast.AST) -> None:
        if isinstance(scope, ast.FunctionDef | ast.AsyncFunctionDef):
            index = _code_index(scope)
            if index is not None:
                default = _default(scope, index)
                if default is not None:
                    self._add(path, default, scope)
        for node in self._own_nodes(scope):
            if isinstance(node, ast.Call):
                self._call(path, node, scope)
            elif isinstance(node, ast.Compare):
                self._compare(path, node, scope)
            elif isinstance(node, ast.ClassDef):
                for statement in node.body:
                    value = _code_attribute(statement)
                    if value is not None:
                        self._add(path, value, scope)

    def _call(self, path: str, call: ast.Call, scope: ast.AST) -> None:
        given = [k.value for k in call.keywords if k.arg == "code"]
        callee = _name(call.func)
        index = _unique(self.positions.get(callee, {}), path)
        if index is not None and index < len(call.args):
            given.append(call.args[index])
        if callee == "get" and _name(getattr(call.func, "value", None)) == "error_codes":
            given += call.args[:1]
        for value in given:
            codes = self._add(path, value, scope)
            status = _http_status(call.args[0]) if callee == "ApiError" and call.args else None
            if status is not None:
                for code in codes:
                    self.statuses[code].add((status, f"{path}:{call.lineno}"))

    def _compare(self, path: str, compare: ast.Compare, scope: ast.AST) -> None:
        sides = [compare.left, *compare.comparators]
        if any(_name(side) == "code" for side in sides):
            for side in sides:
                for element in side.elts if isinstance(side, ast.Tuple | ast.Set) else [side]:
                    if isinstance(element, ast.Constant):
                        self._add(path, element, scope, self.compared)

    def _add(
        self, path: str, value: ast.expr, scope: ast.AST, sites: Sites | None = None
    ) -> set[str]:
        codes = self._strings(value, scope, _DEPTH)
        for code in codes:
            (self.sites if sites is None else sites)[code].add(f"{path}:{value.lineno}")
        return codes

    def _strings(self, value: ast.expr | None, scope: ast.AST, depth: int) -> set[str]:
        if value is None or depth == 0:
            return set()
        if isinstance(value, ast.Constant):
            return {value.value} if isinstance(value.value, str) else set()
        if isinstance(value, ast.IfExp):
            return self._strings(value.body, scope, depth) | self._strings(
                value.orelse, scope, depth
            )
        if isinstance(value, ast.BoolOp):
            return set().union(*(self._strings(v, scope, depth) for v in value.values))
        if isinstance(value, ast.Name):
            return self._assigned(value.id, scope, depth - 1)
        return set()  # an attribute, a call, a subscript: passed on, given elsewhere

    def _assigned(self, name: str, scope: ast.AST, depth: int) -> set[str]:
        found: set[str] = set()
        if isinstance(scope, ast.FunctionDef | ast.AsyncFunctionDef):
            names = [a.arg for a in (*scope.args.posonlyargs, *scope.args.args)]
            if name in names:
                found |= self._strings(_default(scope, names.index(name)), scope, depth)
        for node in self._own_nodes(scope):
            targets: list[ast.expr] = []
            value: ast.expr | None = None
            if isinstance(node, ast.Assign):
                targets, value = node.targets, node.value
            elif isinstance(node, ast.AnnAssign | ast.For):
                targets = [node.target]
                value = node.value if isinstance(node, ast.AnnAssign) else node.iter
            for target in targets:
                if isinstance(target, ast.Name) and target.id == name:
                    if isinstance(node, ast.For) and isinstance(value, ast.Tuple | ast.List):
                        for element in value.elts:
                            found |= self._strings(element, scope, depth)
                    else:
                        found |= self._strings(value, scope, depth)
                elif isinstance(target, ast.Tuple):
                    places = [_name(e) for e in target.elts]
                    if name in places:
                        found |= self._element(value, places.index(name), scope, depth)
        return found

    def _element(self, value: ast.expr | None, index: int, scope: ast.AST, depth: int) -> set[str]:
        if isinstance(value, ast.Tuple) and index < len(value.elts):
            return self._strings(value.elts[index], scope, depth)
        if isinstance(value, ast.IfExp):
            return self._element(value.body, index, scope, depth) | self._element(
                value.orelse, index, scope, depth
            )
        return set()


def _name(node: ast.AST | None) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _code_index(function: ast.FunctionDef | ast.AsyncFunctionDef) -> int | None:
    names = [a.arg for a in (*function.args.posonlyargs, *function.args.args)]
    return names.index("code") if "code" in names else None


def _default(function: ast.FunctionDef | ast.AsyncFunctionDef, index: int) -> ast.expr | None:
    positional = [*function.args.posonlyargs, *function.args.args]
    first = len(positional) - len(function.args.defaults)
    return function.args.defaults[index - first] if index >= first else None


def _unique(by_module: dict[str, int | None], path: str) -> int | None:
    # The module's own callable of that name, else the one module's that takes a code.
    if path in by_module:
        return by_module[path]
    taking = {index for index in by_module.values() if index is not None}
    return taking.pop() if len(taking) == 1 else None


def _code_attribute(statement: ast.stmt) -> ast.expr | None:
    """What a class body's `code = ...` (or `code: T = ...`) assigns."""
    if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
        target: ast.expr = statement.targets[0]
    elif isinstance(statement, ast.AnnAssign):
        target = statement.target
    else:
        return None
    return statement.value if isinstance(target, ast.Name) and target.id == "code" else None


def _http_status(node: ast.expr) -> int | None:
    if isinstance(node, ast.Attribute) and _name(node.value) == "HTTPStatus":
        return HTTPStatus[node.attr].value
    return None


def _parse(paths: list[Path]) -> dict[str, ast.Module]:
    return {str(p.relative_to(ROOT)): ast.parse(p.read_text(), str(p)) for p in paths}


@cache
def _scan_source() -> _Scan:
    paths = [p for p in sorted(SRC.rglob("*.py")) if p.name != "error_codes.py"]
    return _Scan(_parse(paths)).run()


def _gateway_responses() -> dict[str, tuple[str, int]]:
    """API Gateway's own answers (template.yaml): {code: (response type, status)}."""
    answers: dict[str, tuple[str, int]] = {}
    for resource in Template().body["Resources"].values():
        for kind, spec in resource.get("Properties", {}).get("GatewayResponses", {}).items():
            body = spec["ResponseTemplates"]["application/json"]
            code = re.search(r'"code":\s*"([^"]+)"', body)
            assert code is not None, kind
            status = spec["StatusCode"] if "StatusCode" in spec else DEFAULT_STATUS[kind]
            answers[code[1]] = (kind, int(status))
    return answers


def _emitted() -> Sites:
    """Every code the service can answer or record, with where it comes from."""
    sites: Sites = defaultdict(set, {c: set(w) for c, w in _scan_source().sites.items()})
    for code, (kind, _) in _gateway_responses().items():
        sites[code].add(f"template.yaml GatewayResponses {kind}")
    for cls in errors.ProviderError.__subclasses__():
        sites[cls.code].add(f"providers/errors.py {cls.__name__}")
    return sites


def _referenced_names() -> set[str]:
    """Every name the source uses other than to catch it or in an annotation."""
    ignored: set[int] = set()
    used: set[str] = set()
    for tree in _parse(sorted(SRC.rglob("*.py"))).values():
        for node in ast.walk(tree):
            beside = [
                getattr(node, "type", None) if isinstance(node, ast.ExceptHandler) else None,
                getattr(node, "annotation", None),
                getattr(node, "returns", None),
            ]
            for part in beside:
                if isinstance(part, ast.AST):
                    ignored |= {id(n) for n in ast.walk(part)}
        for node in ast.walk(tree):
            loaded = isinstance(node, ast.Name | ast.Attribute) and isinstance(node.ctx, ast.Load)
            if loaded and id(node) not in ignored:
                used.add(_name(node))
    return used


def _asl_errors(definition: dict[str, Any]) -> set[str]:
    named: set[str] = set()
    for state in definition["States"].values():
        for rule in [*state.get("Retry", []), *state.get("Catch", [])]:
            named |= set(rule["ErrorEquals"])
    return named


# --- the tests -----------------------------------------------------------------------------


def test_the_documented_tables_are_the_catalogues() -> None:
    page = docs_tables.ERRORS_PAGE.read_text()
    assert page == docs_tables.errors_page(), (
        "docs/reference/errors.md differs from backdrop/error_codes.py: run `make docs-tables`"
    )


def test_every_code_the_source_emits_is_catalogued() -> None:
    named = [*_emitted().items(), *_scan_source().compared.items()]
    missing = {code: sorted(where) for code, where in named if code not in CATALOGUED}
    assert not missing, f"codes in the source but not in backdrop/error_codes.py: {missing}"


def test_every_catalogued_code_is_emitted_somewhere() -> None:
    emitted = set(_emitted())
    used, asl = _referenced_names(), _asl_errors(GENERATION_ASL)
    for code in CATALOGUE:
        raised = [e for e in code.error_types if (e in asl if STATES_ERROR.match(e) else e in used)]
        assert code.name in emitted or raised, f"{code.name} is catalogued but emitted nowhere"
        # Each of its errorTypes is raised (a class the code uses) or Step Functions' own
        # (named by the workflow).
        unused = sorted(set(code.error_types) - set(raised))
        assert not unused, f"{code.name}: errorTypes raised nowhere: {unused}"


def test_the_scan_finds_each_way_a_code_is_given() -> None:
    source = """
class Refused(Exception):
    def __init__(self, code, message): ...
class ImageRejected(Refused): ...
class ApiError(Exception):
    def __init__(self, status, code, message): ...
class Boom(Exception):
    code = "class_attribute"
def helper(field, code="parameter_default"): ...
def run(exc, status):
    Refused("refused", "m")
    ImageRejected("subclass", "m")
    ApiError(HTTPStatus.CONFLICT, "api_error", "m")
    JobError(code="keyword", message="m")
    helper("f", "helper_argument")
    code = "one" if status else "other"
    ApiError(HTTPStatus.BAD_REQUEST, code, "m")
    kind, why = ("unpacked", "m") if status else ("unpacked_too", "m")
    JobError(code=kind, message=why)
    if exc.code == "compared" or exc.code in ("member",):
        error_codes.get("looked_up")
    JobError(code=exc.code, message="passed on, not given here")
"""
    scan = _Scan({"module.py": ast.parse(source)}).run()
    assert set(scan.compared) == {"compared", "member"}
    assert set(scan.sites) == {
        "class_attribute",
        "parameter_default",
        "refused",
        "subclass",
        "api_error",
        "keyword",
        "helper_argument",
        "one",
        "other",
        "unpacked",
        "unpacked_too",
        "looked_up",
    }
    assert scan.statuses["one"] == {(400, "module.py:17")}


def test_where_the_source_writes_a_status_it_is_the_catalogued_one() -> None:
    for name, sites in _scan_source().statuses.items():
        for status, where in sites:
            assert error_codes.get(name).status == status, f"{where} answers {name} {status}"
    for name, (kind, status) in _gateway_responses().items():
        assert error_codes.get(name).status == status, f"API Gateway answers {kind} {status}"


@pytest.mark.parametrize(
    "raised",
    [
        JobNotFound("x"),
        BatchNotFound("x"),
        IdempotencyValidationError(),
        IdempotencyAlreadyInProgressError(),
        RequestUnsupportedContentType("text/plain", []),
        RequestValidationError([{"type": "json_invalid", "loc": ("body",), "msg": "x"}]),
        RequestValidationError([{"type": "missing", "loc": ("body", "count"), "msg": "x"}]),
        UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
        KeyError("a bug"),
        None,  # no such route
    ],
    ids=repr,
)
def test_the_api_answers_each_failure_with_its_codes_catalogued_status(
    raised: Exception | None,
) -> None:
    app = APIGatewayRestResolver()
    api_errors.register(app)

    @app.get("/boom")
    def _boom() -> None:
        assert raised is not None
        raise raised

    event = load_event("api-get-generation") | {"path": "/boom" if raised else "/nowhere"}
    answer = app.resolve(event, cast(LambdaContext, _Context()))
    code = json.loads(answer["body"])["error"]["code"]
    assert answer["statusCode"] == error_codes.get(code).status, code


class _Context:
    function_name = "api"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:api"
    aws_request_id = "request"


def test_the_workflow_retries_what_the_catalogue_says() -> None:
    retried: dict[str, set[int]] = defaultdict(set)  # errorType -> the MaxAttempts it gets
    for state in GENERATION_ASL["States"].values():
        for rule in state.get("Retry", []):
            for error in rule["ErrorEquals"]:
                retried[error].add(rule["MaxAttempts"])
    for code in CATALOGUE:
        attempts = set().union(*(retried.get(e, set()) for e in code.error_types))
        if code.retry is Retry.BACKOFF:
            assert attempts == {WORKFLOW_RETRIES}, (code.name, attempts)
        else:
            assert not attempts, f"the workflow retries {code.name}; the catalogue says no"
    from backdrop.workflow import provider_tasks

    assert provider_tasks.PROVIDER_RETRIES == WORKFLOW_RETRIES


def test_each_error_the_workflow_catches_records_its_catalogued_code() -> None:
    for code in CATALOGUE:
        for error in code.error_types:
            cause = json.dumps({"errorType": error, "errorMessage": "what happened"})
            assert failures.error_from_failure(error, cause).code == code.name, error
    subclasses = {cls.__name__ for cls in errors.ProviderError.__subclasses__()}
    types = {e for code in CATALOGUE for e in code.error_types if not STATES_ERROR.match(e)}
    assert types == subclasses


def test_the_catalogue_is_cheap_to_import() -> None:
    tree = ast.parse((SRC / "error_codes.py").read_text())
    imported = {
        (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert {name.split(".")[0] for name in imported} <= {*sys.stdlib_module_names, "__future__"}
