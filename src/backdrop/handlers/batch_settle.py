"""Batch workflow task: count how one item's job ended."""

from backdrop.batches.items import SettleInput, settle_item
from backdrop.handlers.batch_task import batch_task

handler = batch_task(SettleInput, settle_item)
