"""The template as CloudFormation receives it: SAM's transform, run offline.

The local stack reads the functions' roles from it (SAM expands each function's and state
machine's `Policies` into an IAM role), and the template tests read what SAM generates.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import boto3
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

from backdrop_local.template import Template

# AWS managed policies SAM attaches to the roles it makes, with the statements AWS gives
# them (the local stack evaluates them like inline ones; their names are what SAM asks
# IAM for while transforming).
MANAGED_POLICIES: dict[str, dict[str, Any]] = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": {
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": "*",
            }
        ]
    },
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess": {
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "xray:PutTraceSegments",
                    "xray:PutTelemetryRecords",
                    "xray:GetSamplingRules",
                    "xray:GetSamplingTargets",
                    "xray:GetSamplingStatisticSummaries",
                ],
                "Resource": "*",
            }
        ]
    },
    "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole": {
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes",
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                ],
                "Resource": "*",
            }
        ]
    },
}


# What SAM would ask IAM for: managed policy names -> ARNs.
_MANAGED_POLICY_MAP = {arn.rsplit("/", 1)[1]: arn for arn in MANAGED_POLICIES}


def deployable(template: Template) -> dict[str, Any]:
    """What `sam package` hands CloudFormation: code and definitions as S3/inline values."""
    body = copy.deepcopy(template.body)
    body["Globals"]["Function"]["CodeUri"] = "s3://artifacts/backdrop.zip"
    for properties in (r.get("Properties", {}) for r in body["Resources"].values()):
        if "ContentUri" in properties:
            properties["ContentUri"] = "s3://artifacts/layer.zip"
    for machine in template.state_machines():
        properties = body["Resources"][machine.logical_id]["Properties"]
        properties.pop("DefinitionUri", None)
        properties["Definition"] = json.loads(machine.definition)
    return body


_expanded: dict[str, dict[str, Any]] = {}


def expanded(template: Template) -> dict[str, Any]:
    """SAM's transform of the template (kept per content: each stack a test builds asks)."""
    body = deployable(template)
    key = json.dumps(body, sort_keys=True, default=str)
    if key not in _expanded:
        # SAM wants a region for the ARNs it writes; the local stack's values replace them.
        translator = Translator(
            _MANAGED_POLICY_MAP, Parser(), boto_session=boto3.Session(region_name="us-east-1")
        )
        _expanded[key] = translator.translate(body, parameter_values={})
    return copy.deepcopy(_expanded[key])
