"""README.md's error tables, one per kind of code, rewritten from the catalogue
(backdrop/error_codes.py) between their markers: `python -m backdrop_local.docs_tables`
(`make docs-tables`). A test fails when the README differs from what this writes."""

from __future__ import annotations

import sys
from pathlib import Path

from backdrop.error_codes import CATALOGUE, WORKFLOW_RETRIES, ErrorCode, Kind, Retry

README = Path(__file__).resolve().parents[2] / "README.md"

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
_COLUMNS = {
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
    lines = [
        "| " + " | ".join(heading for heading, _ in columns) + " |",
        "| " + " | ".join("---" for _ in columns) + " |",
    ]
    for code in _codes(kind):
        cells = (show(code).replace("|", "\\|") for _, show in columns)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _markers(kind: Kind) -> tuple[str, str]:
    return f"<!-- error-codes:{kind.value}:start -->", f"<!-- error-codes:{kind.value}:end -->"


def rewrite(text: str) -> str:
    """`text` with every kind's table replaced by the catalogue's. Each kind's markers must
    be there exactly once: a table moved or deleted by hand is an error, not skipped."""
    for kind in Kind:
        start, end = _markers(kind)
        head, _, rest = text.partition(start)
        if text.count(start) != 1 or rest.count(end) != 1 or text.count(end) != 1:
            raise ValueError(f"README.md needs one {start} … {end} block, in that order")
        text = f"{head}{start}\n{table(kind)}\n{end}{rest.partition(end)[2]}"
    return text


def main() -> int:
    before = README.read_text()
    after = rewrite(before)
    if after != before:
        README.write_text(after)
        print(f"rewrote the error tables of {README.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
