"""The documentation's generated pages, written into docs/reference/ from what they
describe: the error codes (backdrop/error_codes.py), the template's parameters
(template.yaml) and the HTTPS API (openapi.json). `python -m backdrop_local.docs_tables`
(`make docs-tables`) rewrites them; a test fails when a committed page differs from what
this writes (tests/unit/test_docs.py)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from backdrop.error_codes import CATALOGUE, WORKFLOW_RETRIES, ErrorCode, Kind, Retry
from backdrop_local.template import Template

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "reference"
ERRORS_PAGE = REFERENCE / "errors.md"
CONFIGURATION_PAGE = REFERENCE / "configuration.md"
API_PAGE = REFERENCE / "api.md"
OPENAPI = ROOT / "openapi.json"

_GENERATED = (
    "<!-- Generated from {source} by `make docs-tables` "
    "(local/backdrop_local/docs_tables.py): do not edit by hand. -->"
)


def _cell(text: str) -> str:
    """`text` as one Markdown table cell: no line breaks, pipes escaped, and outside code
    spans no `<` that Markdown would read as HTML (`inbox/<name>/`)."""
    spans = " ".join(str(text).split()).replace("|", "\\|").split("`")
    return "`".join(s if i % 2 else s.replace("<", "&lt;") for i, s in enumerate(spans))


def _table(headings: tuple[str, ...], rows: Sequence[tuple[Any, ...]]) -> str:
    lines = [
        "| " + " | ".join(headings) + " |",
        "| " + " | ".join("---" for _ in headings) + " |",
    ]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


# --- error codes ---------------------------------------------------------------------------

_RETRY = {
    Retry.NO: "no",
    Retry.BACKOFF: f"yes, {WORKFLOW_RETRIES} times",
    Retry.WAITS: "waits instead",
}


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def _status(code: ErrorCode) -> str:
    return "—" if code.status is None else str(code.status)


# Each kind's columns: a heading and what a code shows under it.
_COLUMNS: dict[Kind, tuple[tuple[str, Callable[[ErrorCode], str]], ...]] = {
    Kind.API: (
        ("status", _status),
        ("code", lambda c: f"`{c.name}`"),
        ("retry may help?", lambda c: _yes(c.may_retry)),
        ("meaning", lambda c: c.meaning),
    ),
    Kind.REFUSAL: (
        ("code", lambda c: f"`{c.name}`"),
        ("status (API)", _status),
        ("retry may help?", lambda c: _yes(c.may_retry)),
        ("meaning", lambda c: c.meaning),
    ),
    Kind.JOB: (
        ("code", lambda c: f"`{c.name}`"),
        ("retried by the workflow?", lambda c: "—" if c.retry is None else _RETRY[c.retry]),
        ("retry may help?", lambda c: _yes(c.may_retry)),
        ("meaning", lambda c: c.meaning),
    ),
}


def _codes(kind: Kind) -> list[ErrorCode]:
    # Sorted stably: the catalogue's order, but API errors by status, and elsewhere the
    # codes mostly seen as another kind last.
    codes = [code for code in CATALOGUE if kind in code.kinds]
    if kind is Kind.API:
        return sorted(codes, key=lambda code: code.status or 0)
    return sorted(codes, key=lambda code: code.kinds[0] is not kind)


def table(kind: Kind) -> str:
    """The Markdown table of every code of `kind`."""
    columns = _COLUMNS[kind]
    rows = [tuple(show(code) for _, show in columns) for code in _codes(kind)]
    return _table(tuple(heading for heading, _ in columns), rows)


_ERRORS_INTRO = """\
# Error codes

Every `code` the service answers or records, in three kinds (a few are of two). `code` is
stable: branch on it. These tables are generated from `src/backdrop/error_codes.py`
(`make docs-tables`; a test fails when they drift, and when the code emits a code not listed
there). "Retry may help?" says whether sending the same again, later, may succeed."""

_KIND_SECTIONS = {
    Kind.API: """\
## API errors

Answered by the API, its function or API Gateway itself, in the one
[error shape](../guides/api.md), with this status:""",
    Kind.REFUSAL: """\
## Refusals

What cannot work is refused before anything starts or is paid for: by the API, a 4xx
naming each field at fault in `details`; from the inbox, an event or a batch's item, a
`failed` job at once, with no provider call and no workflow execution, its message naming the
fields (see [What is refused before anything is paid for][refused]).

