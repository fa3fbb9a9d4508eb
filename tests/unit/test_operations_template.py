"""What the template gives an operator and an auditor: an alarm for each condition the
runbook names, all to one topic; a dashboard that parses; a log group per function with the
stack's retention; access logs with the key id; and permissions no wider than the work."""

from __future__ import annotations

import json
import re
from typing import Any

from backdrop.domain import JobStatus
from backdrop_local.template import Template

TEMPLATE = Template()
RESOURCES = TEMPLATE.resources


def _of_type(kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in RESOURCES.items() if v["Type"] == kind}


def _metrics(alarm: dict[str, Any]) -> set[tuple[str, str]]:
    props = alarm["Properties"]
    if "MetricName" in props:
        return {(props["Namespace"], props["MetricName"])}
    return {
        (m["MetricStat"]["Metric"]["Namespace"], m["MetricStat"]["Metric"]["MetricName"])
        for m in props["Metrics"]
        if "MetricStat" in m
    }


# Each condition the issue and the runbook name, and the metric that shows it.
CONDITIONS = {
    "FailedJobRateAlarm": {("Backdrop", "JobsFailed"), ("Backdrop", "JobsSucceeded")},
    "DeadLetterQueueAlarm": {("AWS/SQS", "ApproximateNumberOfMessagesVisible")},
    "WebhookDeadLetterAlarm": {("AWS/SQS", "ApproximateNumberOfMessagesVisible")},
    "RequestDeadLetterAlarm": {("AWS/SQS", "ApproximateNumberOfMessagesVisible")},
    "ExecutionsFailedAlarm": {
        ("AWS/States", "ExecutionsFailed"),
        ("AWS/States", "ExecutionsSucceeded"),
    },
    "ExecutionsTimedOutAlarm": {("AWS/States", "ExecutionsTimedOut")},
    "BatchFailedAlarm": {("AWS/States", "ExecutionsFailed")},
    "ProviderThrottlingAlarm": {("Backdrop", "ProviderThrottled")},
    "ProviderUnavailableAlarm": {("Backdrop", "ProviderUnavailable")},
    "Api5xxAlarm": {("AWS/ApiGateway", "5XXError")},
    "PicsartOutOfCreditsAlarm": {("Backdrop", "ProviderOutOfCredits")},
    "PhotoroomOutOfCreditsAlarm": {("Backdrop", "ProviderOutOfCredits")},
    "PicsartLowBalanceAlarm": {("Backdrop", "ProviderCreditsAvailable")},
    "PhotoroomLowBalanceAlarm": {("Backdrop", "ProviderCreditsAvailable")},
}


