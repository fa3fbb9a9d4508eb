"""Workflow task: record why a job failed (reached from every Catch)."""

from backdrop.handlers.task import task
from backdrop.workflow import deps, outcome_tasks
from backdrop.workflow.messages import MarkFailedInput

handler = task(MarkFailedInput, outcome_tasks.mark_failed, deps.OUTCOME_WIRING)
