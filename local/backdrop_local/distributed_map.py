"""What moto's Distributed Map lacks that a batch needs, made as AWS does it:

- ListObjectsV2 as an ItemReader reads every page (moto reads the first 1,000 keys only)
  and an empty prefix is an empty Map (moto fails on the missing `Contents`);
- ListMapRuns and DescribeMapRun skip executions whose engine has not started or has
  ended (moto fails on the engine it no longer holds);
- a Step Functions task (states:startExecution.sync:2, each item's job workflow) calls
  StartExecution with the ASL's names (StateMachineArn, Name, Input) and reads AWS's
  (ExecutionArn, Status, Output) from the answer, as AWS does (moto hands boto3 the
  ASL's names as they are, which it refuses, and reads its answer's names as they are);
- a task waiting for a job's workflow to end (states:startExecution.sync:2) looks at the
  execution in this process while it runs, and asks the API only once it has ended (moto
  asks over HTTP twice a second per waiting item: with a batch's 40 items in flight, most
  of the local stack's one core);
- each worker runs its items one after another (moto recurses once per item, so a worker
  with more than ~900 items ends in RecursionError).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moto.stepfunctions.parser.api import ResourceNotFound
from moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.eval.resource_eval_s3 import (  # noqa: E501
    ResourceEvalS3,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor.distributed_item_processor_worker import (  # noqa: E501
    DistributedItemProcessorWorker,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (  # noqa: E501
    StateTaskServiceSfn,
)
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.responses import get_backend


def _list_objects_v2(env: Any, resource_runtime_part: Any, state_credentials: Any) -> None:
    s3 = ResourceEvalS3._get_s3_client(
        resource_runtime_part=resource_runtime_part, state_credentials=state_credentials
    )
    parameters = env.stack.pop()
    contents: list[dict[str, Any]] = []
    for page in s3.get_paginator("list_objects_v2").paginate(**parameters):
        contents += page.get("Contents", [])
    env.stack.append(contents)


def _eval_pool(self: Any, job: Any, worker_frame: Any) -> None:
    # moto's own loop body, as a loop (its version calls itself for the next job).
    while job is not None:
        job_frame = worker_frame.open_inner_frame()
        self._eval_job(env=job_frame, job=job)
        worker_frame.delete_frame(job_frame)
        if isinstance(job.job_output, Exception) or self.stopped():
            break
        next_job = self._job_pool.next_job()
        if next_job is None:
            break
        self._job_pool.close_job(job)
        job = next_job
    self._env.delete_frame(worker_frame)
    if job is not None:
        self._job_pool.close_job(job)


_list_map_runs = StepFunctionsParserBackend.list_map_runs


def _map_runs(self: Any, execution_arn: str) -> dict[str, Any]:
    execution = self.describe_execution(execution_arn=execution_arn)
    if getattr(execution, "exec_worker", None) is None or execution.exec_worker.env is None:
        return {"mapRuns": []}
    return _list_map_runs(self, execution_arn)


_sfn_parameters = StateTaskServiceSfn._normalise_parameters
_sfn_response = StateTaskServiceSfn._normalise_response


def _api_names(
    self: Any,
    parameters: dict[str, Any],
    boto_service_name: str | None = None,
    service_action_name: str | None = None,
) -> None:
    _sfn_parameters(self, parameters, boto_service_name, service_action_name)
    for name in list(parameters):
        parameters[name[:1].lower() + name[1:]] = parameters.pop(name)


def _asl_names(
    self: Any,
    response: Any,
    boto_service_name: str | None = None,
    service_action_name: str | None = None,
) -> None:
    _sfn_response(self, response, boto_service_name, service_action_name)
    if isinstance(response, dict):
        for name in list(response):
            response[name[:1].upper() + name[1:]] = response.pop(name)


def _describe_map_run(self: Any, map_run_arn: str) -> dict[str, Any]:
    for execution in self._get_executions():
        env = getattr(getattr(execution, "exec_worker", None), "env", None)
        record = None if env is None else env.map_run_record_pool_manager.get(map_run_arn)
        if record is not None:
            return record.describe()  # type: ignore[no-any-return]
    raise ResourceNotFound(f"Map run {map_run_arn} does not exist")


_sync2_resolver = StateTaskServiceSfn._build_sync2_resolver


def _build_sync2_resolver(
    self: Any,
    env: Any,
    resource_runtime_part: Any,
    normalised_parameters: dict[str, Any],
    state_credentials: Any,
) -> Callable[[], Any]:
    execution_arn = env.stack[-1]["ExecutionArn"]  # moto's builder takes it off the stack
    ended = _sync2_resolver(
        self, env, resource_runtime_part, normalised_parameters, state_credentials
    )
    assert ended is not None  # moto builds one for every .sync:2 task
    backend = get_backend(resource_runtime_part.account, resource_runtime_part.region)

    def resolve() -> Any:
        if backend.describe_execution(execution_arn).status == "RUNNING":
            return None
        return ended()

    return resolve


def install() -> None:
    StateTaskServiceSfn._build_sync2_resolver = _build_sync2_resolver  # type: ignore[method-assign]
    StepFunctionsParserBackend.describe_map_run = _describe_map_run  # type: ignore[method-assign]
    StateTaskServiceSfn._normalise_parameters = _api_names  # type: ignore[method-assign]
    StateTaskServiceSfn._normalise_response = _asl_names  # type: ignore[method-assign]
    StepFunctionsParserBackend.list_map_runs = _map_runs  # type: ignore[method-assign]
    ResourceEvalS3._handle_list_objects_v2 = staticmethod(_list_objects_v2)  # type: ignore[method-assign]
    DistributedItemProcessorWorker._eval_pool = _eval_pool  # type: ignore[method-assign]