def test_there_is_an_alarm_for_each_condition_and_each_tells_the_topic() -> None:
    alarms = _of_type("AWS::CloudWatch::Alarm")
    assert set(alarms) == set(CONDITIONS)
    for name, alarm in alarms.items():
        props = alarm["Properties"]
        assert _metrics(alarm) == CONDITIONS[name], name
        assert props["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
        assert props["OKActions"] == [{"Ref": "AlarmTopic"}], name
        assert props["TreatMissingData"] == "notBreaching", name  # quiet stacks are fine
        # The runbook has a section for it, under the name the description gives.
        (section,) = re.findall(r'runbook: "(\w+)"', " ".join(props["AlarmDescription"].split()))
        runbook = TEMPLATE.path.parent / "docs" / "operations" / "runbook.md"
        assert f"\n## {section}\n" in runbook.read_text(), section


def _emitted() -> set[str]:
    """Every metric name the code emits: each literal name given to `emit`, and the one
    name made of a job's status (outcomes.py), for every status."""
    source = "\n".join(
        p.read_text() for p in (TEMPLATE.path.parent / "src" / "backdrop").rglob("*.py")
    )
    names = set(re.findall(r'\bemit\(\s*"(\w+)"', source))
    made = re.findall(r'\bemit\(\s*f"([^"]*)"', source)
    assert made == ["Jobs{job.status.value.title()}"]  # the one name made at run time
    return names | {f"Jobs{status.value.title()}" for status in JobStatus}


def test_the_metrics_the_alarms_and_dashboard_watch_are_the_ones_the_code_emits() -> None:
    emitted = _emitted()
    assert {"JobsFailed", "JobsSucceeded", "ProviderThrottled", "ProviderSeconds"} <= emitted
    assert "JobsExploded" not in emitted  # a name nothing emits is found out
    for namespace, metric in set().union(*CONDITIONS.values()):
        if namespace == "Backdrop":
            assert metric in emitted, metric
    (dashboard,) = _of_type("AWS::CloudWatch::Dashboard").values()
    body = dashboard["Properties"]["DashboardBody"]["Fn::Sub"][0]
    for metric in re.findall(r'"Backdrop",\s*"(\w+)"', body):
        assert metric in emitted, metric


def test_an_alarm_email_subscribes_only_when_given() -> None:
    subscription = RESOURCES["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}
    assert TEMPLATE.body["Parameters"]["AlarmEmail"]["Default"] == ""


def test_the_dashboard_is_valid_json_with_the_alarms_and_queue_depths() -> None:
    (dashboard,) = _of_type("AWS::CloudWatch::Dashboard").values()
    body, values = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    filled = re.sub(r"\$\{([^}]+)\}", lambda m: f"value-of-{m.group(1)}", body)
    widgets = json.loads(filled)["widgets"]
    (alarms,) = [w for w in widgets if w["type"] == "alarm"]
    # Every alarm but those made only on a condition (the low-balance ones).
    always = [n for n, a in _of_type("AWS::CloudWatch::Alarm").items() if "Condition" not in a]
    assert sorted(alarms["properties"]["alarms"]) == sorted(f"value-of-{n}.Arn" for n in always)
    text = json.dumps(widgets)
    for figure in ("JobsFailed", "ProviderSeconds", "ProviderThrottled", "5XXError"):
        assert figure in text
    assert "ApproximateNumberOfMessagesVisible" in text  # queue depths
    assert set(values) == {"ApiName"}


def test_every_function_logs_to_its_own_group_kept_for_the_retention() -> None:
    functions = _of_type("AWS::Serverless::Function")
    groups = _of_type("AWS::Logs::LogGroup")
    used = set()
    for name, function in functions.items():
        group = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert group in groups, name
        used.add(group)
    assert len(used) == len(functions)  # one each
    for name, group in groups.items():
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name


def test_api_access_logs_name_the_key_the_request_the_status_and_the_latency() -> None:
    api = RESOURCES["Api"]["Properties"]
    assert api["AccessLogSetting"]["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    line = json.loads(api["AccessLogSetting"]["Format"])
    assert line["apiKeyId"] == "$context.identity.apiKeyId"
    assert line["requestId"] == "$context.requestId"
    assert line["status"] == "$context.status"
    assert line["responseLatency"] == "$context.responseLatency"
    (throttle,) = api["MethodSettings"]
    assert throttle["ThrottlingRateLimit"] == {"Ref": "ApiStageRateLimit"}
    function = RESOURCES["ApiFunction"]["Properties"]
    assert function["ReservedConcurrentExecutions"]["Fn::If"][1] == {
        "Ref": "ApiReservedConcurrency"
    }


def test_both_buckets_log_access_and_results_expire_by_the_parameter() -> None:
    for name in ("InputBucket", "ResultsBucket"):
        logging = RESOURCES[name]["Properties"]["LoggingConfiguration"]
        assert logging["DestinationBucketName"] == {"Ref": "AccessLogsBucket"}
    rules = RESOURCES["ResultsBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    (expire,) = [r for r in rules if r["Id"] == "ExpireResults"]
    assert expire["Status"] == {"Fn::If": ["ExpiresResults", "Enabled", "Disabled"]}
    assert expire["ExpirationInDays"]["Fn::If"][1] == {"Ref": "ResultRetentionDays"}


def _statements(logical_id: str) -> list[dict[str, Any]]:
    policies = RESOURCES[logical_id]["Properties"]["Policies"]
    return [s for p in policies if isinstance(p, dict) for s in p.get("Statement", [])]


def test_permissions_are_no_wider_than_the_work() -> None:
    # The tasks that sign a photo's URL read uploads and inbox images, not the whole bucket.
    for task in ("SubmitFunction", "GenerateFunction"):
        reads = [s for s in _statements(task) if "s3:GetObject" in s["Action"]]
        resources = [r["Fn::Sub"] for s in reads for r in s["Resource"]]
        assert "${InputBucket.Arn}/uploads/*" in resources, task
        assert not any(r.startswith("${InputBucket.Arn}/*") for r in resources), task
    # Listing queries name their indexes.
    (query,) = [s for s in _statements("ApiFunction") if s["Action"] == "dynamodb:Query"]
    assert all(not r["Fn::Sub"].endswith("/index/*") for r in query["Resource"])
    # The workflow invokes exactly its six tasks (no name prefix).
    policies = RESOURCES["GenerationStateMachine"]["Properties"]["Policies"]
    assert not any("LambdaInvokePolicy" in p for p in policies if isinstance(p, dict))
    (invoke,) = [
        s for s in _statements("GenerationStateMachine") if s["Action"] == "lambda:InvokeFunction"
    ]
    assert len(invoke["Resource"]) == 6
    assert all(set(r) == {"Fn::GetAtt"} for r in invoke["Resource"])
