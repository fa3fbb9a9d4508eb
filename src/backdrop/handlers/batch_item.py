"""Batch workflow task: turn one item into a job (or skip it), for the Map to run."""

from backdrop.batches import deps
from backdrop.batches.items import ItemInput, start_item
from backdrop.handlers.task import task

handler = task(ItemInput, start_item, deps.WIRING)
