"""Batch workflow task: the report, the final counts and status, Batch Completed."""

from backdrop.batches import deps
from backdrop.batches.report import FinishInput, finish_batch
from backdrop.handlers.task import task

handler = task(FinishInput, finish_batch, deps.WIRING)
