"""Workflow task: announce a finished job (event; manifest for inbox jobs)."""

from backdrop.handlers.task import task
from backdrop.workflow import deps, outcome_tasks
from backdrop.workflow.messages import TaskInput

handler = task(TaskInput, outcome_tasks.publish, deps.OUTCOME_WIRING)
