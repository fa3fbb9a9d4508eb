"""A batch's items as rows: the manifests callers upload (CSV with a header, or JSON
Lines), read and checked whole before anything starts, and the one CSV form the batch
workflow's Map reads (`items.csv`: a manifest's rows as checked, or a retry's failed ones).

A row names one image, by `key` (an object in a catalogue folder of the input bucket) or
`image_url`, and may set its own `prompt`, `count`, `format`, `provider`, `seed` and `sku`
over the batch's options, and its `publish_key` (ReviewMode=required: where its approved
image goes; no two rows may share one)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Annotated, Any, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from backdrop.contracts.requests import PublicImageUrl, PublishKey
from backdrop.domain import Problem, Refused, exactly_one, image_url_fits
from backdrop.storage import CATALOG_PREFIX, INBOX_PREFIX

# Folders of the input bucket a batch may read: the inbox's and the catalogue's. uploads/
# holds single photos and manifests; results live in the other bucket.
BATCH_FOLDERS = (INBOX_PREFIX, CATALOG_PREFIX)
MAX_ROWS = 50_000
MAX_MANIFEST_BYTES = 20 * 1024 * 1024
MAX_PROBLEMS = 10  # rows named in one refusal
OPTION_COLUMNS = ("prompt", "count", "format", "provider", "seed")
COLUMNS = ("key", "image_url", *OPTION_COLUMNS, "sku", "publish_key")
# items.csv: the manifest's line first, so a report names it.
ITEM_COLUMNS = ("line", *COLUMNS)
MANIFEST_TYPES = {"csv": "text/csv", "jsonl": "application/x-ndjson"}


def folder_refusal(key: str) -> str | None:
    """Why a batch may not read `key` (or a prefix), or None."""
    if not key.startswith(BATCH_FOLDERS):
        return f"must be under {' or '.join(BATCH_FOLDERS)} of the input bucket"
    if ".." in key.split("/"):
        return "must not hold '..'"
    return None


def _blank_is_none(value: Any) -> Any:
    # A CSV cell left empty means "not set", as a missing JSON field does.
    if isinstance(value, str) and not value.strip():
        return None
    return value.strip() if isinstance(value, str) else value


Cell = BeforeValidator(_blank_is_none)


class ManifestRow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: Annotated[str | None, Cell] = Field(default=None, max_length=1024)
    image_url: Annotated[PublicImageUrl | None, Cell] = None
    prompt: Annotated[str | None, Cell] = None
    count: Annotated[int | None, Cell] = None
    format: Annotated[str | None, Cell] = None
    provider: Annotated[str | None, Cell] = None
    seed: Annotated[int | None, Cell] = None
    sku: Annotated[str | None, Cell] = Field(default=None, max_length=256)
    publish_key: Annotated[PublishKey | None, Cell] = None

    @model_validator(mode="after")
    def _one_image(self) -> Self:
        exactly_one(key=self.key, image_url=self.image_url)
        if self.key is not None:
            reason = folder_refusal(self.key)
            if reason is not None:
                raise ValueError(f"key {reason}")
            if self.key.endswith("/"):
                raise ValueError("key names a folder, not an image")
        image_url_fits(self.image_url)
        return self

    def options(self) -> dict[str, Any]:
        return self.model_dump(include=set(OPTION_COLUMNS), exclude_none=True)

    def cells(self, line: int) -> dict[str, str]:
        """The row as items.csv holds it."""
        values = self.model_dump(mode="json") | {"line": line}
        return {name: "" if values[name] is None else str(values[name]) for name in ITEM_COLUMNS}


def read_manifest(
    data: bytes, kind: str, *, check: Callable[[ManifestRow], None]
) -> list[tuple[int, ManifestRow]]:
    """Every row of a manifest with its line, each checked (its own fields, then `check`,
    which raises Refused); Refused naming the first rows at fault otherwise, or what makes
    the file unreadable."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise _refused(f"the manifest is larger than {MAX_MANIFEST_BYTES // 2**20} MB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _refused("the manifest is not UTF-8 text") from None
    raw = _csv_rows(text) if kind == "csv" else _jsonl_rows(text)
    rows: list[tuple[int, ManifestRow]] = []
    problems: list[Problem] = []
    publishing: dict[str, int] = {}  # publish_key -> the line that names it first
    for line, values in raw:
        if len(rows) + len(problems) >= MAX_ROWS:
            raise _refused(f"the manifest has more than {MAX_ROWS} rows; split it")
        try:
            row = ManifestRow.model_validate(values)
            check(row)
        except ValidationError as exc:
            problems += [
                Problem(
                    f"line {line}: {'.'.join(map(str, e['loc'])) or 'row'}",
                    e["msg"].removeprefix("Value error, "),
                )
                for e in exc.errors(include_url=False)
            ]
        except Refused as exc:
            problems += [Problem(f"line {line}: {p.field}", p.reason) for p in exc.problems]
        else:
            first = publishing.setdefault(row.publish_key, line) if row.publish_key else line
            if first != line:
                reason = f"line {first} publishes there too: each product needs its own"
                problems.append(Problem(f"line {line}: publish_key", reason))
                continue
            rows.append((line, row))
        if len({p.field.split(":")[0] for p in problems}) >= MAX_PROBLEMS:
            break
    if problems:
        raise Refused(
            "invalid_manifest",
            "the manifest has rows at fault; nothing was started",
            tuple(problems),
        )
    if not rows:
        raise _refused("the manifest has no rows")
    return rows


def _refused(reason: str) -> Refused:
    return Refused("invalid_manifest", reason, (Problem("manifest_key", reason),))


def _csv_rows(text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    unknown = [name for name in header if name not in COLUMNS]
    if unknown or not ({"key", "image_url"} & set(header)):
        raise _refused(
            f"the CSV header must name a key or image_url column, and only {', '.join(COLUMNS)}"
            + (f" (not {', '.join(repr(n) for n in unknown)})" if unknown else "")
        )
    try:
        for values in reader:
            if None in values:  # more cells than the header has columns
                raise _refused(f"line {reader.line_num}: more cells than the header names")
            if any(v and v.strip() for v in values.values()):
                yield reader.line_num, {k: v for k, v in values.items() if v is not None}
    except csv.Error as exc:
        raise _refused(f"line {reader.line_num}: not CSV ({exc})") from None


def _jsonl_rows(text: str) -> Iterator[tuple[int, Any]]:
    for line, content in enumerate(text.splitlines(), start=1):
        if not content.strip():
            continue
        try:
            values = json.loads(content)
        except ValueError:
            values = None
        if not isinstance(values, dict):
            raise _refused(f"line {line}: not a JSON object (JSON Lines: one object per line)")
        yield line, values


def items_csv(rows: Iterable[Mapping[str, str]]) -> bytes:
    """items.csv: a header, then one row per item, in the order the Map reads them."""
    return csv_bytes(rows, ITEM_COLUMNS)


def csv_bytes(rows: Iterable[Mapping[str, Any]], columns: tuple[str, ...]) -> bytes:
    """A CSV file: a header of `columns`, then the rows (items.csv, a batch's report)."""
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


def read_items_csv(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode(), newline="")))