[refused]: ../guides/inbox.md#what-is-refused-before-anything-is-paid-for""",
    Kind.JOB: """\
## Job errors

A job's `error.code` once its work is under way (`status` `failed`, or `canceled`), and a
batch's or a batch item's (its report's `error_code`). "Retried by the workflow?" says what
the workflow does first, with exponential backoff and jitter; what it records is final.""",
}


def errors_page() -> str:
    """docs/reference/errors.md: every code, one section and table per kind."""
    parts = [_GENERATED.format(source="src/backdrop/error_codes.py"), _ERRORS_INTRO]
    parts += [f"{_KIND_SECTIONS[kind]}\n\n{table(kind)}" for kind in Kind]
    return "\n\n".join(parts) + "\n"


# --- the template's parameters ---------------------------------------------------------------


# What the parameters' own Description cannot say: a link, a remark.
_NOTES = {
    "PhotoroomModel": "`background-studio-beta-2025-03-17` is Photoroom's recommendation.",
    "PhotoroomRequestsPerMinute": "Photoroom staff have said 60.",
    "ProviderTimeoutSeconds": "Under the functions' own timeouts.",
    "InboxPresets": (
        "See [Drop images in a bucket]"
        "(../guides/inbox.md#options-metadata-then-the-folders-preset-then-the-stacks-defaults)."
    ),
    "BatchMaxConcurrency": "See [Backfill a catalogue](../guides/batches.md#limits-and-costs).",
    "ApiReservedConcurrency": "See [Before the first deploy](../getting-started/deploy.md).",
}


def _code(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, bool) else str(value)
    return "empty" if text == "" else f"`{text}`"


def _constraints(spec: dict[str, Any]) -> str:
    said = []
    if "AllowedValues" in spec:
        said.append("one of " + ", ".join(_code(v) for v in spec["AllowedValues"]))
    for low, high, unit in (
        (spec.get("MinValue"), spec.get("MaxValue"), ""),
        (spec.get("MinLength"), spec.get("MaxLength"), " characters"),
    ):
        if low is not None and high is not None:
            said.append(f"{low} to {high}{unit}")
        elif low is not None:
            said.append(f"at least {low}{unit}" if unit else f"≥ {low}")
        elif high is not None:
            said.append(f"≤ {high}{unit}")
    if "AllowedPattern" in spec:
        # A pipe inside a code span reads differently on GitHub and in mkdocs: such a
        # pattern is left to its ConstraintDescription (and template.yaml).
        pattern = spec["AllowedPattern"]
        said.append("a pattern (template.yaml)" if "|" in pattern else f"matches `{pattern}`")
    if "ConstraintDescription" in spec:
        said.append(f"({spec['ConstraintDescription']})")
    return "; ".join(said) or "—"


def parameters() -> dict[str, dict[str, Any]]:
    return dict(Template().body["Parameters"])


def configuration_page() -> str:
    """docs/reference/configuration.md: every template parameter."""
    rows: list[tuple[Any, ...]] = []
    for name, spec in parameters().items():
        description = " ".join([spec.get("Description", ""), _NOTES.get(name, "")]).strip()
        default = _code(spec["Default"]) if "Default" in spec else "none (required)"
        rows.append((f"`{name}`", spec["Type"], default, _constraints(spec), description))
    heading = ("parameter", "type", "default", "allowed values", "description")
    return (
        "\n\n".join(
            [
                _GENERATED.format(source="template.yaml's Parameters"),
                "# Configuration",
                "Template parameters: `sam deploy --parameter-overrides Name=Value` (or "
                "`parameter_overrides` in `samconfig.toml`), `--param Name=Value` for `backdrop "
                "local`. `backdrop preflight` checks each value against these constraints before "
                "a deploy ([Deploy](../getting-started/deploy.md)).",
                _table(heading, rows),
            ]
        )
        + "\n"
    )


# --- the HTTPS API ---------------------------------------------------------------------------

METHODS = ("get", "put", "post", "patch", "delete", "head", "options")


def _schema(schema: dict[str, Any] | None) -> str:
    """A schema in a few words: its name, else its type."""
    if not schema:
        return "—"
    if "$ref" in schema:
        return f"`{schema['$ref'].rsplit('/', 1)[-1]}`"
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            kinds = [_schema(s) for s in schema[key] if s.get("type") != "null"]
            nullable = any(s.get("type") == "null" for s in schema[key])
            return " or ".join(kinds) + (" or null" if nullable else "")
    if schema.get("type") == "array":
        return f"array of {_schema(schema.get('items'))}"
    if "enum" in schema:
        return " or ".join(f"`{value}`" for value in schema["enum"])
    return str(schema.get("type", "any")) + (f" ({schema['format']})" if "format" in schema else "")


