"""The provider emulator as the local stack runs it: a child process, reached over HTTP."""

from __future__ import annotations

import socket

import httpx
import pytest

from backdrop_local.emulator import EmulatorSettings
from backdrop_local.emulator.process import EmulatorProcess


def test_the_child_serves_with_the_settings_it_was_given_and_ends_when_stopped() -> None:
    emulator = EmulatorProcess(EmulatorSettings(seed=7, rate_limit_per_minute=42, credits=3))
    emulator.start()
    try:
        settings = httpx.get(f"{emulator.base_url}/_emulator/settings").json()
        assert (settings["seed"], settings["rate_limit_per_minute"], settings["credits"]) == (
            7,
            42,
            3,
        )
        assert emulator.base_url_of("picsart") == f"{emulator.base_url}/picsart/v1"
        assert emulator.base_url_of("dalle") is None
        pid = emulator.pid
        assert pid is not None
    finally:
        emulator.stop()
    assert emulator.pid is None
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{emulator.base_url}/_emulator/health")
    emulator.stop()  # twice is fine


def test_a_port_in_use_is_said_plainly() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        emulator = EmulatorProcess(EmulatorSettings(), port=port)
        with pytest.raises(RuntimeError, match="the provider emulator did not start"):
            emulator.start()
