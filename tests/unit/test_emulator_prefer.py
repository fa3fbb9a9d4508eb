"""The emulated Picsart gateway's RFC 7240 `Prefer: respond-async, wait=N`, over loopback HTTP."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from backdrop_local.emulator import EmulatorSettings, ProviderEmulator
from backdrop_local.emulator.cli import build_parser
from backdrop_local.emulator.prefer import Preferences, parse_prefer
from tests.unit.test_emulator import (
    PICSART_KEY,
    StartEmulator,
    alpha_png,
    client,
    poll,
    start_emulator,
    submit,
)

__all__ = ["client", "start_emulator"]  # fixtures, shared with test_emulator


def wait_for(seconds: int | str) -> dict[str, str]:
    return {**PICSART_KEY, "Prefer": f"respond-async, wait={seconds}"}


def timed_submit(
    client: httpx.Client, emulator: ProviderEmulator, headers: dict[str, str]
) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    answer = submit(client, emulator, {"count": "1"}, headers=headers)
    return answer, time.monotonic() - started


# --- parsing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([], Preferences()),
        (["respond-async"], Preferences(respond_async=True)),
        (["respond-async, wait=10"], Preferences(respond_async=True, wait=10)),
        (["RESPOND-ASYNC,WAIT=10"], Preferences(respond_async=True, wait=10)),
        (["  Respond-Async ;  x=1 ,  Wait = 7 "], Preferences(respond_async=True, wait=7)),
        (['handling=lenient, respond-async, wait="12"'], Preferences(respond_async=True, wait=12)),
        (["respond-async", "wait=3"], Preferences(respond_async=True, wait=3)),
        (["wait=4"], Preferences(wait=4)),
        (["respond-async, wait=5, wait=9"], Preferences(respond_async=True, wait=5)),
        (["respond-async, wait=900"], Preferences(respond_async=True, wait=600)),
        (["respond-async, wait=0"], Preferences(respond_async=True)),
        (["respond-async, wait=-3"], Preferences(respond_async=True)),
        (["respond-async, wait=1.5"], Preferences(respond_async=True)),
        (["respond-async, wait=soon"], Preferences(respond_async=True)),
        (["respond-async, wait=²"], Preferences(respond_async=True)),
        (["return=minimal"], Preferences()),
    ],
)
def test_prefer_header_parsing(headers: list[str], expected: Preferences) -> None:
    assert parse_prefer(headers) == expected


# --- held submissions -------------------------------------------------------------------


def test_wait_answers_200_with_what_a_poll_answers_once_the_job_is_ready(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    # Given jobs that take between 0.2 and 0.4 s (a range, drawn per job)
    emulator = start_emulator(processing_seconds="0.2-0.4")

    # When a job is submitted with Prefer: respond-async, wait=5
    answer, elapsed = timed_submit(client, emulator, wait_for(5))

    # Then the request was held until the job was ready, and answered with its result
    assert answer.status_code == 200, answer.text
    assert 0.2 <= elapsed < 2.0
    assert answer.headers["Preference-Applied"] == "respond-async, wait=5"
    body = answer.json()
    assert body["status"] == "success"
    assert set(body) == {"status", "data"}
    (result,) = body["data"]
    assert set(result) == {"id", "url"}
    # And the body is exactly what a poll answers for the job, whose file downloads
    inference_id = result["id"].rpartition("-")[0]
    later = poll(client, emulator, inference_id)
    assert later.status_code == 200
    assert later.json() == body
    assert client.get(result["url"]).status_code == 200
    assert "X-Picsart-Ratelimit-Available" in answer.headers


def test_wait_shorter_than_the_processing_falls_back_to_202(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    # Given jobs that take 3 to 12 s
    emulator = start_emulator(processing_seconds="3-12")

    # When a job is submitted with wait=1
    answer, elapsed = timed_submit(client, emulator, wait_for(1))

    # Then after about a second it is answered 202 with the id, as without a wait
    assert answer.status_code == 202, answer.text
    assert 1.0 <= elapsed < 2.5
    assert answer.headers["Preference-Applied"] == "respond-async"
    body = answer.json()
    assert body["status"] == "processing"
    assert poll(client, emulator, body["inference_id"]).status_code == 202


def test_stuck_job_is_answered_202_after_the_wait(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    emulator = start_emulator(fault_stuck=1.0)

    answer, elapsed = timed_submit(client, emulator, wait_for(1))

    assert answer.status_code == 202
    assert 1.0 <= elapsed < 2.5
    assert answer.headers["Preference-Applied"] == "respond-async"


def test_job_ending_in_error_within_the_wait_answers_as_a_poll(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    emulator = start_emulator(fault_error=1.0, processing_seconds="0.1", credits=50)

    answer, _ = timed_submit(client, emulator, wait_for(5))

    assert answer.status_code == 200
    assert answer.headers["Preference-Applied"] == "respond-async, wait=5"
    body = answer.json()
    assert body["status"] == "error"
    assert poll(client, emulator, body["inference_id"]).json() == body
    assert answer.headers["X-Picsart-Credit-Available"] == "50"  # failures are not billed


def test_expired_job_is_answered_200_and_its_files_404(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    emulator = start_emulator(fault_expired=1.0)

    answer, _ = timed_submit(client, emulator, wait_for(5))

    assert answer.status_code == 200
    assert client.get(answer.json()["data"][0]["url"]).status_code == 404


def test_preferences_are_read_case_insensitively_among_others_and_across_headers(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    emulator = start_emulator()
    mixed = {**PICSART_KEY, "Prefer": "handling=lenient, RESPOND-ASYNC ; x=y,  Wait = 3"}
    endpoint = f"{emulator.picsart_base_url}/painting/replace-background"
    form = {"prompt": "on a beach", "count": "1"}

    first, _ = timed_submit(client, emulator, mixed)
    # Two Prefer headers, one preference each
    second = client.post(
        endpoint,
        headers=[(k, v) for k, v in PICSART_KEY.items()]
        + [("Prefer", "respond-async"), ("Prefer", "wait=3")],
        data=form,
        files={"image": ("a.png", alpha_png(), "image/png")},
    )

    assert first.status_code == second.status_code == 200
    assert first.headers["Preference-Applied"] == "respond-async, wait=3"
    assert second.headers["Preference-Applied"] == "respond-async, wait=3"


def test_wait_above_600_is_capped_and_invalid_waits_are_ignored(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    emulator = start_emulator()

    capped, _ = timed_submit(client, emulator, wait_for(900))
    ignored, elapsed = timed_submit(client, emulator, wait_for("0"))

    assert capped.status_code == 200
    assert capped.headers["Preference-Applied"] == "respond-async, wait=600"
    assert ignored.status_code == 202
    assert ignored.headers["Preference-Applied"] == "respond-async"
    assert elapsed < 1.0


def test_wait_without_respond_async_does_not_change_async_mode(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    emulator = start_emulator()

    answer = submit(
        client, emulator, {"mode": "async"}, headers={**PICSART_KEY, "Prefer": "wait=5"}
    )

    assert answer.status_code == 202
    assert "Preference-Applied" not in answer.headers


def test_gateway_ignoring_wait_always_answers_202(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    # Given an emulator playing a gateway without wait support, and instant jobs
    emulator = start_emulator(honour_prefer_wait=False)

    answer, elapsed = timed_submit(client, emulator, wait_for(5))

    assert answer.status_code == 202
    assert elapsed < 1.0
    assert answer.headers["Preference-Applied"] == "respond-async"
    # And switched on at runtime, the same request is held and answered 200
    emulator.update_settings(honour_prefer_wait=True)
    assert timed_submit(client, emulator, wait_for(5))[0].status_code == 200


def test_a_held_request_does_not_block_others(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    # Given a held submission for a job of 1.5 s
    emulator = start_emulator(processing_seconds="1.5")
    held: list[httpx.Response] = []
    worker = threading.Thread(
        target=lambda: held.append(timed_submit(client, emulator, wait_for(10))[0])
    )
    worker.start()
    time.sleep(0.2)

    # When other requests come meanwhile, Then they are answered at once
    started = time.monotonic()
    balance = client.get(f"{emulator.picsart_base_url}/balance", headers=PICSART_KEY)
    other = submit(client, emulator, {"count": "1"})
    assert balance.status_code == 200
    assert other.status_code == 202
    assert time.monotonic() - started < 1.0
    assert worker.is_alive()

    # And the held one ends with the result
    worker.join(timeout=10)
    assert [answer.status_code for answer in held] == [200]


def test_stopping_the_emulator_ends_a_held_request_promptly(
    start_emulator: StartEmulator,
) -> None:
    emulator = start_emulator(processing_seconds="30")
    outcome: list[httpx.Response | Exception] = []

    def held() -> None:
        with httpx.Client(timeout=30) as own:
            try:
                outcome.append(submit(own, emulator, headers=wait_for(60)))
            except httpx.HTTPError as error:
                outcome.append(error)

    worker = threading.Thread(target=held)
    worker.start()
    time.sleep(0.3)

    started = time.monotonic()
    emulator.stop()
    worker.join(timeout=10)

    assert not worker.is_alive()
    assert time.monotonic() - started < 3.0
    (answer,) = outcome
    if isinstance(answer, httpx.Response):  # usually answered: the connection stays open
        assert answer.status_code == 202


# --- the setting ------------------------------------------------------------------------


def test_honour_prefer_wait_from_environment_emulate_pairs_and_flag() -> None:
    assert EmulatorSettings().honour_prefer_wait is True
    from_env = EmulatorSettings.from_env({"BACKDROP_EMULATOR_HONOUR_PREFER_WAIT": "false"})
    assert from_env.honour_prefer_wait is False
    # `backdrop local --emulate honour_prefer_wait=false` merges text pairs
    assert EmulatorSettings().merged({"honour_prefer_wait": "false"}).honour_prefer_wait is False
    parsed = build_parser().parse_args(["--honour-prefer-wait", "False"])
    assert parsed.honour_prefer_wait is False
    assert build_parser().parse_args([]).honour_prefer_wait is None  # env or default applies
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--honour-prefer-wait", "maybe"])
