"""Watching a batch from the command line (`backdrop batch` and the demo): its progress on
one line of stderr while it runs, then a summary of how it ended and what went wrong."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from backdrop_client import client as api
from backdrop_client.status_line import StatusLine

# Off a terminal, a progress line at most this often: a log of an hour's batch stays short.
LOG_PROGRESS_SECONDS = 30.0
_BAR_WIDTH = 20


def watch_batch(
    client: api.Client, batch_id: str, *, interval: float = 2.0, timeout: float | None = None
) -> dict[str, Any]:
    """Poll a batch until it ends (or `timeout` passes), its progress on one line of
    stderr meanwhile: the batch as last seen."""
    line = StatusLine(every=LOG_PROGRESS_SECONDS)
    try:
        return client.watch_batch(
            batch_id,
            timeout=timeout,
            interval=interval,
            on_poll=lambda batch: line.show(batch_progress(batch)),
        )
    finally:
        line.close()


def batch_progress(batch: Mapping[str, Any]) -> str:
    """A bar of the items settled, how long the rest should take, and the counts."""
    counts = batch.get("counts") or {}
    total = counts.get("total")
    settled = sum(counts.get(name) or 0 for name in ("succeeded", "failed", "skipped"))
    # A prefix's total is unknown until the workflow has listed it.
    filled = _BAR_WIDTH * min(settled, total) // total if total else 0
    line = f"[{'#' * filled}{'.' * (_BAR_WIDTH - filled)}] {settled}/{count_text(total)} items"
    if batch.get("cancel_requested") and batch.get("status") == "running":
        line += ", canceling"
    elif batch.get("eta_seconds") is not None:
        line += f", about {_duration(batch['eta_seconds'])} left"
    return line + (
        f": {counts.get('succeeded') or 0} succeeded, {counts.get('failed') or 0} failed, "
        f"{counts.get('skipped') or 0} skipped, {counts.get('running') or 0} running"
    )


def batch_summary(batch: Mapping[str, Any]) -> list[str]:
    """Its status, how long it took, and what became of its items."""
    counts = batch.get("counts") or {}
    took = _between(batch.get("started_at"), batch.get("finished_at"))
    parts = [f"{counts.get(name) or 0} {name}" for name in ("succeeded", "failed", "skipped")]
    ended = batch.get("status") in api.BATCH_ENDED
    if counts.get("running"):
        parts.append(f"{counts['running']} {'unfinished' if ended else 'running'}")
    if counts.get("queued"):
        parts.append(f"{counts['queued']} {'never started' if ended else 'queued'}")
    return [
        f"batch {batch['id']}: {batch['status']}" + (f" in {took}" if took else ""),
        f"  {count_text(counts.get('total'))} item{'' if counts.get('total') == 1 else 's'}: "
        + ", ".join(parts),
    ]


def batch_problems(batch: Mapping[str, Any]) -> list[str]:
    """What keeps a batch from a clean success, a line each (none if it had one)."""
    batch_id, status = batch["id"], batch["status"]
    counts = batch.get("counts") or {}
    problems = []
    if status == "failed":
        error = batch.get("error") or {}
        problems.append(
            f"batch {batch_id} failed: {error.get('code', 'unknown')}: {error.get('message', '')}"
        )
    elif status == "canceled":
        problems.append(f"batch {batch_id} was canceled")
    elif status not in api.BATCH_ENDED:
        problems.append(
            f"batch {batch_id} is still {status} (`backdrop batch watch {batch_id}` to "
            "follow it again)"
        )
    if counts.get("failed"):
        problems.append(
            f"{counts['failed']} of {count_text(counts.get('total'))} items failed: the report "
            f"names each; `backdrop batch retry {batch_id}` tries them again"
        )
    elif status == "completed_with_failures":
        # The API's word for items that never settled as well as for failed ones.
        problems.append(f"batch {batch_id} completed with failures: see the report")
    return problems


def count_text(value: Any) -> str:
    """A count from the API, or ? where it is not known yet."""
    return "?" if value is None else str(value)


def _duration(seconds: float) -> str:
    whole = max(round(seconds), 0)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def _between(start: Any, end: Any) -> str | None:
    """The time from one of the API's timestamps to another, if both are there."""
    try:
        seconds = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    except (TypeError, ValueError):
        return None
    return _duration(seconds)


def quote_lines(quote: dict[str, Any]) -> list[str]:
    """A batch's quote (`batch start --dry-run`), as lines to print."""
    lines = [
        "dry run: nothing was started",
        f"  items      {quote['items']}"
        + (
            f" (and {quote['ignored']} folder markers or empty objects)" if quote["ignored"] else ""
        ),
        f"  skipped    {quote['skipped']} (already done or under way: not paid again)",
        f"  refused    {quote['refused']}",
    ]
    for problem in quote["problems"]:
        where = problem.get("key") or problem.get("image_url") or ""
        line = f" (line {problem['line']})" if problem.get("line") else ""
        lines.append(
            f"    item {problem['item']}{line} {where}: {problem['code']}: {problem['reason']}"
        )
    lines.append(f"  would run  {quote['jobs']} jobs, {quote['images']} images")
    for provider in quote["providers"]:
        cost = provider["cost"]
        lines.append(
            f"  {provider['provider']:<10} {provider['jobs']} jobs, {provider['images']} images, "
            f"{cost['units']:g} {cost['unit']}, ${cost['estimated_usd']:.2f}, about "
            f"{_duration(provider['estimated_seconds'])}"
            + (
                f" ({_duration(provider['queued_ahead_seconds'])} of other work queued ahead)"
                if provider["queued_ahead_seconds"] >= 1
                else ""
            )
            + (" - its account is out of credits now" if provider["out_of_credits"] else "")
        )
    lines.append(
        f"  estimated  ${quote['estimated_cost_usd']:.2f}, about "
        f"{_duration(quote['estimated_seconds'])}"
    )
    budget = quote.get("budget")
    if budget:
        limits = [
            f"{name} {budget[name]:g}"
            for name in ("max_images", "max_cost_usd")
            if budget.get(name) is not None
        ]
        lines.append(
            f"  budget     {', '.join(limits)}: {budget['within']} items start, "
            f"{budget['past']} would end not started"
        )
    return lines
