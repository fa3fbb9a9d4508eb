"""The emulator's rate-limit headers and `GET /_emulator/stats` figures, over loopback HTTP."""

from __future__ import annotations

import time

import httpx
import pytest
from werkzeug.exceptions import BadRequest

from backdrop_local.emulator import ProviderEmulator, picsart
from backdrop_local.emulator.stats import percentile
from tests.unit.test_emulator import (
    PICSART_KEY,
    RATE_HEADERS,
    StartEmulator,
    client,
    control,
    edit,
    generate,
    poll,
    start_emulator,
    submit,
)

__all__ = ["client", "start_emulator"]  # fixtures, shared with test_emulator

WAIT = {**PICSART_KEY, "Prefer": "respond-async, wait=5"}
RATE = (
    "X-Picsart-Ratelimit-Limit",
    "X-Picsart-Ratelimit-Available",
    "X-Picsart-Ratelimit-Reset-Time",
)


def balance(client: httpx.Client, emulator: ProviderEmulator) -> httpx.Response:
    return client.get(f"{emulator.picsart_base_url}/balance", headers=PICSART_KEY)


# --- rate-limit headers -------------------------------------------------------------------


def test_every_picsart_api_answer_carries_the_rate_limit_window(
    start_emulator: StartEmulator, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a limit of 8 a minute and some scripted faults
    emulator = start_emulator(rate_limit_per_minute=8)
    emulator.script({"picsart_submit": [429], "picsart_poll": [503]})

    # When the key makes one of each kind of call, past its limit
    answers = {
        "injected 429": submit(client, emulator),
        "submit 202": (accepted := submit(client, emulator)),
        "held 200": submit(client, emulator, headers=WAIT),
        "poll 503": poll(client, emulator, accepted.json()["inference_id"]),
        "poll 200": poll(client, emulator, accepted.json()["inference_id"]),
        "poll 404": poll(client, emulator, "nope"),
        "unrouted 405": client.delete(f"{emulator.picsart_base_url}/balance", headers=PICSART_KEY),
        "balance": balance(client, emulator),
        "no key 401": client.get(f"{emulator.picsart_base_url}/balance"),
    }
    answers["last allowed"] = balance(client, emulator)
    answers["limited 429"] = balance(client, emulator)
    # And failures inside the emulator (werkzeug errors, bugs) still answer in Picsart's way
    emulator.update_settings(rate_limit_per_minute=100)
    monkeypatch.setattr(picsart, "_parse_submission", _raise(BadRequest("garbled form")))
    answers["werkzeug 400"] = submit(client, emulator)
    monkeypatch.setattr(picsart, "_parse_submission", _raise(RuntimeError("boom")))
    answers["emulator bug 500"] = submit(client, emulator)

    # Then each carries the limit, what is left and the seconds until the window renews
    for name, answer in answers.items():
        for header in RATE_HEADERS:
            assert header in answer.headers, (name, header)
        assert 1 <= int(answer.headers["X-Picsart-Ratelimit-Reset-Time"]) <= 60, name
    statuses = {name: answer.status_code for name, answer in answers.items()}
    assert statuses == {
        "injected 429": 429,
        "submit 202": 202,
        "held 200": 200,
        "poll 503": 503,
        "poll 200": 200,
        "poll 404": 404,
        "unrouted 405": 405,
        "balance": 200,
        "no key 401": 401,
        "last allowed": 200,
        "limited 429": 429,
        "werkzeug 400": 400,
        "emulator bug 500": 500,
    }
    # The injected 429 says none left; the unrouted 405 is not authenticated, so it uses
    # no request; the 401 shows the window of its (empty) key.
    left = [int(answers[name].headers["X-Picsart-Ratelimit-Available"]) for name in answers]
    assert left[:11] == [0, 6, 5, 4, 3, 2, 2, 1, 8, 0, 0]
    assert answers["injected 429"].headers["X-Picsart-Ratelimit-Reset-Time"] == "1"
    assert answers["limited 429"].headers["X-Picsart-Ratelimit-Limit"] == "8"
    assert answers["werkzeug 400"].headers["X-Picsart-Ratelimit-Limit"] == "100"
    assert "garbled form" in answers["werkzeug 400"].json()["detail"]
    assert "boom" in answers["emulator bug 500"].json()["detail"]


def _raise(error: Exception) -> object:
    def fail(*_: object) -> object:
        raise error

    return fail


def test_result_downloads_do_not_count_against_the_rate_limit(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    # Given a limit of 3 a minute, and a job submitted and polled (2 requests)
    emulator = start_emulator(rate_limit_per_minute=3)
    _, done = generate(client, emulator, {"count": "2"})
    urls = [result["url"] for result in done.json()["data"]]

    # When its files are downloaded many times
    downloads = [client.get(url) for url in urls * 5]

    # Then every download succeeds, as CDN files without the API's headers
    assert {download.status_code for download in downloads} == {200}
    assert not any(header in downloads[0].headers for header in RATE_HEADERS)
    # And the key still has its one request left, then hits the limit
    last = balance(client, emulator)
    assert last.status_code == 200
    assert last.headers["X-Picsart-Ratelimit-Available"] == "0"
    assert balance(client, emulator).status_code == 429


def test_photoroom_429s_carry_retry_after(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    # Given a limit of 2 a minute and a scripted 429 first
    emulator = start_emulator(rate_limit_per_minute=2)
    emulator.script({"photoroom_edit": [429]})

    injected, allowed, limited = (edit(client, emulator) for _ in range(3))

    assert injected.status_code == 429
    assert injected.headers["Retry-After"] == "1"
    assert allowed.status_code == 200
    assert "Retry-After" not in allowed.headers
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert limited.json()["error"]["message"]
    assert emulator.stats()["photoroom"]["throttled"] == 2


# --- stats ------------------------------------------------------------------------------


def test_throttled_accepted_and_polls_are_counted(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    # Given a limit of 8 a minute, scripted faults, and credits for 3 images
    emulator = start_emulator(rate_limit_per_minute=8, credits=3)
    emulator.script({"picsart_submit": [429, 503], "photoroom_edit": [500, 429]})

    # When Picsart gets: two injected faults, an async job, a sync job, one refused for credits
    assert [submit(client, emulator).status_code for _ in range(3)] == [429, 503, 202]
    assert submit(client, emulator, {"count": "1"}, headers=PICSART_KEY).status_code == 200
    assert submit(client, emulator, {"count": "1"}).status_code == 402
    # And three polls, then two requests over the limit
    for _ in range(3):
        assert poll(client, emulator, "nope").status_code == 404
    assert [balance(client, emulator).status_code for _ in range(2)] == [429, 429]
    # And Photoroom gets two injected faults, an edit, and one refused for credits
    assert [edit(client, emulator).status_code for _ in range(3)] == [500, 429, 200]
    emulator.update_settings(credits=0)
    assert edit(client, emulator).status_code == 402

    # Then the stats say what was sent, taken and paid for
    stats = control(client, emulator, "GET", "stats").json()
    assert stats == emulator.stats()
    assert stats == {
        "picsart": {
            "submissions": 5,
            "accepted": 2,
            "polls": 3,
            "throttled": 3,
            "images": 1,  # rendered when first listed: the async job was not polled
            "lag_p50_seconds": None,
            "lag_p95_seconds": None,
        },
        "photoroom": {"calls": 4, "accepted": 1, "throttled": 1, "images": 1},
    }


def test_download_lag_per_job_and_its_percentiles(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    emulator = start_emulator(processing_seconds="0.1")
    # Given a job answered 200 by a Prefer wait, downloaded 0.5 s after it was ready
    held = submit(client, emulator, {"count": "2"}, headers=WAIT)
    assert held.status_code == 200
    time.sleep(0.5)
    late = [client.get(result["url"]) for result in held.json()["data"]]
    # And a job polled to the end and downloaded at once (twice: only the first counts)
    _, done = generate(client, emulator, {"count": "1"})
    prompt = [client.get(done.json()["data"][0]["url"]) for _ in range(2)]
    # And a job never downloaded
    generate(client, emulator, {"count": "1"})
    assert {answer.status_code for answer in late + prompt} == {200}

    stats = control(client, emulator, "GET", "stats").json()["picsart"]

    # Then the percentiles interpolate between the two downloaded jobs (~0.5 s and ~0 s)
    p50, p95 = stats["lag_p50_seconds"], stats["lag_p95_seconds"]
    assert isinstance(p50, float)
    assert isinstance(p95, float)
    assert 0.2 <= p50 < 0.6
    assert 0.45 <= p95 < 1.1
    assert p50 < p95
    # And per job, the ready and first download times are on the emulator's clock
    jobs = emulator._app.picsart._jobs.values()
    downloaded = [job for job in jobs if job.first_download_at is not None]
    assert len(downloaded) == 2
    assert all(job.first_download_at >= job.ready_at for job in downloaded)

    # And a reset clears them
    reset = control(client, emulator, "POST", "reset").json()["stats"]["picsart"]
    assert reset["lag_p50_seconds"] is None
    assert reset["lag_p95_seconds"] is None


@pytest.mark.parametrize(
    ("values", "share", "expected"),
    [
        ([], 0.5, None),
        ([2.0], 0.95, 2.0),
        ([1.0, 3.0], 0.5, 2.0),
        ([1.0, 3.0], 0.95, 2.9),
        ([4.0, 1.0, 2.0, 3.0, 5.0], 0.5, 3.0),
        ([0.1234567], 0.5, 0.123),
    ],
)
def test_percentile(values: list[float], share: float, expected: float | None) -> None:
    assert percentile(sorted(values), share) == expected
