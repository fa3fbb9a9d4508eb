"""Guards for every fetch of a URL that someone else chose (a provider's result URLs and
their redirects today, webhooks later), and the rules for the URLs callers give us for a
provider to fetch.

A fetch through `guarded_client()`:
- goes over https only; http only to a loopback address, and loopback only where the stack
  allows it (`allow_loopback_fetch`, which only `backdrop local` turns on, for its emulator);
- connects only to public addresses. The host is resolved once, every address it resolves
  to is checked, and the socket connects to a checked address: the check runs in the
  connection pool's network backend, so DNS cannot answer differently between the check and
  the connection (rebinding). TLS still sends the host name (SNI) and verifies the
  certificate against it. Link-local and metadata addresses are refused whatever the stack
  allows;
- follows no redirect by itself: `open_stream` follows at most MAX_REDIRECTS by hand, each
  hop a new request through the same checks.
`capped` stops a body at a byte limit.

Refusals raise `FetchBlocked`, whose reason names a host or an address, never a whole URL
(result URLs carry signatures in their query strings).

httpx is imported only when a client is built: the API loads this module for its URL rules
and must not pay for httpx at cold start.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_REDIRECTS = 3
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# AWS's instance metadata service (IPv4 and Nitro's IPv6); GCP's and Azure's are the same
# IPv4 address. Refused even where loopback is allowed.
METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # well-known NAT64 prefix: an IPv4 inside
# Not public, but called global by some Python versions' `ipaddress` (3.11: 192.0.0.0/24,
# where Oracle Cloud's metadata service lives; IPv6 site-local, deprecated).
_ALSO_NOT_PUBLIC = (ipaddress.ip_network("192.0.0.0/24"), ipaddress.ip_network("fec0::/10"))
# Names that only mean something on a local network, never on the public internet.
LOCAL_SUFFIXES = (
    "localhost",
    "local",
    "localdomain",
    "internal",
    "intranet",
    "lan",
    "home",
    "corp",
    "home.arpa",
)
_HEX_OR_NUMBER = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$")


class FetchBlocked(Exception):
    """A fetch the guards refused. `reason` says why, naming a host or an address only."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, in the resolver's order. The one DNS lookup of a
    guarded fetch (tests replace it)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def ip_literal(host: str) -> IPAddress | None:
    """The address, if `host` is an IP address rather than a name (brackets allowed)."""
    try:
        return ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
    except ValueError:
        return None


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, NAT64), which is where it goes."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_refusal(address: str | IPAddress, *, allow_loopback: bool) -> str | None:
    """Why a connection to `address` is refused ("a loopback address"), or None if it is a
    public address (or loopback, where allowed)."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        return address_refusal(embedded, allow_loopback=allow_loopback)
    if ip in METADATA_ADDRESSES:
        return "the cloud metadata address"
    if ip.is_loopback:
        return None if allow_loopback else "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_multicast:
        return "a multicast address"
    if ip in _SHARED:
        return "a shared (carrier-grade NAT) address"
    if ip.is_private:
        return "a private address"
    if ip.is_reserved:
        return "a reserved address"
    if not ip.is_global or any(ip in network for network in _ALSO_NOT_PUBLIC):
        return "not a public address"
    return None


def name_refusal(host: str) -> str | None:
    """Why a host name is refused before any lookup: names that only mean something on a
    local network, single labels, IPv4 addresses in disguise ("0x7f.1"). None if it may be
    a public name."""
    name = host.lower().rstrip(".")
    if not name:
        return "no host"
    for suffix in LOCAL_SUFFIXES:
        if name == suffix:
            return f"{name} is a local name"
        if name.endswith("." + suffix):
            return f"{name} is a local name (.{suffix})"
    labels = name.split(".")
    if len(labels) == 1:
        return f"{name} is a single-label name, not a public one"
    if _HEX_OR_NUMBER.match(labels[-1]):
        return f"{name} reads as an IP address"
    return None


def _loopback_literal(host: str, allow_loopback: bool) -> bool:
    ip = ip_literal(host)
    if ip is None or not allow_loopback:
        return False
    return (_embedded_ipv4(ip) or ip).is_loopback


def fetch_url_refusal(scheme: str, host: str, *, allow_loopback: bool) -> str | None:
    """Why we refuse to fetch a URL with this scheme and host, before any lookup, or None.
    A name passes here; the addresses it resolves to are checked when connecting."""
    ip = ip_literal(host)
    if ip is not None:
        reason = address_refusal(ip, allow_loopback=allow_loopback)
        if reason is not None:
            return f"{ip} is {reason}"
    if scheme != "https" and not (scheme == "http" and _loopback_literal(host, allow_loopback)):
        return f"{scheme or 'no'} scheme (https only)"
    return None if ip is not None else name_refusal(host)


def user_url_refusal(scheme: str, host: str, *, allow_loopback: bool) -> str | None:
    """Why a URL a caller gives (for a provider to fetch, or as a webhook) is refused, or
    None. A syntactic check, no DNS (for a provider's fetch, the provider resolves it, not
    us): https, a public-looking host name, no IP address. Where loopback is allowed (the
    local stack), a loopback address passes too: the local AWS endpoint's presigned URLs,
    a local webhook receiver."""
    if _loopback_literal(host, allow_loopback):
        return None
    if scheme != "https":
        return "must be an https URL"
    if ip_literal(host) is not None:
        return "must name a host, not an IP address"
    reason = name_refusal(host)
    return None if reason is None else f"must name a public host: {reason}"


MAX_WEBHOOK_URL_LENGTH = 2048


def webhook_url_refusal(url: str, *, allow_private: bool, resolve: bool = True) -> str | None:
    """Why a URL is refused as a webhook destination, or None: https (http only to
    loopback, where allowed), no credentials, at most MAX_WEBHOOK_URL_LENGTH characters, a
    host name (no IP address but loopback, where allowed) that is not a local name and
    (with `resolve`) resolves only to public addresses. Whatever is checked here, each
    delivery checks the addresses again when it connects."""
    from urllib.parse import urlsplit

    if len(url) > MAX_WEBHOOK_URL_LENGTH:
        return f"longer than {MAX_WEBHOOK_URL_LENGTH} characters"
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        return f"not a URL ({exc})"
    host = parts.hostname or ""
    if not host:
        return "has no host"
    if parts.username is not None or parts.password is not None:
        return "must not carry credentials"
    reason = user_url_refusal(parts.scheme, host, allow_loopback=allow_private)
    if reason is not None or not resolve:
        return reason
    try:
        checked_addresses(host, port, allow_loopback=allow_private)
    except FetchBlocked as exc:
        return f"must name a public host: {exc.reason}"
    except OSError:
        return f"{host} does not resolve"
    return None


def checked_addresses(host: str, port: int, *, allow_loopback: bool) -> list[str]:
    """The addresses to connect to for `host`: resolved once, every one checked. Raises
    FetchBlocked if any is refused, OSError if the name does not resolve."""
    literal = ip_literal(host)
    addresses = [str(literal)] if literal is not None else resolve(host, port)
    if not addresses:
        raise OSError(f"{host} resolves to no address")
    for address in addresses:
        reason = address_refusal(address, allow_loopback=allow_loopback)
        if reason is not None:
            where = address if literal is not None else f"{host} resolves to {address}, which"
            raise FetchBlocked(f"{where} is {reason}")
    return addresses


@cache
def guarded_client(*, timeout: float, allow_loopback: bool) -> httpx.Client:
    """An httpx client whose every request goes through the guards: scheme and host checked
    before it is sent, addresses checked when connecting, no redirect followed, no proxy or
    certificate settings taken from the environment. One per container and policy."""
    import httpx

    return httpx.Client(
        transport=_guarded_transport(allow_loopback),
        timeout=httpx.Timeout(timeout, connect=5.0),
        follow_redirects=False,
        trust_env=False,
    )


def _guarded_transport(allow_loopback: bool) -> httpx.HTTPTransport:
    # The classes subclass httpx's and httpcore's, so they are made where httpx is imported.
    import httpcore
    import httpx

    class PinnedBackend(httpcore.NetworkBackend):
        """Resolves, checks every address, and connects only to a checked one."""

        def __init__(self) -> None:
            self._inner = httpcore.SyncBackend()

        def connect_tcp(
            self,
            host: str,
            port: int,
            timeout: float | None = None,
            local_address: str | None = None,
            socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
        ) -> httpcore.NetworkStream:
            try:
                addresses = checked_addresses(host, port, allow_loopback=allow_loopback)
            except OSError as exc:
                raise httpcore.ConnectError(f"cannot resolve {host} ({exc})") from exc
            failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
            for address in addresses:
                try:
                    return self._inner.connect_tcp(
                        address, port, timeout, local_address, socket_options
                    )
                except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                    failure = exc
            assert failure is not None  # checked_addresses never answers an empty list
            raise failure

        def connect_unix_socket(
            self,
            path: str,
            timeout: float | None = None,
            socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
        ) -> httpcore.NetworkStream:
            raise FetchBlocked("a unix socket")

        def sleep(self, seconds: float) -> None:
            self._inner.sleep(seconds)

    class GuardedTransport(httpx.HTTPTransport):
        """httpx's transport with the scheme and host checked before every request, and a
        connection pool that connects through PinnedBackend."""

        def __init__(self) -> None:
            super().__init__(trust_env=False)
            # HTTPTransport takes no network backend: its pool is replaced by one that has
            # ours. Should httpx ever build it differently, fail here rather than unguarded.
            if not isinstance(getattr(self, "_pool", None), httpcore.ConnectionPool):
                raise RuntimeError("httpx.HTTPTransport changed: cannot install fetch guards")
            self._pool = httpcore.ConnectionPool(
                ssl_context=httpx.create_ssl_context(trust_env=False),
                max_connections=20,
                max_keepalive_connections=10,
                keepalive_expiry=5.0,
                network_backend=PinnedBackend(),
            )

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            url = request.url
            reason = fetch_url_refusal(url.scheme, url.host, allow_loopback=allow_loopback)
            if reason is not None:
                raise FetchBlocked(reason)
            return super().handle_request(request)

    return GuardedTransport()


@contextmanager
def open_stream(
    client: httpx.Client, url: str, *, max_redirects: int = MAX_REDIRECTS
) -> Iterator[httpx.Response]:
    """GET `url` through `client`, following at most `max_redirects` redirects by hand (each
    hop a new request, checked again); yields the final answer, its body not read yet.
    Raises FetchBlocked for a refused hop or one redirect too many."""
    target: str | httpx.URL = url
    for hop in range(max_redirects + 1):
        try:
            response = client.send(client.build_request("GET", target), stream=True)
        except FetchBlocked as exc:
            if hop:
                raise FetchBlocked(f"redirect {hop}: {exc.reason}") from None
            raise
        location = response.headers.get("location")
        if response.status_code not in REDIRECT_STATUSES or not location:
            try:
                yield response
            finally:
                response.close()
            return
        response.close()
        target = response.url.join(location)
    raise FetchBlocked(f"more than {max_redirects} redirects")


def capped(chunks: Iterable[bytes], max_bytes: int) -> Iterator[bytes]:
    """`chunks`, stopped with FetchBlocked as soon as they add up to more than `max_bytes`."""
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > max_bytes:
            raise FetchBlocked(f"larger than {max_bytes} bytes")
        yield chunk
