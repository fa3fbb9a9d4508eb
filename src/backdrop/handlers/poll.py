"""Workflow task: ask the provider whether a submitted job has finished."""

from backdrop.handlers.task import task
from backdrop.workflow import deps, provider_tasks
from backdrop.workflow.messages import StepInput

handler = task(StepInput, provider_tasks.poll, deps.WIRING)
