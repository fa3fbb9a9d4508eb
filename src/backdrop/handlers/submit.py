"""Workflow task: hand a queued job to its (asynchronous) provider."""

from backdrop.handlers.task import task
from backdrop.workflow import deps, provider_tasks
from backdrop.workflow.messages import StepInput

handler = task(StepInput, provider_tasks.submit, deps.WIRING)
