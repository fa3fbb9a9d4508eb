"""The rate governor on moto's DynamoDB and on memory, with a clock the tests move: paid
work always gets its token, new work queues for its turn and never takes the bucket below
empty, a 429 pauses everybody, and a broken or busy table is a short wait, never an
error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from backdrop import aws
from backdrop.governor import DynamoBuckets, Governor, Limit, QueueDeadlinePassed
from tests.fakes import MemoryBuckets

TABLE = "governor"
PER_MINUTE = 60  # one a second
LIMIT = Limit(per_minute=PER_MINUTE, burst=3)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def table_governor(clock: Clock) -> Iterator[Governor]:
    with mock_aws():
        aws.reset()
        boto3.client("dynamodb").create_table(
            TableName=TABLE,
            AttributeDefinitions=[{"AttributeName": "provider", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "provider", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield Governor(DynamoBuckets(TABLE), clock=clock)
        aws.reset()


@pytest.fixture(params=["dynamodb", "memory"])
def governor(request: pytest.FixtureRequest, clock: Clock) -> Iterator[Governor]:
    """The same rules over either store."""
    if request.param == "memory":
        yield Governor(MemoryBuckets(), clock=clock)
    else:
        yield request.getfixturevalue("table_governor")


def _item() -> dict[str, Any]:
    answer = boto3.client("dynamodb").get_item(TableName=TABLE, Key={"provider": {"S": "p"}})
    return answer["Item"]  # type: ignore[no-any-return]


def test_a_full_bucket_lets_a_burst_go_then_refills_at_the_rate(
    governor: Governor, clock: Clock
) -> None:
    assert [governor.take_new("p", LIMIT).granted for _ in range(4)] == [1, 1, 1, 0]
    empty = governor.take_new("p", LIMIT)
    assert (empty.granted, empty.wait) == (0, pytest.approx(1.0))
    clock.now += 1.0
    assert governor.take_new("p", LIMIT).granted == 1


def test_paid_work_always_gets_its_token_and_is_told_exactly_when(
    governor: Governor, clock: Clock
) -> None:
    governor.take_new("p", LIMIT, 3)  # new work emptied the bucket
    first, second = governor.take_paid("p", LIMIT), governor.take_paid("p", LIMIT)
    assert (first.granted, first.wait) == (1, pytest.approx(1.0))
    assert (second.granted, second.wait) == (1, pytest.approx(2.0))
    # New work cannot take a token until paid work's debt is repaid.
    clock.now += 2.0
    assert governor.take_new("p", LIMIT).granted == 0
    clock.now += 1.0
    assert governor.take_new("p", LIMIT).granted == 1


def test_a_provider_that_holds_submits_expects_few_polls_from_the_start(
    governor: Governor, clock: Clock
) -> None:
    holding = Limit(per_minute=PER_MINUTE, burst=3, expected_polls=0.0)
    turns = [governor.queue("p", holding, 1, deadline=clock.now + 3600).wait for _ in range(3)]
    assert turns == pytest.approx([0.0, 1 / 0.98, 2 / 0.98])  # 2 % headroom at least


def test_new_work_gets_distinct_turns_on_a_lane_that_leaves_room_for_polls(
    governor: Governor, clock: Clock
) -> None:
    turns = [governor.queue("p", LIMIT, 1, deadline=clock.now + 3600).wait for _ in range(4)]
    # Before any job has finished, a job is expected to need one poll: half the limit.
    assert turns == pytest.approx([0.0, 2.0, 4.0, 6.0])


def test_the_lane_learns_how_many_polls_jobs_need(governor: Governor, clock: Clock) -> None:
    for _ in range(60):
        governor.record_job("p", LIMIT, seconds=4.0, polls=0)
    turns = [governor.queue("p", LIMIT, 1, deadline=clock.now + 3600).wait for _ in range(3)]
    # Polls seldom needed: new work may use (nearly) the whole limit; polls still come first.
    assert turns[1] == pytest.approx(1.0, rel=0.1)
    assert governor.recent("p")[-1] == 4.0


def test_a_synchronous_provider_keeps_nothing_back_for_polls(
    governor: Governor, clock: Clock
) -> None:
    sync = Limit(per_minute=PER_MINUTE, burst=3, polled=False)
    turns = [governor.queue("p", sync, 2, deadline=clock.now + 3600).wait for _ in range(3)]
    assert turns == pytest.approx([0.0, 2.0, 4.0])  # two calls each, one a second


def test_a_turn_after_the_deadline_is_refused_and_reserves_nothing(
    governor: Governor, clock: Clock
) -> None:
    governor.queue("p", LIMIT, 10, deadline=clock.now + 10)  # the next turn is in 20 s
    with pytest.raises(QueueDeadlinePassed):
        governor.queue("p", LIMIT, 1, deadline=clock.now + 10)
    assert governor.queue("p", LIMIT, 1, deadline=clock.now + 60).wait == pytest.approx(20.0)


def test_a_429_pauses_everybody_until_the_reset(governor: Governor, clock: Clock) -> None:
    assert governor.pause("p", LIMIT, 20.0) == 20.0
    assert governor.take_paid("p", LIMIT).wait == pytest.approx(20.0)
    assert governor.take_paid("p", LIMIT).granted == 0  # nothing taken while paused
    assert governor.take_new("p", LIMIT).wait == pytest.approx(20.0)
    assert governor.queue("p", LIMIT, 1, deadline=clock.now + 3600).wait == pytest.approx(20.0)
    clock.now += 20.0
    assert governor.take_paid("p", LIMIT).granted == 1


@pytest.mark.parametrize(
    ("reset", "pause"),
    [(-5.0, 1.0), (0.0, 1.0), (None, 5.0), (float("nan"), 5.0), (10**7, 300.0), (12.0, 12.0)],
)
def test_a_providers_reset_time_is_clamped(
    governor: Governor, reset: float | None, pause: float
) -> None:
    assert governor.pause("p", LIMIT, reset) == pause


def test_an_epoch_reset_time_is_read_as_a_time(governor: Governor) -> None:
    import time

    assert governor.pause("p", LIMIT, time.time() + 30) == pytest.approx(30.0, abs=1.0)


def test_fewer_requests_left_at_the_provider_lowers_the_bucket(governor: Governor) -> None:
    governor.observe("p", LIMIT, 1)
    assert governor.take_new("p", LIMIT, 3).granted == 1
    governor.observe("p", LIMIT, 50)  # more than the bucket holds: changes nothing
    assert governor.take_new("p", LIMIT, 3).granted == 0


def test_an_account_out_of_credits_stops_new_work_not_paid_work_until_resumed(
    governor: Governor, clock: Clock
) -> None:
    governor.out_of_credits("p", LIMIT, 4)
    governor.out_of_credits("p", LIMIT, 2)  # the smallest waiting call decides
    assert governor.credits("p").out_since == clock.now
    assert governor.credits("p").needed == 2

    turn = governor.queue("p", LIMIT, 1, deadline=clock.now + 3600)
    assert not turn.reserved
    assert 30 <= turn.wait <= 60
    grant = governor.take_new("p", LIMIT)
    assert (grant.granted, grant.requeue) == (0, True)
    assert governor.take_paid("p", LIMIT).granted == 1  # a poll costs no credits

    # The longer the account stays empty, the less often waiting work looks (at most 15 min).
    clock.now += 3 * 3600
    assert 450 <= governor.queue("p", LIMIT, 1, deadline=clock.now + 7200).wait <= 900
    with pytest.raises(QueueDeadlinePassed) as refused:
        governor.queue("p", LIMIT, 1, deadline=clock.now - 1)
    assert refused.value.credits_out_since == clock.now - 3 * 3600

    assert governor.resume("p", LIMIT)
    assert not governor.resume("p", LIMIT)  # once
    assert governor.credits("p").out_since is None
    assert governor.queue("p", LIMIT, 1, deadline=clock.now + 60).reserved
    assert governor.take_new("p", LIMIT).granted == 1


def test_an_item_written_before_credits_were_kept_reads_as_having_credits(
    table_governor: Governor,
) -> None:
    table_governor.take_new("p", LIMIT)
    item = {k: v for k, v in _item().items() if not k.startswith("credits_")}
    boto3.client("dynamodb").put_item(TableName=TABLE, Item=item)

    assert table_governor.credits("p").out_since is None
    assert table_governor.take_new("p", LIMIT).granted == 1
    assert float(_item()["tokens"]["N"]) == pytest.approx(1.0)  # read, not recreated


@pytest.mark.parametrize(
    "damage",
    [
        {"tokens": {"S": "many"}},
        {"updated": None},
        {"version": {"S": "x"}},
    ],
)
def test_an_unreadable_item_is_recreated(table_governor: Governor, damage: dict[str, Any]) -> None:
    table_governor.take_new("p", LIMIT)
    item = {k: v for k, v in {**_item(), **damage}.items() if v is not None}
    boto3.client("dynamodb").put_item(TableName=TABLE, Item=item)
    assert table_governor.take_new("p", LIMIT).granted == 1
    assert float(_item()["tokens"]["N"]) == pytest.approx(2.0)


def test_a_missing_item_is_created_full(table_governor: Governor) -> None:
    table_governor.take_new("p", LIMIT)
    boto3.client("dynamodb").delete_item(TableName=TABLE, Key={"provider": {"S": "p"}})
    assert table_governor.take_new("p", LIMIT, 3).granted == 3


def test_a_throttled_table_is_a_short_wait_not_an_error(
    table_governor: Governor, monkeypatch: pytest.MonkeyPatch
) -> None:
    def throttled(**_: Any) -> Any:
        error = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}}
        raise ClientError(error, "GetItem")

    monkeypatch.setattr(aws.client("dynamodb"), "get_item", throttled)
    grant = table_governor.take_paid("p", LIMIT)
    assert grant.granted == 0
    assert 1.0 <= grant.wait <= 3.0
    turn = table_governor.queue("p", LIMIT, 1, deadline=2e9)
    assert not turn.reserved
    assert 1.0 <= turn.wait <= 3.0
    assert table_governor.pause("p", LIMIT, 7.0) == 7.0  # the caller still waits its pause


def test_writers_that_keep_colliding_get_a_short_wait(
    table_governor: Governor, monkeypatch: pytest.MonkeyPatch
) -> None:
    def collide(**_: Any) -> Any:
        error = {"Error": {"Code": "ConditionalCheckFailedException", "Message": "raced"}}
        raise ClientError(error, "PutItem")

    monkeypatch.setattr(aws.client("dynamodb"), "put_item", collide)
    grant = table_governor.take_new("p", LIMIT)
    assert grant.granted == 0
    assert 1.0 <= grant.wait <= 3.0


def test_any_other_table_error_is_raised(
    table_governor: Governor, monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing(**_: Any) -> Any:
        raise ClientError({"Error": {"Code": "ResourceNotFoundException"}}, "GetItem")

    monkeypatch.setattr(aws.client("dynamodb"), "get_item", missing)
    with pytest.raises(ClientError):
        table_governor.take_new("p", LIMIT)
