"""The local IAM model's evaluation: what AWS allows and refuses for one role's policies."""

from __future__ import annotations

from typing import Any

import pytest

from backdrop_local.iam import calls
from backdrop_local.iam.policy import Policy, Request, UnsupportedPolicy, arn_matches

TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/jobs"
BUCKET = "arn:aws:s3:::results"


def policy(*statements: dict[str, Any]) -> Policy:
    return Policy.of([{"Version": "2012-10-17", "Statement": list(statements)}])


def allow(action: Any, resource: Any, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def test_an_action_is_allowed_only_on_the_resources_named() -> None:
    role = policy(allow(["dynamodb:GetItem", "dynamodb:PutItem"], TABLE))
    assert role.allows(Request("dynamodb:GetItem", TABLE))
    assert not role.allows(Request("dynamodb:UpdateItem", TABLE))
    assert not role.allows(Request("dynamodb:GetItem", TABLE + "-other"))
    assert not role.allows(Request("dynamodb:Query", TABLE + "/index/by-created"))


def test_actions_match_without_case_and_with_wildcards() -> None:
    role = policy(allow("DynamoDB:Get*", "*"))
    assert role.allows(Request("dynamodb:GetItem", TABLE))
    assert not role.allows(Request("dynamodb:PutItem", TABLE))


def test_an_explicit_deny_wins_over_any_allow() -> None:
    role = policy(
        allow("s3:*", f"{BUCKET}/*"),
        {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": f"{BUCKET}/keep/*"},
    )
    assert role.allows(Request("s3:DeleteObject", f"{BUCKET}/tmp/a.png"))
    assert not role.allows(Request("s3:DeleteObject", f"{BUCKET}/keep/a.png"))


def test_not_action_and_not_resource() -> None:
    role = policy({"Effect": "Allow", "NotAction": "s3:DeleteObject", "NotResource": BUCKET})
    assert role.allows(Request("s3:GetObject", f"{BUCKET}/a"))
    assert not role.allows(Request("s3:DeleteObject", f"{BUCKET}/a"))
    assert not role.allows(Request("s3:ListBucket", BUCKET))


def test_a_wildcard_spans_the_colons_of_the_resource_part_only() -> None:
    # A Distributed Map's child execution: <machine>/<label>:<id>, granted as <machine>/*.
    pattern = "arn:aws:states:us-east-1:123456789012:execution:backdrop-batch/*"
    assert arn_matches(pattern, pattern[:-1] + "run-1:4f1c")
    assert not arn_matches(pattern, pattern.replace("us-east-1", "eu-west-1")[:-1] + "r:1")
    assert not arn_matches("arn:aws:s3:::results/outbox/*", "arn:aws:s3:::results/results/a")


def test_a_prefix_condition_holds_only_for_listings_that_name_such_a_prefix() -> None:
    role = policy(
        allow("s3:ListBucket", BUCKET, Condition={"StringLike": {"s3:prefix": "outbox/*"}})
    )
    assert role.allows(Request("s3:ListBucket", BUCKET, {"s3:prefix": "outbox/a/"}))
    assert not role.allows(Request("s3:ListBucket", BUCKET, {"s3:prefix": "results/a/"}))
    # No prefix in the request (a HeadObject's "may I know it is missing"): no match.
    assert not role.allows(Request("s3:ListBucket", BUCKET))


def test_negated_and_if_exists_operators_hold_when_the_key_is_absent() -> None:
    negated = policy(
        allow("s3:ListBucket", BUCKET, Condition={"StringNotLike": {"s3:prefix": "x/*"}})
    )
    assert negated.allows(Request("s3:ListBucket", BUCKET))
    assert not negated.allows(Request("s3:ListBucket", BUCKET, {"s3:prefix": "x/1"}))
    if_exists = policy(
        allow("s3:ListBucket", BUCKET, Condition={"StringLikeIfExists": {"s3:prefix": "a/*"}})
    )
    assert if_exists.allows(Request("s3:ListBucket", BUCKET))
    assert not if_exists.allows(Request("s3:ListBucket", BUCKET, {"s3:prefix": "b/"}))


def test_a_condition_on_a_key_no_call_carries_is_refused_not_read_as_absent() -> None:
    # On AWS aws:RequestedRegion is in every request: a Deny on it must not be skipped.
    deny = {
        "Effect": "Deny",
        "Action": "*",
        "Resource": "*",
        "Condition": {"StringNotEquals": {"aws:RequestedRegion": "eu-west-1"}},
    }
    with pytest.raises(UnsupportedPolicy, match="aws:RequestedRegion"):
        policy(allow("s3:*", "*"), deny).allows(Request("s3:GetObject", f"{BUCKET}/a"))


def test_arn_equals_matches_component_by_component_as_arn_like() -> None:
    role = policy(
        allow("s3:ListBucket", "*", Condition={"ArnEquals": {"s3:prefix": "arn:aws:s3:::r*"}})
    )
    assert role.allows(Request("s3:ListBucket", BUCKET, {"s3:prefix": "arn:aws:s3:::results"}))


def test_a_statement_without_a_resource_is_refused() -> None:
    with pytest.raises(UnsupportedPolicy, match="Resource"):
        policy({"Effect": "Allow", "Action": "s3:GetObject"})


def test_what_the_model_cannot_judge_raises_instead_of_allowing() -> None:
    dated = allow("s3:*", "*", Condition={"DateGreaterThan": {"s3:prefix": "2020"}})
    with pytest.raises(UnsupportedPolicy, match="DateGreaterThan"):
        policy(dated).allows(Request("s3:ListBucket", BUCKET))  # key absent: still refused
    with pytest.raises(UnsupportedPolicy, match="Principal"):
        policy({"Effect": "Allow", "Action": "*", "Resource": "*", "Principal": "*"})


WHERE = calls.Where("aws", "us-east-1", "123456789012")


def test_each_call_names_what_iam_checks() -> None:
    transaction = {
        "TransactItems": [
            {"Put": {"TableName": "jobs", "Item": {}}},
            {"ConditionCheck": {"TableName": "batches", "Key": {}}},
        ]
    }
    assert calls.requests("dynamodb", "TransactWriteItems", WHERE, transaction) == [
        Request("dynamodb:PutItem", TABLE),
        Request("dynamodb:ConditionCheckItem", TABLE.replace("jobs", "batches")),
    ]
    query = {"TableName": "jobs", "IndexName": "by-status"}
    assert calls.requests("dynamodb", "Query", WHERE, query) == [
        Request("dynamodb:Query", f"{TABLE}/index/by-status")
    ]
    head = {"Bucket": "results", "Key": "a.png", "VersionId": "v1"}
    assert calls.requests("s3", "HeadObject", WHERE, head) == [
        Request("s3:GetObjectVersion", f"{BUCKET}/a.png")
    ]
    url = "https://sqs.us-east-1.amazonaws.com/123456789012/hooks"
    assert calls.requests("sqs", "SendMessageBatch", WHERE, {"QueueUrl": url}) == [
        Request("sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:hooks")
    ]
    events = {"Entries": [{"EventBusName": "backdrop-events"}]}
    assert calls.requests("events", "PutEvents", WHERE, events) == [
        Request(
            "events:PutEvents", "arn:aws:events:us-east-1:123456789012:event-bus/backdrop-events"
        )
    ]


def test_a_copy_of_a_version_needs_that_version_read() -> None:
    copy = {"Bucket": "results", "Key": "b.png", "CopySource": "inputs/a.png?versionId=v1"}
    assert calls.requests("s3", "CopyObject", WHERE, copy) == [
        Request("s3:GetObjectVersion", "arn:aws:s3:::inputs/a.png"),
        Request("s3:PutObject", f"{BUCKET}/b.png"),
    ]


def test_a_call_without_a_rule_is_refused_so_none_escapes_its_role() -> None:
    with pytest.raises(calls.Unmodelled, match="dynamodb DeleteTable"):
        calls.requests("dynamodb", "DeleteTable", WHERE, {"TableName": "jobs"})
    # An object written with an ACL or tags needs permissions the rule does not name.
    tagged = {"Bucket": "results", "Key": "a.png", "Tagging": "k=v"}
    with pytest.raises(calls.Unmodelled, match="Tagging"):
        calls.requests("s3", "PutObject", WHERE, tagged)
    assert calls.requests("sts", "GetCallerIdentity", WHERE, {}) == []
