"""The local stack's shortcuts through moto: calls in its process served without HTTP, and
the cheaper ways moto is made to do what it did (same results, checked here)."""

from __future__ import annotations

import copy
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from moto import mock_aws
from moto.dynamodb.models import dynamodb_backends
from moto.server import ThreadedMotoServer

from backdrop_local import in_process, moto_shortcuts
from backdrop_local.cloud import ACCOUNT, REGION

CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}


def _client(service: str, endpoint: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION, **CREDENTIALS)


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server() -> Iterator[str]:
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        in_process.uninstall()
        moto.stop()


def test_calls_to_the_local_endpoint_reach_moto_without_http(server: str) -> None:
    # Given calls from this process routed in-process to an endpoint nothing listens on
    nowhere = f"http://127.0.0.1:{_unused_port()}"
    in_process.install(nowhere)
    s3 = _client("s3", nowhere)
    dynamodb = _client("dynamodb", nowhere)

    # When they create and write (S3 path-style, DynamoDB's JSON protocol)
    s3.create_bucket(Bucket="photos")
    s3.put_object(Bucket="photos", Key="inbox/a.png", Body=b"png")
    dynamodb.create_table(
        TableName="jobs",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.put_item(TableName="jobs", Item={"id": {"S": "j1"}})

    # Then they succeeded, and what they wrote is what the server serves over HTTP
    in_process.uninstall()
    assert _client("s3", server).get_object(Bucket="photos", Key="inbox/a.png")["Body"].read() == (
        b"png"
    )
    item = _client("dynamodb", server).get_item(TableName="jobs", Key={"id": {"S": "j1"}})
    assert item["Item"] == {"id": {"S": "j1"}}
    # ...and without the routing, the endpoint nothing listens on is just that
    with pytest.raises(EndpointConnectionError):
        _client("dynamodb", nowhere).list_tables()


def test_presigned_urls_still_point_at_the_server(server: str) -> None:
    in_process.install(server)
    s3 = _client("s3", server)
    s3.create_bucket(Bucket="photos")
    s3.put_object(Bucket="photos", Key="a.png", Body=b"png")

    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": "photos", "Key": "a.png"}, ExpiresIn=60
    )

    # Made without a request, so for the endpoint: whoever gets it fetches from the server.
    assert url.startswith(server)
    assert httpx.get(url).content == b"png"


def test_errors_come_back_as_aws_sends_them(server: str) -> None:
    in_process.install(server)
    dynamodb = _client("dynamodb", server)
    with pytest.raises(ClientError) as raised:
        dynamodb.get_item(TableName="missing", Key={"id": {"S": "x"}})
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"


# ---- moto_shortcuts -------------------------------------------------------------------------


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        moto_shortcuts.install()
        moto_shortcuts.atomic_dynamodb()
        client = boto3.client("dynamodb", region_name=REGION)
        client.create_table(
            TableName="items",
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def _item(client: Any, sk: str) -> dict[str, Any] | None:
    answer = client.get_item(TableName="items", Key={"pk": {"S": "b"}, "sk": {"S": sk}})
    return answer.get("Item")  # type: ignore[no-any-return]


def _put(sk: str, **extra: Any) -> dict[str, Any]:
    return {"Put": {"TableName": "items", "Item": {"pk": {"S": "b"}, "sk": {"S": sk}}, **extra}}


def test_a_failed_transaction_leaves_every_item_as_it_was(dynamodb: Any) -> None:
    # Given an item to update, one to delete, and none where a put would go
    counted = {"pk": {"S": "b"}, "sk": {"S": "count"}, "n": {"N": "1"}}
    dynamodb.put_item(TableName="items", Item=counted)
    dynamodb.put_item(TableName="items", Item={"pk": {"S": "b"}, "sk": {"S": "old"}})

    # When a transaction writes all three, then fails its last condition
    with pytest.raises(ClientError) as raised:
        dynamodb.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": "items",
                        "Key": {"pk": {"S": "b"}, "sk": {"S": "count"}},
                        "UpdateExpression": "ADD n :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                },
                {"Delete": {"TableName": "items", "Key": {"pk": {"S": "b"}, "sk": {"S": "old"}}}},
                _put("new"),
                {
                    "ConditionCheck": {
                        "TableName": "items",
                        "Key": {"pk": {"S": "b"}, "sk": {"S": "absent"}},
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
            ]
        )

    # Then nothing it wrote stays
    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert _item(dynamodb, "count") == counted
    assert _item(dynamodb, "old") == {"pk": {"S": "b"}, "sk": {"S": "old"}}
    assert _item(dynamodb, "new") is None


def test_a_transaction_that_succeeds_writes_everything(dynamodb: Any) -> None:
    dynamodb.transact_write_items(TransactItems=[_put("a"), _put("b")])
    assert _item(dynamodb, "a") is not None
    assert _item(dynamodb, "b") is not None


def test_a_table_copied_outside_a_transaction_is_its_own(dynamodb: Any) -> None:
    dynamodb.put_item(TableName="items", Item={"pk": {"S": "b"}, "sk": {"S": "a"}})
    table = dynamodb_backends[ACCOUNT][REGION].tables["items"]

    copied = copy.deepcopy(table)
    dynamodb.put_item(TableName="items", Item={"pk": {"S": "b"}, "sk": {"S": "later"}})

    assert copied is not table
    assert sum(len(v) for v in copied.items.values()) == 1


def test_the_engine_keeps_one_client_per_service_and_endpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moto.stepfunctions.parser.asl.utils import boto_client

    moto_shortcuts.install()
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    first = boto_client.boto_client_for(REGION, "lambda")
    assert boto_client.boto_client_for(REGION, "lambda") is first
    assert boto_client.boto_client_for(REGION, "s3") is not first
    # Another stack (another endpoint): another client
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:2")
    assert boto_client.boto_client_for(REGION, "lambda") is not first


def test_a_read_never_meets_an_item_half_updated(dynamodb: Any) -> None:
    # Given writers that add and remove attributes of one item (moto updates it in place)
    dynamodb.put_item(TableName="items", Item={"pk": {"S": "b"}, "sk": {"S": "job"}})
    until = time.monotonic() + 1.5
    errors: list[Exception] = []

    def write() -> None:
        n = 0
        while time.monotonic() < until:
            n += 1
            dynamodb.update_item(
                TableName="items",
                Key={"pk": {"S": "b"}, "sk": {"S": "job"}},
                UpdateExpression=f"SET a{n % 40} = :v REMOVE a{(n + 20) % 40}",
                ExpressionAttributeValues={":v": {"S": "x"}},
            )

    def read() -> None:
        while time.monotonic() < until:
            try:
                _item(dynamodb, "job")
            except Exception as error:  # what a half-updated item raised in moto
                errors.append(error)

    # When readers read it all the while
    threads = [threading.Thread(target=f) for f in (write, write, read, read)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then every read saw a whole item, as on AWS
    assert errors == []
