"""Batch workflow task: the report, the final counts and status, Batch Completed."""

from backdrop.batches.report import FinishInput, finish_batch
from backdrop.handlers.batch_task import batch_task

handler = batch_task(FinishInput, finish_batch)
