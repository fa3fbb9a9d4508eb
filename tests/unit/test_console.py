"""GET /console and its assets through the API's real resolver, in process (no AWS): the
page, its two assets, the policy every answer carries, and nothing else served."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any, cast

import pytest
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.utilities.typing import LambdaContext

from backdrop.api import app as api_app
from backdrop.api import console
from backdrop.api.container import Api, serving
from tests.conftest import load_event

ORIGINS = ["https://results.s3.eu-west-1.amazonaws.com", "http://127.0.0.1:4566"]


@dataclass
class _Api:
    """What the console's routes use of the container."""

    resolver: APIGatewayRestResolver
    origins: list[str]

    def image_origins(self) -> list[str]:
        return self.origins


class _Context:
    function_name = "api"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:api"
    aws_request_id = "request"


def get(
    path: str, origins: list[str] = ORIGINS, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], str]:
    api = _Api(api_app.resolver(["*"]), origins)
    event = load_event("api-get-generation")
    event["path"] = event["resource"] = event["requestContext"]["resourcePath"] = path
    event["pathParameters"] = None
    for name, value in (headers or {}).items():
        event["headers"][name] = value
        event["multiValueHeaders"][name] = [value]
    # The page needs no key: API Gateway sends none (template.yaml: ApiKeyRequired false).
    event["headers"].pop("x-api-key", None)
    event["multiValueHeaders"].pop("x-api-key", None)
    with serving(cast(Api, api)):
        answer = api.resolver.resolve(event, cast(LambdaContext, _Context()))
    answered = {k: v[0] for k, v in (answer.get("multiValueHeaders") or {}).items()}
    answered |= answer.get("headers") or {}
    return answer["statusCode"], answered, answer["body"]


def directives(headers: dict[str, str]) -> dict[str, list[str]]:
    parts = (d.split() for d in headers["Content-Security-Policy"].split(";") if d.strip())
    return {name: values for name, *values in parts}


@pytest.mark.parametrize(
    ("path", "content_type", "file"),
    [
        ("/console", "text/html; charset=utf-8", "index.html"),
        ("/console/console.js", "text/javascript; charset=utf-8", "console.js"),
        ("/console/console.css", "text/css; charset=utf-8", "console.css"),
        ("/console/favicon.svg", "image/svg+xml", "favicon.svg"),
    ],
)
def test_the_page_and_its_assets_are_served_as_what_they_are(
    path: str, content_type: str, file: str
) -> None:
    status, headers, body = get(path)

    assert status == 200
    assert headers["Content-Type"] == content_type
    assert body == (console.PAGE_DIR / file).read_text(encoding="utf-8")
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cache-Control"] == "no-cache"


def test_every_answer_has_the_strict_policy() -> None:
    _, headers, _ = get("/console")

    assert directives(headers) == {
        "default-src": ["'none'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", *ORIGINS, "https:"],
        "connect-src": ["'self'"],
        "base-uri": ["'none'"],
        "form-action": ["'none'"],
        "frame-ancestors": ["'none'"],
    }


def test_an_origin_that_is_not_one_never_reaches_the_policy() -> None:
    _, headers, _ = get("/console", ["https://ok.example", "https://x; script-src *", "*"])

    assert directives(headers)["img-src"] == ["'self'", "https://ok.example", "https:"]
    assert directives(headers)["script-src"] == ["'self'"]


@pytest.mark.parametrize(
    "asset", ["index.html", "other.js", "..%2Fapi%2Fconsole.py", "__init__.py", "console.JS"]
)
def test_nothing_else_is_served(asset: str) -> None:
    status, headers, body = get(f"/console/{asset}")

    assert status == 404
    assert json.loads(body)["error"]["code"] == "not_found"
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_the_routes_stay_out_of_the_openapi_document() -> None:
    document = api_app.openapi_document(api_app.resolver(["*"]))

    assert not [path for path in document["paths"] if path.startswith("/console")]


class _Markup(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        if self.tags and self.tags[-1][0] in {"script", "style"} and data.strip():
            self.inline.append(data)


def test_the_page_has_no_inline_code_and_loads_only_its_own_assets() -> None:
    markup = _Markup()
    markup.feed((console.PAGE_DIR / console.PAGE).read_text(encoding="utf-8"))
    tags: list[tuple[str, dict[str, Any]]] = markup.tags

    assert markup.inline == []
    assert not [tag for tag, _ in tags if tag == "style"]
    assert not [a for _, attrs in tags for a in attrs if a == "style" or a.startswith("on")]
    loaded = {
        attrs.get("src") or attrs.get("href") for tag, attrs in tags if tag in {"script", "link"}
    }
    assert loaded == {f"console/{asset}" for asset in console.ASSETS}


def test_the_script_never_writes_markup() -> None:
    script = (console.PAGE_DIR / "console.js").read_text(encoding="utf-8")

    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(", script)
    assert "localStorage" not in script
    assert "document.cookie" not in script


def test_the_page_is_small() -> None:
    files = [console.PAGE, *console.ASSETS]

    assert sum((console.PAGE_DIR / name).stat().st_size for name in files) < 30_000


def test_an_unchanged_file_is_revalidated_without_its_body() -> None:
    _, headers, body = get("/console/console.js")
    tag = headers["ETag"]
    assert body

    status, again, empty = get("/console/console.js", headers={"If-None-Match": f"W/x, {tag}"})
    assert (status, empty, again["ETag"]) == (304, "", tag)
    assert "Content-Security-Policy" in again
    # Another tag, or another file's: the file itself.
    assert get("/console/console.js", headers={"If-None-Match": '"stale"'})[0] == 200
    assert get("/console", headers={"If-None-Match": tag})[0] == 200
