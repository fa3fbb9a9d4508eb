"""Batch workflow task: turn one item into a job (or skip it), for the Map to run."""

from backdrop.batches.items import ItemInput, start_item
from backdrop.handlers.batch_task import batch_task

handler = batch_task(ItemInput, start_item)
