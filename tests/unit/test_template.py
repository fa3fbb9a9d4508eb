"""template.yaml and the state machine: a broken template, a renamed handler, or an ASL
error name that no code raises must fail here, offline, before anyone deploys."""

from __future__ import annotations

import importlib
import json
import re
from typing import Any

import pytest

from backdrop import events, jobs
from backdrop.batches import settle
from backdrop.providers import errors, registry
from backdrop.providers.base import ProviderSettings
from backdrop_local import lambdas, sam
from backdrop_local.preflight import function_settings
from backdrop_local.template import Template, references

TEMPLATE = Template()


@pytest.fixture
def transformed() -> dict[str, Any]:
    return sam.expanded(TEMPLATE)


def _resources(transformed: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in transformed["Resources"].items() if v["Type"] == kind}


def test_sam_transform_gives_the_expected_resources(transformed: dict[str, Any]) -> None:
    functions = _resources(transformed, "AWS::Lambda::Function")
    assert len(functions) == 14
    for function in functions.values():
        assert function["Properties"]["Runtime"] == "python3.13"
        assert function["Properties"]["Architectures"] == ["arm64"]
        assert function["Properties"]["TracingConfig"] == {"Mode": "Active"}
    assert _resources(transformed, "AWS::ApiGateway::UsagePlan")
    assert _resources(transformed, "AWS::ApiGateway::ApiKey")
    methods = _resources(transformed, "AWS::ApiGateway::RestApi")
    (api,) = methods.values()
    operations = {
        (method, path): operation
        for path, methods in api["Properties"]["Body"]["paths"].items()
        for method, operation in methods.items()
    }
    assert len(operations) > 1
    # Every route needs the key, except the browsers' CORS preflight (it cannot send one)
    # and the API's description (it holds no secret).
    keyless = {
        ("options", "/{proxy+}"),
        ("get", "/v1/docs"),
        ("get", "/v1/openapi.json"),
        ("get", "/console"),
        ("get", "/console/{asset}"),
    }
    assert keyless <= set(operations)
    for route, operation in operations.items():
        expected = [] if route in keyless else [{"api_key": []}]
        assert operation.get("security", []) == expected, route
    # ... and the preflight is API Gateway's own answer: it never invokes a function.
    preflight = operations[("options", "/{proxy+}")]["x-amazon-apigateway-integration"]
    assert preflight["type"] == "mock"
    assert api["Properties"]["Body"]["x-amazon-apigateway-binary-media-types"] == [
        "multipart/form-data"
    ]
    responses = api["Properties"]["Body"]["x-amazon-apigateway-gateway-responses"]
    for kind in ("INVALID_API_KEY", "THROTTLED", "QUOTA_EXCEEDED", "REQUEST_TOO_LARGE"):
        body = responses[kind]["responseTemplates"]["application/json"]
        # The one error shape, with API Gateway's own request id.
        filled = json.loads(body.replace("$context.requestId", "r-1"))
        assert set(filled["error"]) == {"code", "message", "details", "request_id"}
        assert filled["error"]["request_id"] == "r-1"
    mappings = _resources(transformed, "AWS::Lambda::EventSourceMapping").values()
    assert len(mappings) == 3  # the queues of the inbox, the requests and the webhooks
    for mapping in mappings:
        assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert "MaximumConcurrency" in mapping["Properties"]["ScalingConfig"]
    machines = _resources(transformed, "AWS::StepFunctions::StateMachine").values()
    assert len(machines) == 2  # a job's workflow, a batch's
    for machine in machines:
        assert machine["Properties"]["TracingConfiguration"] == {"Enabled": True}
        assert "LoggingConfiguration" in machine["Properties"]
    assert "ApiApiKey" in transformed["Resources"]  # named by the ApiKeyId output


def _states(definition: dict[str, Any]) -> list[dict[str, Any]]:
    """Every state, those of a Map's ItemProcessor too."""
    found = []
    for state in definition["States"].values():
        found.append(state)
        if "ItemProcessor" in state:
            found += _states(state["ItemProcessor"])
    return found


