"""Which grants of the template's roles no call used: each (action, resource) of each
Allow statement, against the permissions recorded while the tests ran.

    BACKDROP_IAM_USAGE=iam-usage.jsonl .venv/bin/pytest tests/integration tests/e2e
    .venv/bin/python -m backdrop_local.iam.usage iam-usage.jsonl

A grant listed here is over-broad unless a path the tests do not reach needs it (say why
in the template, beside it), or a presigned URL its function signs (used by whoever holds
the URL, not by a call). The managed policies SAM attaches are left out, and so are the
state machines' roles: their calls are checked from their definitions (state_machines.py).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from moto import mock_aws

from backdrop_local.iam.policy import action_matches, arn_matches


def _grants() -> dict[str, list[tuple[str, str, str]]]:
    """Each role's inline grants: role ARN -> (policy name, action, resource)."""
    import boto3

    from backdrop_local.cloud import REGION, provision

    with mock_aws():
        cloud = provision()
        iam = boto3.client("iam", region_name=REGION)
        found: dict[str, list[tuple[str, str, str]]] = {}
        for owner, arn in sorted(cloud.roles.items()):
            if owner in cloud.state_machines:
                continue
            role = arn.rsplit("/", 1)[1]
            for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
                document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
                for statement in document["Statement"]:
                    if statement["Effect"] != "Allow":
                        continue
                    actions = statement.get("Action", [])
                    resources = statement.get("Resource", [])
                    for action in [actions] if isinstance(actions, str) else actions:
                        for resource in [resources] if isinstance(resources, str) else resources:
                            # A secret's ARN ends in a suffix each new stack draws anew.
                            resource = re.sub(r"(:secret:[^:]+)-\w{6}$", r"\1-*", resource)
                            found.setdefault(arn, []).append((owner, action, resource))
        return found


def unused(records: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """(owner, action, resource) of every grant no recorded call matched."""
    left = []
    for role, grants in _grants().items():
        used = [(action, resource) for r, action, resource in records if r == role]
        for owner, action, resource in grants:
            if not any(action_matches(action, a) and arn_matches(resource, r) for a, r in used):
                left.append((owner, action, resource))
    return left


def main(argv: Sequence[str] | None = None) -> int:
    paths = list(argv if argv is not None else sys.argv[1:])
    records: list[tuple[str, str, str]] = []
    for path in paths:
        for line in Path(path).read_text().splitlines():
            if line.strip():
                role, action, resource = json.loads(line)
                records.append((role, action, resource))
    left = unused(records)
    for owner, action, resource in left:
        print(f"{owner}: {action} on {resource}")
    print(f"{len(left)} grants no call used ({len(records)} permissions recorded)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