def _range(schema: dict[str, Any]) -> str:
    bits = []
    for key, word in (("minimum", "≥"), ("maximum", "≤"), ("minLength", "length ≥")):
        if key in schema:
            value = schema[key]
            bits.append(f"{word} {int(value) if float(value).is_integer() else value}")
    if "maxLength" in schema:
        bits.append(f"length ≤ {schema['maxLength']}")
    for variant in schema.get("anyOf", []):
        if variant.get("type") != "null":
            bits.append(_range(variant))
    return ", ".join(bit for bit in bits if bit)


def _operation(method: str, path: str, op: dict[str, Any]) -> str:
    parts = [f"### `{method.upper()} {path}`"]
    if op.get("summary"):
        parts.append(f"**{op['summary']}**")
    if op.get("description"):
        parts.append(op["description"].strip())
    if op.get("operationId"):
        parts.append(f"Operation id: `{op['operationId']}`.")
    params = op.get("parameters", [])
    if params:
        rows: list[tuple[Any, ...]] = []
        for p in params:
            schema = p.get("schema", {})
            kind = _schema(schema)
            limits = _range(schema)
            if "default" in schema:
                limits = ", ".join(filter(None, [limits, f"default `{schema['default']}`"]))
            rows.append(
                (
                    f"`{p['name']}`",
                    p.get("in", ""),
                    "yes" if p.get("required") else "no",
                    kind + (f" ({limits})" if limits else ""),
                    p.get("description", schema.get("description", "")),
                )
            )
        parts.append("Parameters:")
        parts.append(_table(("name", "in", "required", "type", "description"), rows))
    body = op.get("requestBody")
    if body:
        required = "required" if body.get("required") else "optional"
        bodies = [
            f"`{media}`: {_schema(content.get('schema'))}"
            for media, content in body.get("content", {}).items()
        ]
        parts.append(f"Request body ({required}): " + "; ".join(bodies) + ".")
    responses = op.get("responses", {})
    if responses:
        rows = []
        for status in sorted(responses, key=str):
            answer = responses[status]
            schemas = {_schema(c.get("schema")) for c in answer.get("content", {}).values()}
            rows.append(
                (str(status), answer.get("description", ""), ", ".join(sorted(schemas)) or "—")
            )
        parts.append("Responses:")
        parts.append(_table(("status", "description", "body"), rows))
    return "\n\n".join(parts)


def load_openapi() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(OPENAPI.read_text())
    return document


def api_page(document: dict[str, Any] | None = None) -> str:
    """docs/reference/api.md: every operation of `document` (openapi.json), grouped by its
    first tag ("default" for an operation without one)."""
    document = load_openapi() if document is None else document
    tags: dict[str, list[str]] = {}
    for path, item in document.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                op = item[method]
                tag = (op.get("tags") or ["default"])[0]
                tags.setdefault(tag, []).append(_operation(method, path, op))
    described = {tag["name"]: tag.get("description", "") for tag in document.get("tags", [])}
    order = [name for name in described if name in tags]
    order += [name for name in tags if name not in described]  # as they first appear
    info = document.get("info", {})
    parts = [
        _GENERATED.format(source="openapi.json"),
        "# API reference",
        f"{info.get('title', 'The API')} {info.get('version', '')}: "
        + info.get("description", "").strip(),
        "The document itself is `openapi.json` at the repository's root (`make openapi` "
        "writes it from the code), served by every stack at `/v1/openapi.json`, with Swagger "
        "UI at `/v1/docs`. How to use it: the [API guide](../guides/api.md); every error "
        "code: [Error codes](errors.md).",
    ]
    for tag in order:
        parts.append(f"## {tag}")
        if described.get(tag):
            parts.append(described[tag])
        parts += tags[tag]
    return "\n\n".join(parts) + "\n"


# --- all of them -----------------------------------------------------------------------------


def pages() -> dict[Path, str]:
    """Every generated page and what it should hold now."""
    return {
        ERRORS_PAGE: errors_page(),
        CONFIGURATION_PAGE: configuration_page(),
        API_PAGE: api_page(),
    }


def main() -> int:
    for page, text in pages().items():
        if not page.exists() or page.read_text() != text:
            page.parent.mkdir(parents=True, exist_ok=True)
            page.write_text(text)
            print(f"rewrote {page.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