@pytest.mark.parametrize("machine", TEMPLATE.state_machines(), ids=lambda m: m.logical_id)
def test_state_machine_placeholders_match_the_substitutions(machine: Any) -> None:
    placeholders = set(re.findall(r"\$\{(\w+)\}", machine.definition))
    assert placeholders == set(machine.substitutions)
    tasks = [s for s in _states(json.loads(machine.definition)) if s["Type"] == "Task"]
    # Our functions, or (a batch's items) the job workflow run to its end.
    for task in tasks:
        assert re.fullmatch(r"\$\{\w+FunctionArn\}", task["Resource"]) or task["Resource"] == (
            "arn:aws:states:::states:startExecution.sync:2"
        )


@pytest.mark.parametrize("machine", TEMPLATE.state_machines(), ids=lambda m: m.logical_id)
def test_every_asl_error_name_is_raised_by_our_code(machine: Any) -> None:
    ours = {cls.__name__ for cls in errors.ProviderError.__subclasses__()}
    ours |= {events.EventNotPublished.__name__, jobs.JobConflict.__name__}
    ours |= {settle.JobNotFinished.__name__}
    named = {
        name
        for state in _states(json.loads(machine.definition))
        for rule in state.get("Retry", []) + state.get("Catch", [])
        for name in rule["ErrorEquals"]
    }
    # Sandbox.Timedout: what Step Functions calls a function that ran out of time;
    # StepFunctions.*: the errors of the Step Functions API (a batch starting a job's workflow).
    known = ("States.", "Lambda.", "Sandbox.", "StepFunctions.")
    unknown = {n for n in named if not n.startswith(known)} - ours
    assert unknown == set()


def test_template_environment_is_exactly_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    variables = {key for spec in TEMPLATE.functions() for key in spec.environment}
    ours = {v.lower() for v in variables if not v.startswith(("POWERTOOLS_", "PYDANTIC_"))}
    # Each provider's own settings (<name>_api_url, ...) are read by its registry entry.
    of_providers = {f"{n}_{f}" for n in registry.names() for f in ProviderSettings.model_fields}
    models = {function_settings(spec.handler) for spec in TEMPLATE.functions()}
    read = {name for model in models for name in model.model_fields}
    assert ours - of_providers == read
    assert {f"{name}_secret_name" for name in registry.names()} <= ours


def test_each_function_is_given_every_setting_it_requires() -> None:
    # AWS runs each function with its own environment (Globals and its own variables); the
    # local stack runs them in one process, where another function's variable would hide
    # a missing one.
    for spec in TEMPLATE.functions():
        model = function_settings(spec.handler)
        required = {name.upper() for name, f in model.model_fields.items() if f.is_required()}
        missing = required - set(spec.environment)
        assert not missing, f"{spec.logical_id} ({model.__name__}) lacks {sorted(missing)}"


def test_a_function_without_a_setting_it_requires_stops_naming_it() -> None:
    from backdrop.handlers import submit

    environ = {"JOBS_TABLE": "jobs", "BATCHES_TABLE": "batches", "GOVERNOR_TABLE": "governor"}
    with pytest.raises(ValueError, match="INPUT_BUCKET: Field required"):
        submit.handler.wiring.build(environ)


def test_each_providers_url_parameter_defaults_to_its_registry_url() -> None:
    # The registry entry owns a provider's base URL; the template's default must agree.
    defaults = TEMPLATE.parameter_defaults()
    for name in registry.names():
        assert defaults[f"{name.title()}ApiUrl"] == registry.get(name).default_url


def test_every_handler_imports_and_is_callable(monkeypatch: pytest.MonkeyPatch) -> None:
    # The template's own defaults, with a stand-in for every resource name.
    defaults = TEMPLATE.parameter_defaults()
    for spec in TEMPLATE.functions():
        for key, value in spec.environment.items():
            ref = value.get("Ref") if isinstance(value, dict) else None
            monkeypatch.setenv(key, defaults.get(ref, "resource-name") if ref else str(value))
    lambdas.reset()
    try:
        for spec in TEMPLATE.functions():
            module, _, attribute = spec.handler.rpartition(".")
            assert callable(getattr(importlib.import_module(module), attribute)), spec.handler
    finally:
        lambdas.reset()


