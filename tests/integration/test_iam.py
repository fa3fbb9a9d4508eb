"""Each function runs with its own role only, as on AWS: a call its policy does not allow
fails with AccessDenied naming the function and the action, on the real workflow. And each
state machine's role allows every call its definition makes."""

from __future__ import annotations

import json
from collections.abc import Callable

import boto3
import httpx
import pytest
import respx

from backdrop import storage
from backdrop.batches.start import items_key
from backdrop.domain import GenerationOptions, ImageSource, JobError, NewJob
from backdrop.jobs import source_job_id
from backdrop_local.cloud import REGION
from backdrop_local.iam import enforce, state_machines
from backdrop_local.template import Template
from tests.conftest import image_bytes
from tests.integration.conftest import PNG, Stack

EDIT = "https://image-api.photoroom.com/v2/edit"
BODY = {"image_url": "https://images.example.com/mug.png", "provider": "photoroom", "count": 2}


def _narrowed(logical_id: str, action: str) -> Template:
    """template.yaml with one action taken out of a resource's inline policies (a statement
    left with no action goes: IAM refuses one)."""
    template = Template()
    for policy in template.properties(logical_id)["Policies"]:
        statements = policy.get("Statement", [])
        for statement in statements:
            actions = statement["Action"]
            if isinstance(actions, list) and action in actions:
                actions.remove(action)
            elif actions == action:
                statement["Action"] = []
        statements[:] = [s for s in statements if s["Action"]]
    return template


def _failures(stack: Stack, job_id: str) -> str:
    """Every task failure's cause in the job's execution history, as one text."""
    sfn = boto3.client("stepfunctions", region_name=REGION)
    arn = stack.cloud.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{job_id}"
    history = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    details = [e.get("lambdaFunctionFailedEventDetails") or {} for e in history]
    return "\n".join(d.get("cause", "") for d in details)


def _photoroom(picsart: respx.MockRouter, image: bytes = PNG) -> None:
    picsart.get(EDIT).mock(
        return_value=httpx.Response(200, content=image, headers={"content-type": "image/png"})
    )


def test_with_its_role_a_function_stores_its_results(
    stack: Stack, picsart: respx.MockRouter
) -> None:
    # The two images are uploaded from a pool of threads: they run as the function too.
    _photoroom(picsart, image_bytes("PNG", size=(600, 400)))
    job_id = json.loads(stack.create_generation(BODY)["body"])["id"]
    assert stack.wait_for_execution(job_id)["status"] == "SUCCEEDED"
    results = stack.job(job_id)["results"]
    assert len(results) == 2
    # Each read back, and its thumbnail written beside it.
    thumbnails = [f"thumbnails/{job_id}/{i}.webp" for i in range(2)]
    assert [r["thumbnail_key"] for r in results] == thumbnails
    assert stack.result_keys("thumbnails/") == thumbnails


def test_a_call_its_role_does_not_allow_fails_naming_the_function_and_the_action(
    make_stack: Callable[..., Stack], picsart: respx.MockRouter
) -> None:
    stack = make_stack(_narrowed("GenerateFunction", "s3:PutObject"))
    _photoroom(picsart)
    job_id = json.loads(stack.create_generation(BODY)["body"])["id"]

    execution = stack.wait_for_execution(job_id)

    assert execution["status"] == "FAILED"
    assert stack.job(job_id)["status"] == "failed"
    causes = _failures(stack, job_id)
    assert "AccessDenied" in causes
    assert "assumed-role/backdrop-GenerateFunctionRole/backdrop-generatefunction" in causes
    assert "is not authorized to perform: s3:PutObject on resource: arn:aws:s3:::" in causes
    assert f"/results/{job_id}/0." in causes


def test_a_missing_object_is_403_to_a_role_that_may_not_list_the_bucket(stack: Stack) -> None:
    # What S3 does: "not there" is for those who may list; the others get AccessDenied.
    s3 = boto3.client("s3", region_name=REGION)
    role = stack.cloud.roles["WebhookFunction"]  # may read results, may not list them
    with (
        enforce.acting_as(role, "backdrop-webhookfunction"),
        pytest.raises(s3.exceptions.ClientError) as denied,
    ):
        s3.head_object(Bucket=stack.cloud.results_bucket, Key="results/none/0.png")
    # A HEAD answer has no body: the status is all there is, as from AWS.
    assert denied.value.response["Error"] == {"Code": "403", "Message": "Forbidden"}
    with (
        enforce.acting_as(role, "backdrop-webhookfunction"),
        pytest.raises(s3.exceptions.ClientError) as denied,
    ):
        s3.get_object(Bucket=stack.cloud.results_bucket, Key="results/none/0.png")
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    assert "s3:ListBucket" in denied.value.response["Error"]["Message"]


