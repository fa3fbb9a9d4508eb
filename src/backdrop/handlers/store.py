"""Workflow task: copy a finished job's images into the results bucket."""

from backdrop.handlers.task import task
from backdrop.workflow import deps, provider_tasks
from backdrop.workflow.messages import StoreInput

handler = task(StoreInput, provider_tasks.store, deps.WIRING)
