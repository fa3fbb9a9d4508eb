"""boto3 calls made in this process to the local AWS skip HTTP: they go straight to the
moto backends the server holds, as `mock_aws` routes them.

Everything in the local stack that calls AWS (the functions, moto's Step Functions engine,
the pollers) runs in the server's process, so a call over loopback would be a request it
makes to itself: serialised, sent, parsed by the server's web stack on another thread, and
the answer back the same way, spending the CPU the stack needs for the work. The server
still answers everything from outside (the aws CLI, `backdrop` against the ready file,
presigned URLs, which boto3 makes without sending anything). The backends, and so what a
call does, are the same either way.
"""

from __future__ import annotations

import sys
from functools import cache
from typing import Any

from botocore.awsrequest import AWSPreparedRequest
from moto import backend_index
from moto.core.botocore_stubber import BotocoreStubber
from moto.core.models import botocore_stubber

_served = BotocoreStubber.process_request
_endpoint: str | None = None
# Python hands the GIL to another thread every 5 ms by default. An in-process call never
# waits on a socket, so among a batch's dozens of threads it would be cut into slices and
# interleaved with others: the rate governor's read and conditional write would collide far
# more often than AWS's own round trips let them, and the switches cost CPU. At 50 ms a
# call mostly ends within its slice.
_SWITCH_INTERVAL = 0.05
_switch_interval = sys.getswitchinterval()


def install(endpoint: str) -> None:
    """Serve in-process every boto3 request this process sends to `endpoint`."""
    global _endpoint
    _endpoint = endpoint.rstrip("/") + "/"
    BotocoreStubber.process_request = _process_request  # type: ignore[method-assign]
    botocore_stubber.enabled = True
    sys.setswitchinterval(_SWITCH_INTERVAL)


def uninstall() -> None:
    global _endpoint
    _endpoint = None
    botocore_stubber.enabled = False
    BotocoreStubber.process_request = _served  # type: ignore[method-assign]
    sys.setswitchinterval(_switch_interval)


def _process_request(self: BotocoreStubber, request: AWSPreparedRequest) -> Any:
    if _endpoint is not None and request.url.startswith(_endpoint):
        host = _aws_host(request)
        if host is None:
            return None  # left to the server, over HTTP
        request.url = f"https://{host}/{request.url[len(_endpoint) :]}"
    return _served(self, request)


def _aws_host(request: AWSPreparedRequest) -> str | None:
    """The AWS host of a request signed for a service and region (the server infers the
    service the same way), if moto's in-process routing knows it."""
    authorization = request.headers.get("Authorization")
    if isinstance(authorization, bytes):
        authorization = authorization.decode()
    try:
        scope = str(authorization).split(",")[0].split()[1]
        _, _, region, service, _ = scope.split("/")
    except (IndexError, ValueError):
        return None
    return _routed(f"{service}.{region}.amazonaws.com")


@cache
def _routed(host: str) -> str | None:
    url = f"https://{host}/"
    if any(pattern.match(url) for _, pattern in backend_index.backend_url_patterns):
        return host
    return None