def test_inbox_queue_outlives_six_function_timeouts() -> None:
    (inbox,) = (f for f in TEMPLATE.functions() if "Inbox" in f.events)
    queue = TEMPLATE.resources["InboxQueue"]["Properties"]
    assert queue["VisibilityTimeout"] >= 6 * inbox.timeout


def test_every_queue_a_function_reads_outlasts_its_timeout() -> None:
    # AWS refuses the event source mapping otherwise ("Queue visibility timeout ... is less
    # than Function timeout"); moto creates it.
    sources = [
        (spec, event["Properties"])
        for spec in TEMPLATE.functions()
        for event in spec.events.values()
        if event["Type"] == "SQS"
    ]
    assert len(sources) == 3
    for spec, source in sources:
        queue = TEMPLATE.properties(source["Queue"]["Fn::GetAtt"][0])
        assert queue.get("VisibilityTimeout", 30) >= spec.timeout, spec.logical_id
        assert spec.timeout <= 900, spec.logical_id  # Lambda's most


def test_every_queue_refuses_requests_without_tls() -> None:
    queues = set(TEMPLATE.of_type("AWS::SQS::Queue"))
    guarded = {
        queue["Ref"]
        for policy in TEMPLATE.of_type("AWS::SQS::QueuePolicy").values()
        for statement in policy["PolicyDocument"]["Statement"]
        if statement["Effect"] == "Deny"
        and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for queue in policy["Queues"]
    }
    assert queues == guarded


def test_jobs_results_photos_and_keys_outlive_the_stack() -> None:
    kept = {"AWS::DynamoDB::Table", "AWS::S3::Bucket", "AWS::SecretsManager::Secret"}
    for logical_id, resource in TEMPLATE.resources.items():
        if resource["Type"] in kept and logical_id not in ("IdempotencyTable", "GovernorTable"):
            assert resource.get("DeletionPolicy") == "Retain", logical_id
            assert resource.get("UpdateReplacePolicy") == "Retain", logical_id


def test_the_api_stage_is_created_after_the_accounts_cloudwatch_role_is_set(
    transformed: dict[str, Any],
) -> None:
    # Its access logs need the role on a first deploy; a DependsOn on the conditional
    # account resource would be refused, a reference through Fn::If is not.
    (stage,) = _resources(transformed, "AWS::ApiGateway::Stage").values()
    assert "AccessLogSetting" in stage["Properties"]
    assert "ApiGatewayAccount" in references(stage)
    assert TEMPLATE.resources["ApiGatewayAccount"]["Condition"] == "SetsApiGatewayAccount"
    assert "ApiGatewayAccount" not in str(stage.get("DependsOn", ""))
    # The role it names outlives the stack, as the region's setting does.
    role = TEMPLATE.resources["ApiGatewayLogRole"]
    assert (role["DeletionPolicy"], role["UpdateReplacePolicy"]) == ("Retain", "Retain")


def test_the_api_reserves_no_concurrency_unless_asked() -> None:
    # A new account's quota is often 10, all of it unreserved by rule: 20 would refuse the
    # first deploy (backdrop preflight says what an account allows).
    assert TEMPLATE.parameter_defaults()["ApiReservedConcurrency"] == "0"


def test_the_local_stack_reads_the_templates_conditions_as_cloudformation_does() -> None:
    from backdrop_local.template import LocalStackUnsupported, Resolver
    from backdrop_local.template import Template as LocalTemplate

    conditions = LocalTemplate().body["Conditions"]

    def resolver(**refs: str) -> Resolver:
        defaults = {"BalanceCheckMinutes": "5", "ProviderLowBalanceThreshold": "0"}
        return Resolver({**defaults, **refs}, {}, conditions)

    schedule = {
        "Fn::If": [
            "ChecksBalanceEveryMinute",
            "rate(1 minute)",
            {"Fn::Sub": "rate(${BalanceCheckMinutes} minutes)"},
        ]
    }
    assert resolver()(schedule) == "rate(5 minutes)"
    assert resolver(BalanceCheckMinutes="1")(schedule) == "rate(1 minute)"
    assert not resolver().holds("WatchesLowBalance")
    assert resolver(ProviderLowBalanceThreshold="50").holds("WatchesLowBalance")
    with pytest.raises(LocalStackUnsupported, match="NoSuchCondition"):
        resolver().holds("NoSuchCondition")
