"""Workflow task: generate a job's images with a synchronous provider."""

from backdrop.handlers.task import task
from backdrop.workflow import deps, provider_tasks
from backdrop.workflow.messages import StepInput

handler = task(StepInput, provider_tasks.generate, deps.WIRING)
