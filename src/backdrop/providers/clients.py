"""Provider clients for the workflow tasks, built from the registry: the key from Secrets
Manager, the settings from the environment, one connection pool per container."""

from __future__ import annotations

from functools import cache

import httpx

from backdrop import aws
from backdrop.providers import registry
from backdrop.providers.base import AsyncProvider, Balanced, Mode, SyncProvider
from backdrop.providers.errors import ProviderAuthError
from backdrop.providers.transport import new_http_client


@cache
def http_client(timeout: float) -> httpx.Client:
    """One connection pool per container for provider calls (result downloads have their
    own, guarded: fetch_guard.py)."""
    return new_http_client(timeout)


def _client(name: str, mode: Mode | None, timeout: float) -> AsyncProvider | SyncProvider:
    spec = registry.get(name)
    if mode is not None and spec.mode is not mode:
        raise ValueError(f"{name} is a {spec.mode.value} provider, not {mode.value}")
    settings = spec.settings()
    if not settings.secret_name:
        raise ProviderAuthError(
            f"no API key is configured for {name} ({name.upper()}_SECRET_NAME)", provider=name
        )
    api_key = aws.secret(settings.secret_name)
    return spec.client(api_key, settings, http_client(timeout))


def async_client(name: str, *, timeout: float) -> AsyncProvider:
    client = _client(name, Mode.ASYNC, timeout)
    if not isinstance(client, AsyncProvider):
        raise TypeError(f"the {name} client cannot submit and poll")
    return client


def sync_client(name: str, *, timeout: float) -> SyncProvider:
    client = _client(name, Mode.SYNC, timeout)
    if not isinstance(client, SyncProvider):
        raise TypeError(f"the {name} client cannot generate")
    return client


def balance_client(name: str, *, timeout: float) -> Balanced | None:
    """The provider's client if it can read its balance, else None."""
    client = _client(name, None, timeout)
    return client if isinstance(client, Balanced) else None