def test_a_result_removed_between_its_listing_and_its_head_is_missing_to_generate(
    stack: Stack,
) -> None:
    # Generate lists a job's folder, then heads what it found (storage.stored_by_job): one
    # removed meanwhile is "not stored yet", not a failed job.
    role = stack.cloud.roles["GenerateFunction"]
    with enforce.acting_as(role, "backdrop-generatefunction"):
        assert storage.head_object(stack.cloud.results_bucket, "results/gone/0.png") is None


def _queued_job(stack: Stack, trigger: str, key: str) -> str:
    """A queued job of the stack's for an image in the input bucket (test set-up)."""
    bucket = stack.cloud.input_bucket
    new = NewJob(
        id=source_job_id(bucket, key, "v1"),
        trigger=trigger,  # type: ignore[arg-type]
        provider="picsart",
        source=ImageSource(bucket=bucket, key=key),
        options=GenerationOptions(prompt="p"),
    )
    job, _ = stack.store().create(new)
    return job.id


# Too long for its folder under outbox/: its manifest goes under its job id.
LONG_KEY = "inbox/" + "a" * 1000 + ".png"


def test_canceling_a_queued_job_with_a_long_key_writes_its_manifest_and_announces_it(
    stack: Stack,
) -> None:
    job_id = _queued_job(stack, "inbox", LONG_KEY)
    assert storage.outbox_misfit(LONG_KEY) is not None

    status, body = stack.cancel_generation(job_id)

    assert (status, body["status"]) == (200, "canceled")
    assert stack.manifest(f"results/{job_id}/")["status"] == "canceled"
    assert [e["detail-type"] for e in stack.published_events()] == ["Generation Canceled"]


def test_publish_writes_the_manifest_of_a_job_with_a_long_key(stack: Stack) -> None:
    job_id = _queued_job(stack, "batch", "catalog/" + "b" * 1000 + ".png")
    stack.store().mark_failed(job_id, JobError(code="provider_rejected", message="no"))

    payload, error = stack.invoke("PublishFunction", {"job_id": job_id})

    assert error is None, payload
    assert stack.manifest(f"results/{job_id}/")["status"] == "failed"


# What the batch workflow's input holds (batches/start.py): a prefix, or items.csv's key.
SAMPLES = {"$.prefix": "catalog/spring/", "$.items_key": items_key("0" * 32)}


def _state_machine_refusals(stack: Stack, logical_id: str) -> list[str]:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    arn = stack.cloud.state_machines[logical_id]
    described = sfn.describe_state_machine(stateMachineArn=arn)
    props = Template().properties(logical_id)
    found = state_machines.needs(
        json.loads(described["definition"]),
        arn=arn,
        logging="Logging" in props,
        tracing=props.get("Tracing", {}).get("Enabled", False),
        samples=SAMPLES,
    )
    # The role as provisioned: its inline policies and the managed ones SAM attaches.
    return state_machines.refused(enforce.policy_of(described["roleArn"]), found)


@pytest.mark.parametrize("logical_id", ["GenerationStateMachine", "BatchStateMachine"])
def test_each_state_machine_role_allows_every_call_its_definition_makes(
    stack: Stack, logical_id: str
) -> None:
    assert _state_machine_refusals(stack, logical_id) == []


def test_a_state_machine_role_without_a_grant_its_map_needs_is_refused(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack(_narrowed("BatchStateMachine", "states:StopExecution"))

    refused = _state_machine_refusals(stack, "BatchStateMachine")

    # Both the Map's child executions and each item's job workflow (.sync:2) need it.
    assert any(
        line.startswith("FromPrefix: states:StopExecution on ")
        and ":execution:backdrop-batch/" in line
        for line in refused
    ), refused
    assert any("states:StopExecution" in line and "generation" in line for line in refused)
