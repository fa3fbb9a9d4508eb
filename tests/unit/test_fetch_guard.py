"""The fetch guards: which addresses, schemes and names are refused, that a guarded client
connects only to the address it checked, and that redirects are followed by hand, at most
three, each hop checked again. DNS is the module's `resolve`, replaced here: no network.
Real connections go to a small HTTP server on loopback."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import ValidationError

from backdrop import fetch_guard
from backdrop.contracts.requests import GenerationRequest
from backdrop.fetch_guard import (
    FetchBlocked,
    address_refusal,
    capped,
    checked_addresses,
    fetch_url_refusal,
    guarded_client,
    name_refusal,
    open_stream,
    user_url_refusal,
)
from backdrop.image_types import sniff_image
from backdrop.workflow.failures import error_from_failure
from tests.conftest import image_bytes

PUBLIC = "93.184.216.34"
ANY_REASON = "(refused, whatever the reason)"


@pytest.mark.parametrize(
    ("address", "refused", "with_loopback"),
    [
        ("127.0.0.1", "a loopback address", None),
        ("127.1.2.3", "a loopback address", None),
        ("::1", "a loopback address", None),
        ("10.0.0.1", "a private address", "a private address"),
        ("172.16.5.4", "a private address", "a private address"),
        ("192.168.1.1", "a private address", "a private address"),
        ("169.254.169.254", "the cloud metadata address", "the cloud metadata address"),
        ("fd00:ec2::254", "the cloud metadata address", "the cloud metadata address"),
        ("169.254.170.2", "a link-local address", "a link-local address"),
        ("fe80::1", "a link-local address", "a link-local address"),
        (
            "100.64.0.1",
            "a shared (carrier-grade NAT) address",
            "a shared (carrier-grade NAT) address",
        ),
        ("0.0.0.0", "an unspecified address", "an unspecified address"),  # noqa: S104
        ("::", "an unspecified address", "an unspecified address"),
        ("224.0.0.1", "a multicast address", "a multicast address"),
        ("240.0.0.1", "a private address", "a private address"),
        ("fc00::1", "a private address", "a private address"),
        # (Python versions name these two differently; all refuse them)
        ("192.0.0.192", ANY_REASON, ANY_REASON),
        ("fec0::1", ANY_REASON, ANY_REASON),
        # IPv6 forms that carry an IPv4 address are judged by the address they carry
        ("::ffff:127.0.0.1", "a loopback address", None),
        ("::ffff:169.254.169.254", "the cloud metadata address", "the cloud metadata address"),
        ("64:ff9b::a9fe:a9fe", "the cloud metadata address", "the cloud metadata address"),
        ("2002:a00:1::", "a private address", "a private address"),
        (PUBLIC, None, None),
        ("2606:4700:4700::1111", None, None),
        ("::ffff:93.184.216.34", None, None),
    ],
)
def test_only_public_addresses_pass_and_loopback_only_where_allowed(
    address: str, refused: str | None, with_loopback: str | None
) -> None:
    for allow_loopback, expected in [(False, refused), (True, with_loopback)]:
        reason = address_refusal(address, allow_loopback=allow_loopback)
        assert reason is not None if expected is ANY_REASON else reason == expected


@pytest.mark.parametrize(
    ("scheme", "host", "allow_loopback", "refused"),
    [
        ("https", "cdn.picsart.io", False, None),
        ("https", PUBLIC, False, None),
        ("http", "cdn.picsart.io", False, "http scheme (https only)"),
        ("http", "cdn.picsart.io", True, "http scheme (https only)"),
        ("ftp", "cdn.picsart.io", False, "ftp scheme (https only)"),
        ("file", "", True, "file scheme (https only)"),
        ("http", "127.0.0.1", False, "127.0.0.1 is a loopback address"),
        ("http", "127.0.0.1", True, None),
        ("https", "127.0.0.1", False, "127.0.0.1 is a loopback address"),
        ("https", "::1", True, None),
        ("http", "10.0.0.1", True, "10.0.0.1 is a private address"),
        ("https", "10.0.0.1", True, "10.0.0.1 is a private address"),
        ("http", "169.254.169.254", True, "169.254.169.254 is the cloud metadata address"),
        ("https", "169.254.169.254", True, "169.254.169.254 is the cloud metadata address"),
        ("https", "localhost", True, "localhost is a local name"),
        ("https", "metadata.google.internal", False, "metadata.google.internal is a local name"),
        ("https", "instance-data", False, "instance-data is a single-label name"),
    ],
)
def test_fetched_urls_are_https_to_allowed_hosts(
    scheme: str, host: str, allow_loopback: bool, refused: str | None
) -> None:
    reason = fetch_url_refusal(scheme, host, allow_loopback=allow_loopback)
    if refused is None:
        assert reason is None
    else:
        assert reason is not None
        assert reason.startswith(refused)


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("https://images.example.com/mug.png", None),
        ("https://cdn.shop.example.co.uk/p/1.jpg?v=2", None),
        ("https://images.example.com./mug.png", None),
        ("http://example.com/x.png", "must be an https URL"),
        ("https://10.0.0.1/x.png", "must name a host, not an IP address"),
        ("https://169.254.169.254/x", "must name a host, not an IP address"),
        ("https://93.184.216.34/x.png", "must name a host, not an IP address"),
        ("https://[::1]/x.png", "must name a host, not an IP address"),
        ("https://2130706433/x.png", "must name a host, not an IP address"),
        ("https://0x7f.1/x.png", "must name a host, not an IP address"),
        ("https://images.example.com@10.0.0.1/x.png", "must name a host, not an IP address"),
        ("https://localhost/x.png", "must name a public host: localhost is a local name"),
        ("https://a.localhost/x.png", "must name a public host: a.localhost is a local name"),
        ("https://printer.local/x.png", "must name a public host: printer.local is a local"),
        ("https://db.internal/x.png", "must name a public host: db.internal is a local name"),
        ("https://router.home.arpa/x", "must name a public host: router.home.arpa is a local"),
        ("https://nas/x.png", "must name a public host: nas is a single-label name"),
        ("https://1.2.3.0x10/x.png", "must name a host, not an IP address"),
    ],
)
def test_caller_urls_are_checked_without_dns(
    url: str, refused: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fetch_guard, "resolve", _no_dns)
    try:
        GenerationRequest.model_validate({"image_url": url})
        reason = None
    except ValidationError as exc:
        (error,) = exc.errors()
        assert error["loc"] == ("image_url",)
        reason = str(error["msg"]).removeprefix("Value error, ")
    if refused is None:
        assert reason is None
    else:
        assert reason is not None
        assert reason.startswith(refused)


def test_guidance_urls_are_checked_too() -> None:
    body = {"image_key": "uploads/a.png", "guidance": {"image_url": "https://10.0.0.1/g.png"}}
    with pytest.raises(ValidationError) as caught:
        GenerationRequest.model_validate(body)
    assert caught.value.errors()[0]["loc"] == ("guidance", "image_url")


def test_loopback_image_urls_pass_only_where_the_stack_allows_loopback() -> None:
    local_aws = ("http", "127.0.0.1")  # a presigned URL of the local stack's AWS endpoint
    assert user_url_refusal(*local_aws, allow_loopback=False) == "must be an https URL"
    assert user_url_refusal(*local_aws, allow_loopback=True) is None
    for scheme, host in [("http", "localhost"), ("http", "10.0.0.1"), ("https", "169.254.169.254")]:
        assert user_url_refusal(scheme, host, allow_loopback=True) is not None


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("cdn.picsart.io", None),
        ("cdn.picsart.io.", None),
        ("LOCALHOST", "localhost is a local name"),
        ("metadata.google.internal", "metadata.google.internal is a local name (.internal)"),
        ("instance-data", "instance-data is a single-label name, not a public one"),
        ("0x7f.1", "0x7f.1 reads as an IP address"),
        ("2130706433", "2130706433 is a single-label name, not a public one"),
        ("", "no host"),
    ],
)
def test_names_that_cannot_be_public_are_refused_before_any_lookup(
    host: str, reason: str | None
) -> None:
    assert name_refusal(host) == reason


def test_every_address_a_name_resolves_to_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = {"cdn.test": [PUBLIC], "mixed.test": [PUBLIC, "127.0.0.1"], "none.test": []}
    monkeypatch.setattr(fetch_guard, "resolve", lambda host, port: answers[host])

    assert checked_addresses("cdn.test", 443, allow_loopback=False) == [PUBLIC]
    with pytest.raises(FetchBlocked) as caught:
        checked_addresses("mixed.test", 443, allow_loopback=False)
    assert caught.value.reason == "mixed.test resolves to 127.0.0.1, which is a loopback address"
    with pytest.raises(OSError, match="no address"):
        checked_addresses("none.test", 443, allow_loopback=False)


def test_the_client_connects_to_the_address_it_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a name whose second lookup would answer loopback (DNS rebinding)
    answers = iter([[PUBLIC], ["127.0.0.1"]])
    lookups: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        lookups.append(host)
        return next(answers)

    dialled: list[tuple[str, int]] = []

    def dial(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        dialled.append(address)
        raise OSError("no network in unit tests")

    monkeypatch.setattr(fetch_guard, "resolve", rebinding)
    monkeypatch.setattr(socket, "create_connection", dial)
    client = _client(allow_loopback=False)

    # When it is fetched
    with pytest.raises(httpx.ConnectError):
        client.get("https://cdn.test/a.png")

    # Then it was looked up once, and the socket dialled the address that was checked
    assert lookups == ["cdn.test"]
    assert dialled == [(PUBLIC, 443)]


def test_a_name_resolving_to_a_refused_address_is_never_dialled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fetch_guard, "resolve", lambda host, port: ["169.254.169.254"])
    monkeypatch.setattr(socket, "create_connection", _never)

    with pytest.raises(FetchBlocked) as caught:
        _client(allow_loopback=True).get("https://evil.test/latest/meta-data/?token=secret")

    assert caught.value.reason == (
        "evil.test resolves to 169.254.169.254, which is the cloud metadata address"
    )
    assert "secret" not in str(caught.value)


def test_the_guarded_client_follows_no_redirect_and_ignores_proxy_settings(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.test:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.test:3128")
    client = _client(allow_loopback=True)

    answer = client.get(f"{server}/hops/1")

    assert answer.status_code == 302
    assert client.follow_redirects is False
    assert client.trust_env is False


def test_loopback_over_http_is_refused_unless_allowed(server: str) -> None:
    with pytest.raises(FetchBlocked, match=r"^127\.0\.0\.1 is a loopback address$"):
        _client(allow_loopback=False).get(f"{server}/image")
    assert _client(allow_loopback=True).get(f"{server}/image").status_code == 200


@pytest.mark.parametrize("hops", [0, 1, 3])
def test_up_to_three_redirects_are_followed(server: str, hops: int) -> None:
    with open_stream(_client(allow_loopback=True), f"{server}/hops/{hops}") as answer:
        assert answer.status_code == 200
        assert answer.read() == image_bytes("PNG")


def test_a_fourth_redirect_is_refused(server: str) -> None:
    with (
        pytest.raises(FetchBlocked, match=r"^more than 3 redirects$"),
        open_stream(_client(allow_loopback=True), f"{server}/hops/4"),
    ):
        pass


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("http://169.254.169.254/latest/", "redirect 1: 169.254.169.254 is the cloud metadata"),
        ("https://169.254.169.254/x", "redirect 1: 169.254.169.254 is the cloud metadata"),
        ("https://10.0.0.1/x.png", "redirect 1: 10.0.0.1 is a private address"),
        ("http://example.com/x.png", "redirect 1: http scheme (https only)"),
        ("ftp://example.com/x.png", "redirect 1: ftp scheme (https only)"),
        ("file:///etc/passwd", "redirect 1: no scheme (https only)"),
        ("https://evil.test/x.png", "redirect 1: evil.test resolves to 10.1.2.3, which is a"),
    ],
)
def test_every_redirect_is_checked_again(
    server: str, location: str, reason: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fetch_guard, "resolve", lambda host, port: ["10.1.2.3"])
    monkeypatch.setattr(socket, "create_connection", _loopback_only(socket.create_connection))
    with (
        pytest.raises(FetchBlocked) as caught,
        open_stream(_client(allow_loopback=True), f"{server}/to?location={location}"),
    ):
        pass
    assert caught.value.reason.startswith(reason)


def test_a_body_is_stopped_past_its_cap() -> None:
    assert b"".join(capped(iter([b"ab", b"cd"]), 4)) == b"abcd"
    stream = capped(iter([b"ab", b"cd", b"e"]), 4)
    assert next(stream) + next(stream) == b"abcd"
    with pytest.raises(FetchBlocked, match=r"^larger than 4 bytes$"):
        next(stream)


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (image_bytes("JPEG"), "image/jpeg"),
        (image_bytes("PNG"), "image/png"),
        (image_bytes("WEBP"), "image/webp"),
        (image_bytes("GIF"), None),
        (b"<!doctype html><title>x</title>", None),
        (b"", None),
    ],
)
def test_results_are_judged_images_by_their_bytes(data: bytes, content_type: str | None) -> None:
    assert sniff_image(data[:12]) == content_type


def test_a_blocked_result_fails_the_job_as_result_blocked() -> None:
    cause = '{"errorType": "ResultBlocked", "errorMessage": "result 0 was not downloaded: x"}'
    failure = error_from_failure("ResultBlocked", cause)
    assert (failure.code, failure.message) == ("result_blocked", "result 0 was not downloaded: x")


# --- helpers -------------------------------------------------------------------------------


def _client(*, allow_loopback: bool) -> httpx.Client:
    guarded_client.cache_clear()  # one client per test: no connection kept from another
    return guarded_client(timeout=5.0, allow_loopback=allow_loopback)


def _no_dns(host: str, port: int) -> list[str]:
    raise AssertionError(f"the API looked up {host}")


def _never(*args: Any, **kwargs: Any) -> socket.socket:
    raise AssertionError(f"dialled {args}")


def _loopback_only(dial: Callable[..., socket.socket]) -> Callable[..., socket.socket]:
    """socket.create_connection for the test server alone: anything else fails the test."""

    def guarded(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        if address[0] != "127.0.0.1":
            raise AssertionError(f"dialled {address}")
        return dial(address, *args, **kwargs)

    return guarded


class _Handler(BaseHTTPRequestHandler):
    """/hops/N: N redirects, then the image; /to?location=L: a redirect to L; else a PNG."""

    def do_GET(self) -> None:
        path = urlsplit(self.path)
        if path.path.startswith("/hops/") and path.path != "/hops/0":
            left = int(path.path.removeprefix("/hops/"))
            location = f"/hops/{left - 1}"
        elif path.path == "/to":
            location = parse_qs(path.query)["location"][0]
        else:
            body = image_bytes("PNG")
            self.send_response(200)
            self.send_header("content-type", "image/png")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(302)
        self.send_header("location", location)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
