"""Batch workflow task: count how one item's job ended."""

from backdrop.batches import deps
from backdrop.batches.settle import SettleInput, settle_item
from backdrop.handlers.task import task

handler = task(SettleInput, settle_item, deps.SETTLE_WIRING)
