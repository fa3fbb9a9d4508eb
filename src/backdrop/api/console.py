"""GET /console and its assets: the review console, a static page (backdrop/console/) that
calls the API from the reviewer's browser with the reviewer's key. The page holds no data,
so it needs no key; every answer is under a policy that lets it run only its own code."""

from __future__ import annotations

import hashlib
import re
from functools import cache
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from backdrop.api.container import current

router = APIGatewayRouter()  # type: ignore[no-untyped-call]

PAGE_DIR = Path(__file__).resolve().parents[1] / "console"
PAGE = "index.html"
# What /console/<asset> serves: nothing else in the directory, whatever the name asked.
ASSETS = {
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
    # Named by the page, so a browser does not ask the stack for /favicon.ico (a 404).
    "favicon.svg": "image/svg+xml",
}
# An origin as the settings give it; anything else could smuggle a directive into the policy.
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]+)?")


def policy() -> str:
    """The Content-Security-Policy: the page's own script, style and API; images also from
    where results are stored (presigned URLs) and from any https host (photos given by URL)."""
    origins = [o for o in current().image_origins() if _ORIGIN.fullmatch(o)]
    images = " ".join(dict.fromkeys(["'self'", *origins, "https:"]))
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src {images}",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


def _guarded(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
    # An unknown asset keeps the one error shape (errors.py) and, as every answer here,
    # the policy and headers.
    try:
        response = next_middleware(app)
    except NotFoundError as missing:
        answer = app.exception_handler_manager.lookup_exception_handler(NotFoundError)
        if answer is None:
            raise
        response = answer(missing)
    response.headers.update(
        {
            "Content-Security-Policy": policy(),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            # Revalidated on every load (a deploy's page and assets are never mixed), by
            # ETag: unchanged files answer 304 with no body.
            "Cache-Control": "no-cache",
        }
    )
    if response.status_code == 200 and isinstance(response.body, str):
        tag = f'"{hashlib.sha256(response.body.encode()).hexdigest()[:32]}"'
        response.headers["ETag"] = tag
        asked = app.current_event.headers.get("if-none-match") or ""
        if tag in (part.strip() for part in asked.split(",")):
            response.status_code, response.body = 304, ""
    return response


@cache  # the files of the deployed package never change under a container
def _read(name: str) -> str:
    return (PAGE_DIR / name).read_text(encoding="utf-8")


@router.get("/console", include_in_schema=False, middlewares=[_guarded])
def console_page() -> Response[str]:
    return Response(status_code=200, content_type="text/html; charset=utf-8", body=_read(PAGE))


@router.get("/console/<asset>", include_in_schema=False, middlewares=[_guarded])
def console_asset(asset: str) -> Response[str]:
    if asset not in ASSETS:
        raise NotFoundError
    return Response(status_code=200, content_type=ASSETS[asset], body=_read(asset))
