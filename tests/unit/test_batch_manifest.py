"""Manifests as callers write them (CSV, JSON Lines) and items.csv as the Map reads it."""

from __future__ import annotations

import json

import pytest

from backdrop.batches import manifest
from backdrop.batches.manifest import ManifestRow
from backdrop.domain import Refused


def _read(text: str, kind: str = "csv", data: bytes | None = None) -> list[tuple[int, ManifestRow]]:
    return manifest.read_manifest(data or text.encode(), kind, check=lambda row: None)


def test_csv_rows_keep_their_lines_and_read_blank_cells_as_unset() -> None:
    text = (
        "\ufeffkey,image_url,prompt,count,sku\n"  # a spreadsheet's byte order mark
        'catalog/a.png,,"a beach, at dusk",2,SKU-1\n'
        "\n"  # blank lines are skipped, and counted
        ",https://images.example.com/b.png,  ,,\n"
        ",,,,\n"  # an empty row is no row
    )
    rows = _read(text)
    assert [line for line, _ in rows] == [2, 4]
    first, second = (row for _, row in rows)
    assert (first.key, first.prompt, first.count, first.sku) == (
        "catalog/a.png", "a beach, at dusk", 2, "SKU-1",
    )  # fmt: skip
    assert str(second.image_url) == "https://images.example.com/b.png"
    assert second.options() == {}


def test_json_lines_rows_take_json_types() -> None:
    text = "\n".join(
        json.dumps(row)
        for row in (
            {"key": "inbox/x.png", "count": 3, "seed": 7},
            {"image_url": "https://a.example/b.jpg"},
        )
    )
    rows = _read(text, "jsonl")
    assert rows[0][1].options() == {"count": 3, "seed": 7}
    assert [line for line, _ in rows] == [1, 2]


def test_at_most_ten_bad_lines_are_named() -> None:
    text = "key\n" + "".join(f"uploads/{i}.png\n" for i in range(30))
    with pytest.raises(Refused) as refused:
        _read(text)
    lines = {p.field.split(":")[0] for p in refused.value.problems}
    assert lines == {f"line {n}" for n in range(2, 12)}
    assert refused.value.code == "invalid_manifest"


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("catalog/shoes/", None),
        ("inbox/", None),
        ("uploads/x/", "must be under inbox/ or catalog/"),
        ("outbox/", "must be under inbox/ or catalog/"),
        ("catalogue/", "must be under inbox/ or catalog/"),
        ("catalog/../uploads/", "must not hold '..'"),
    ],
)
def test_only_the_catalogue_folders_may_be_read(key: str, reason: str | None) -> None:
    found = manifest.folder_refusal(key)
    assert found == reason if reason is None else reason in (found or "")


def test_items_csv_holds_every_row_as_checked_and_reads_back() -> None:
    rows = _read("key,prompt,count\ncatalog/a.png,sea,1\ncatalog/b.png,,\n")
    data = manifest.items_csv(row.cells(line) for line, row in rows)
    back = manifest.read_items_csv(data)
    assert back[0] | {} == {
        "line": "2", "key": "catalog/a.png", "image_url": "", "prompt": "sea", "count": "1",
        "format": "", "provider": "", "seed": "", "sku": "", "publish_key": "",
    }  # fmt: skip
    # Read back as the Map hands a row to StartItem: the same row.
    cells = dict(back[1])
    line = cells.pop("line")
    assert (line, ManifestRow.model_validate(cells)) == ("3", rows[1][1])


def test_a_row_s_publish_key_is_checked_and_no_two_rows_share_one() -> None:
    rows = _read(
        "key,publish_key\ncatalog/a.png,SKU-1.jpg\ncatalog/b.png,\ncatalog/c.png,SKU-3.jpg\n"
    )
    assert [row.publish_key for _, row in rows] == ["SKU-1.jpg", None, "SKU-3.jpg"]
    assert rows[0][1].cells(2)["publish_key"] == "SKU-1.jpg"  # carried to items.csv

    text = (
        "key,publish_key\n"
        "catalog/a.png,SKU-1.jpg\n"
        "catalog/b.png,/SKU-2.jpg\n"
        "catalog/c.png,SKU-1.jpg\n"
        "catalog/d.png,shoes/../x.jpg\n"
    )
    with pytest.raises(Refused) as refused:
        _read(text)
    problems = {p.field: p.reason for p in refused.value.problems}
    assert set(problems) == {"line 3: publish_key", "line 4: publish_key", "line 5: publish_key"}
    assert "relative path" in problems["line 3: publish_key"]
    assert problems["line 4: publish_key"].startswith("line 2 publishes there too")
    assert "'..'" in problems["line 5: publish_key"]
