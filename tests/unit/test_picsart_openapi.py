"""What PicsartClient sends, checked against Picsart's own OpenAPI description.

The spec lives outside the repo, in ../shared/reference/ (CI clones the repo with shared/
beside it). The request schema is read from the spec, `$ref`s and `allOf`/`oneOf`/`anyOf`
resolved, and every multipart body the client produces is checked against it.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import respx
import yaml

from backdrop.providers.picsart import DEFAULT_BASE_URL, PicsartClient

SPEC_PATH = (
    Path(__file__).resolve().parents[3]
    / "shared"
    / "reference"
    / "picsart-genai-tools.openapi.yaml"
)
SUBMIT_PATH = "/painting/replace-background"
POLL_PATH = "/painting/{inference_id}"
BASE = "https://picsart.example.test/v1"
API_KEY = "pk-openapi-test-key"
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)
# The spec's prose marks the image sources as mutually exclusive with this sentence.
EXCLUSIVE_SOURCE_PROSE = "the other image source parameters must be empty"


# --------------------------------------------------------------------------- the spec


def load_spec(path: Path) -> dict[str, Any]:
    """The parsed spec; a clear failure (never a skip) when it is not there."""
    if not path.is_file():
        pytest.fail(
            f"Picsart's OpenAPI spec is missing: expected {path}. These tests need the "
            "shared/ folder checked out beside the repo (shared/reference/"
            "picsart-genai-tools.openapi.yaml); they must not pass without it.",
            pytrace=False,
        )
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict), f"{path} is not a YAML mapping"
    assert str(loaded.get("openapi", "")).startswith("3."), f"{path} is not OpenAPI 3"
    return loaded


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return load_spec(SPEC_PATH)


def resolve(spec: dict[str, Any], node: Any) -> Any:
    """Follow local `$ref`s (JSON pointers into the same document) until a real node."""
    seen: set[str] = set()
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert isinstance(ref, str), ref
        assert ref.startswith("#/"), f"only local $refs are supported, got {ref!r}"
        assert ref not in seen, f"$ref cycle at {ref!r}"
        seen.add(ref)
        node = spec
        for token in ref[2:].split("/"):
            node = node[token.replace("~1", "/").replace("~0", "~")]
    return node


@dataclass
class FormSchema:
    """A multipart schema flattened: every property any part can contribute."""

    properties: dict[str, dict[str, Any]]
    required: set[str]


def flatten(spec: dict[str, Any], schema: Any) -> FormSchema:
    schema = resolve(spec, schema)
    properties = {name: resolve(spec, prop) for name, prop in schema.get("properties", {}).items()}
    required = set(schema.get("required", []))
    for combinator in ("allOf", "oneOf", "anyOf"):
        for part in schema.get(combinator, []):
            inner = flatten(spec, part)
            for name, prop in inner.properties.items():
                assert properties.setdefault(name, prop) == prop, f"{name} defined twice"
            # Only allOf parts are all required; oneOf/anyOf requirements are conditional.
            if combinator == "allOf":
                required |= inner.required
    return FormSchema(properties, required)


def operation(spec: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    paths = spec["paths"]
    assert path in paths, f"{path} is not in the spec"
    item = resolve(spec, paths[path])
    assert method in item, f"{method.upper()} {path} is not in the spec"
    return resolve(spec, item[method])  # type: ignore[no-any-return]


def submit_schema(spec: dict[str, Any]) -> FormSchema:
    post = operation(spec, SUBMIT_PATH, "post")
    assert post["operationId"] == "genai-smart-background"
    body = resolve(spec, post["requestBody"])
    content = body["content"]
    assert "multipart/form-data" in content, list(content)
    return flatten(spec, content["multipart/form-data"]["schema"])


# --------------------------------------------------------------------------- the checker


@dataclass(frozen=True)
class Part:
    name: str
    value: bytes
    is_file: bool


def parse_multipart(request: httpx.Request) -> list[Part]:
    """Split a captured multipart/form-data request into its parts, in order."""
    content_type = request.headers["content-type"]
    assert content_type.startswith("multipart/form-data"), content_type
    raw = b"Content-Type: " + content_type.encode("ascii") + b"\r\n\r\n" + request.read()
    message = BytesParser(policy=policy.HTTP).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    assert message.is_multipart(), "the body is not a multipart message"
    assert not message.defects, message.defects
    parts: list[Part] = []
    for sub in message.iter_parts():
        assert isinstance(sub, EmailMessage)
        assert sub.get_content_disposition() == "form-data", sub.get("content-disposition")
        name = sub.get_param("name", header="content-disposition")
        assert isinstance(name, str), f"a part without a name: {sub}"
        payload = sub.get_payload(decode=True)
        assert isinstance(payload, bytes)
        parts.append(Part(name, payload, is_file=sub.get_filename() is not None))
    return parts


def check_form(schema: FormSchema, parts: list[Part]) -> list[str]:
    """Every way `parts` break `schema`; empty when the body is valid."""
    problems: list[str] = []
    names = [part.name for part in parts]
    for name in sorted(set(names)):
        if names.count(name) > 1:
            problems.append(f"{name}: sent {names.count(name)} times")
    problems += [f"{name}: required but not sent" for name in sorted(schema.required - {*names})]
    sources = sorted(
        name
        for name, prop in schema.properties.items()
        if EXCLUSIVE_SOURCE_PROSE in prop.get("description", "")
    )
    if sources and len(set(names) & set(sources)) != 1:
        problems.append(f"image source: exactly one of {sources} must be sent, got {names}")
    for part in parts:
        prop = schema.properties.get(part.name)
        if prop is None:
            problems.append(f"{part.name}: not a property of the request schema")
            continue
        problems += [f"{part.name}: {problem}" for problem in check_value(prop, part)]
    return problems


def check_value(prop: dict[str, Any], part: Part) -> list[str]:
    binary = prop.get("type") == "string" and prop.get("format") == "binary"
    if binary:
        return [] if part.is_file else ["a binary property sent as a text field"]
    if part.is_file:
        return ["a text property sent as a file part"]
    try:
        text = part.value.decode("utf-8")
    except UnicodeDecodeError:
        return ["not UTF-8 text"]
    problems: list[str] = []
    kind = prop.get("type", "string")
    value: Any = text
    if kind == "integer":
        if not re.fullmatch(r"-?\d+", text):
            return [f"{text!r} is not an integer"]
        value = int(text)
    elif kind == "number":
        try:
            value = float(text)
        except ValueError:
            return [f"{text!r} is not a number"]
    elif kind == "boolean":
        if text not in ("true", "false"):
            return [f"{text!r} is not a boolean"]
        value = text == "true"
    if "enum" in prop and value not in prop["enum"]:
        problems.append(f"{text!r} is not one of {prop['enum']}")
    if kind in ("integer", "number"):
        if "minimum" in prop and (
            value < prop["minimum"]
            or (prop.get("exclusiveMinimum") is True and value == prop["minimum"])
        ):
            problems.append(f"{value} is below the minimum {prop['minimum']}")
        if "maximum" in prop and (
            value > prop["maximum"]
            or (prop.get("exclusiveMaximum") is True and value == prop["maximum"])
        ):
            problems.append(f"{value} is above the maximum {prop['maximum']}")
    if kind == "string":
        if "maxLength" in prop and len(text) > prop["maxLength"]:
            problems.append(f"{len(text)} characters, longer than maxLength {prop['maxLength']}")
        if "minLength" in prop and len(text) < prop["minLength"]:
            problems.append(f"{len(text)} characters, shorter than minLength {prop['minLength']}")
        if "pattern" in prop and not re.search(prop["pattern"], text):
            problems.append(f"{text!r} does not match {prop['pattern']!r}")
        if prop.get("format") == "uri" and text:
            split = urlsplit(text)
            if not (split.scheme and split.netloc):
                problems.append(f"{text!r} is not an absolute URI")
    return problems


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        mock.post(SUBMIT_PATH).respond(202, json={"status": "processing", "inference_id": "i-1"})
        yield mock


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client() as client:
        yield client


@pytest.fixture
def client(http: httpx.Client) -> PicsartClient:
    return PicsartClient(API_KEY, base_url=BASE, http=http)


def sent_submit(router: respx.MockRouter) -> httpx.Request:
    calls = [call for call in router.calls if call.request.url.path.endswith(SUBMIT_PATH)]
    assert len(calls) == 1, f"expected one submit, saw {len(calls)}"
    request: httpx.Request = calls[0].request
    return request


# --------------------------------------------------------------------------- the spec itself


def test_spec_request_schema_has_the_fields_the_client_uses(spec: dict[str, Any]) -> None:
    # Sanity of the flattening: if this breaks, the other tests check against nothing.
    schema = submit_schema(spec)
    assert {"image", "image_url", "prompt", "negative_prompt", "count", "format", "mode"} <= set(
        schema.properties
    )
    assert "prompt" in schema.required
    assert schema.properties["format"]["enum"] == ["JPG", "PNG", "WEBP"]
    assert (schema.properties["count"]["minimum"], schema.properties["count"]["maximum"]) == (1, 10)
    assert schema.properties["image"]["format"] == "binary"


def test_poll_path_is_a_get_with_the_inference_id(spec: dict[str, Any]) -> None:
    get = operation(spec, POLL_PATH, "get")
    params = [resolve(spec, p) for p in get.get("parameters", [])]
    assert {"name": "inference_id", "in": "path", "required": True}.items() <= next(
        p for p in params if p["name"] == "inference_id"
    ).items()
    assert {"200", "202"} <= set(get["responses"])


def test_balance_is_a_get(spec: dict[str, Any]) -> None:
    operation(spec, "/balance", "get")


def test_client_default_base_url_is_a_spec_server(spec: dict[str, Any]) -> None:
    assert DEFAULT_BASE_URL in [server["url"] for server in spec["servers"]]


def test_security_scheme_is_the_api_key_header(spec: dict[str, Any]) -> None:
    post = operation(spec, SUBMIT_PATH, "post")
    requirements = post.get("security", spec.get("security"))
    assert requirements, "the spec declares no security for the submit"
    schemes = spec["components"]["securitySchemes"]
    names = [name for requirement in requirements for name in requirement]
    assert names
    for name in names:
        scheme = resolve(spec, schemes[name])
        assert scheme["type"] == "apiKey"
        assert scheme["in"] == "header"
        assert scheme["name"] == "X-Picsart-API-Key"


def test_answer_fields_the_client_reads_are_in_the_spec(spec: dict[str, Any]) -> None:
    def props(op: dict[str, Any], status: str) -> dict[str, Any]:
        response = resolve(spec, op["responses"][status])
        schema = resolve(spec, response["content"]["application/json"]["schema"])
        return {name: resolve(spec, p) for name, p in schema["properties"].items()}

    submit = operation(spec, SUBMIT_PATH, "post")
    poll = operation(spec, POLL_PATH, "get")
    # submit's async answer carries the id the client returns
    assert {"status", "inference_id"} <= set(props(submit, "202"))
    # poll's result carries data[].url, which the client turns into urls
    result = props(poll, "200")
    assert "status" in result
    assert "url" in resolve(spec, result["data"]["items"])["properties"]
    assert props(operation(spec, "/balance", "get"), "200")["credits"]["type"] == "integer"
    error = resolve(spec, spec["components"]["schemas"]["Error"])
    assert {"code", "message", "detail"} <= set(error["properties"])


# --------------------------------------------------------------------------- the client's bodies

COMBINATIONS = list(
    itertools.product(
        ["image_url", "image"], [None, "blurry, text"], ["JPG", "PNG", "WEBP"], [1, 10]
    )
)


@pytest.mark.parametrize(
    ("source", "negative_prompt", "fmt", "count"),
    COMBINATIONS,
    ids=[f"{s}-{'neg' if n else 'noneg'}-{f}-{c}" for s, n, f, c in COMBINATIONS],
)
def test_submit_body_conforms_to_the_spec(
    spec: dict[str, Any],
    router: respx.MockRouter,
    client: PicsartClient,
    source: str,
    negative_prompt: str | None,
    fmt: str,
    count: int,
) -> None:
    # Given one combination of options
    image: dict[str, Any] = (
        {"image_url": "https://cdn.example.test/products/p-1.png"}
        if source == "image_url"
        else {"image": PNG}
    )
    # When the client submits it
    client.replace_background(
        prompt="a product on a marble table, soft window light",
        negative_prompt=negative_prompt,
        format=fmt,
        count=count,
        **image,
    )
    # Then the multipart body it sent is valid against the spec's request schema
    request = sent_submit(router)
    parts = parse_multipart(request)
    assert check_form(submit_schema(spec), parts) == []
    # ... and it is the body we meant (so an empty or partial body cannot pass)
    sent = {part.name: part.value for part in parts}
    assert sent[source] == (PNG if source == "image" else image["image_url"].encode())
    assert sent["format"] == fmt.encode()
    assert sent["count"] == str(count).encode()
    assert ("negative_prompt" in sent) == bool(negative_prompt)
    # ... with the key in the header the security scheme names
    assert request.headers["X-Picsart-API-Key"] == API_KEY


def test_poll_requests_the_spec_path(
    spec: dict[str, Any], router: respx.MockRouter, client: PicsartClient
) -> None:
    operation(spec, POLL_PATH, "get")
    template = re.escape(POLL_PATH).replace(re.escape("{inference_id}"), "(?P<id>[^/]+)")
    route = router.get(url__regex=re.escape(BASE) + template + "$").respond(
        202, json={"status": "processing"}
    )
    client.poll("abc-123")
    assert route.call_count == 1
    request = route.calls.last.request
    assert request.method == "GET"
    match = re.search(template + "$", request.url.path)
    assert match is not None
    assert match["id"] == "abc-123"


# --------------------------------------------------------------------------- the checker's teeth


def body_of(fields: list[tuple[str, Any]]) -> list[Part]:
    """Encode fields the way httpx does, then parse them back like the real bodies."""
    request = httpx.Request("POST", BASE + SUBMIT_PATH, files=fields)
    return parse_multipart(request)


VALID_FIELDS: list[tuple[str, Any]] = [
    ("prompt", (None, b"a table")),
    ("count", (None, b"2")),
    ("format", (None, b"PNG")),
    ("mode", (None, b"async")),
    ("image_url", (None, b"https://cdn.example.test/p.png")),
]


def test_checker_accepts_a_valid_body(spec: dict[str, Any]) -> None:
    assert check_form(submit_schema(spec), body_of(VALID_FIELDS)) == []


def test_checker_reports_every_problem_of_a_wrong_body(spec: dict[str, Any]) -> None:
    # Given a body that is wrong in many ways at once
    wrong = [
        ("foo", (None, b"bar")),
        ("format", (None, b"GIF")),
        ("count", (None, b"11")),
        ("mode", (None, b"auto")),
        ("image_url", (None, ("https://cdn.example.test/" + "a" * 2100).encode())),
        ("image", ("p.png", PNG, "image/png")),
    ]
    # When checked
    problems = check_form(submit_schema(spec), body_of(wrong))
    # Then each problem is reported
    text = "\n".join(problems)
    assert "foo: not a property of the request schema" in problems
    assert "format: 'GIF' is not one of ['JPG', 'PNG', 'WEBP']" in problems
    assert "count: 11 is above the maximum 10" in problems
    assert "mode: 'auto' is not one of ['sync', 'async']" in problems
    assert "prompt: required but not sent" in problems
    assert re.search(r"image_url: \d+ characters, longer than maxLength 2083", text)
    assert "image source: exactly one of" in text
    assert len(problems) == 7, problems


@pytest.mark.parametrize(
    ("name", "value", "drop", "expected"),
    [
        ("foo", (None, b"1"), (), "foo: not a property of the request schema"),
        ("format", (None, b"GIF"), ("format",), "format: 'GIF' is not one of"),
        ("format", (None, b"jpg"), ("format",), "format: 'jpg' is not one of"),
        ("count", (None, b"0"), ("count",), "count: 0 is below the minimum 1"),
        ("count", (None, b"11"), ("count",), "count: 11 is above the maximum 10"),
        ("count", (None, b"two"), ("count",), "count: 'two' is not an integer"),
        ("count", (None, b"2.0"), ("count",), "count: '2.0' is not an integer"),
        ("image_url", (None, b""), ("image_url",), "image_url: 0 characters, shorter than"),
        ("image_url", (None, b"cdn/p.png"), ("image_url",), "image_url: 'cdn/p.png' is not"),
        (
            "image_url",
            (None, b"https://x/" + b"a" * 2074),
            ("image_url",),
            "image_url: 2084 characters, longer than maxLength 2083",
        ),
        ("image", (None, PNG), ("image_url",), "image: a binary property sent as a text"),
        ("prompt", ("p.txt", b"a", "text/plain"), ("prompt",), "prompt: a text property sent"),
        ("mode", (None, b"async"), (), "mode: sent 2 times"),
        ("image", ("p.png", PNG, "image/png"), (), "image source: exactly one of"),
        ("count", (None, b"3"), ("count", "prompt"), "prompt: required but not sent"),
    ],
)
def test_checker_reports_a_single_defect(
    spec: dict[str, Any], name: str, value: Any, drop: tuple[str, ...], expected: str
) -> None:
    # Given a valid body with some fields dropped and one field added
    fields = [field for field in VALID_FIELDS if field[0] not in drop]
    fields.append((name, value))
    # When checked / Then exactly that defect is reported
    problems = check_form(submit_schema(spec), body_of(fields))
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected), problems


def test_checker_catches_bad_values_passed_through_the_client(
    spec: dict[str, Any], router: respx.MockRouter, client: PicsartClient
) -> None:
    # The client sends format and count as given; this harness is what would notice.
    client.replace_background(
        prompt="p", image_url="https://cdn.example.test/p.png", format="GIF", count=11
    )
    problems = check_form(submit_schema(spec), parse_multipart(sent_submit(router)))
    assert sorted(problems) == [
        "count: 11 is above the maximum 10",
        "format: 'GIF' is not one of ['JPG', 'PNG', 'WEBP']",
    ]


def test_missing_spec_fails_loudly(tmp_path: Path) -> None:
    # Given the spec is where CI puts it: <parent of the repo>/shared/reference/
    assert SPEC_PATH.parents[2] == Path(__file__).resolve().parents[3]
    assert SPEC_PATH.parts[-3:] == ("shared", "reference", "picsart-genai-tools.openapi.yaml")
    # When it is absent / Then loading fails (not skips) and says where it looked
    missing = tmp_path / "shared" / "reference" / "picsart-genai-tools.openapi.yaml"
    with pytest.raises(pytest.fail.Exception, match="spec is missing") as caught:
        load_spec(missing)
    assert str(missing) in str(caught.value)
