"""An HTTP front for the API function: what API Gateway does for a REST API with
`ApiKeyRequired`, on loopback. Requests become REST proxy events; answers go back as HTTP.
API keys are the local AWS's (moto's API Gateway): every enabled key of the front's usage
plan is accepted, and the function is told its id, as API Gateway does."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

Invoke = Callable[[str, dict[str, Any]], dict[str, Any]]  # (function, event) -> answer
# API Gateway's own limit on a request payload, and Lambda's on a synchronous invocation.
MAX_BODY_BYTES = 10 * 1024 * 1024
MAX_EVENT_BYTES = 6 * 1024 * 1024
# How long the keys read from the local AWS are trusted: a key disabled or taken off the
# plan is refused after at most this long. An unknown key is looked up again at once, so a
# key just added works on its first request.
KEYS_CACHE_SECONDS = 2.0
# What API Gateway answers for each of its own refusals before a template overrides it.
DEFAULT_STATUS = {
    "INVALID_API_KEY": 403,
    "MISSING_AUTHENTICATION_TOKEN": 403,
    "REQUEST_TOO_LARGE": 413,
    "DEFAULT_4XX": 400,
    "DEFAULT_5XX": 502,
}
DEFAULT_MESSAGE = {
    "INVALID_API_KEY": "Forbidden",
    "MISSING_AUTHENTICATION_TOKEN": "Missing Authentication Token",
    "REQUEST_TOO_LARGE": "Request Too Long",
    "DEFAULT_5XX": "Internal server error",
}


@dataclass(frozen=True)
class Mock:
    """A mock integration (the CORS preflight): API Gateway answers it alone, from the
    method's static response headers and the origin rule of its mapping template."""

    status: int
    headers: dict[str, str]
    allowed_origins: tuple[str, ...]  # from the template's `#set($allowed = ",a,b,")`

    @classmethod
    def from_integration(cls, integration: dict[str, Any]) -> Mock:
        answer = integration["responses"]["default"]
        headers = {
            name.removeprefix("method.response.header."): value.strip("'")
            for name, value in answer.get("responseParameters", {}).items()
        }
        template = answer.get("responseTemplates", {}).get("application/json", "")
        found = re.search(r'#set\(\$allowed = ",(.*),"\)', template)
        origins = found.group(1).replace(" ", "").split(",") if found else []
        return cls(int(answer["statusCode"]), headers, tuple(o for o in origins if o))

    def answer(self, origin: str | None) -> Response:
        response = Response(status=self.status)
        response.headers.clear()
        response.headers.update(self.headers)
        # The mapping template's rule: * for any origin, else the caller's if it is listed.
        if "*" in self.allowed_origins:
            response.headers["Access-Control-Allow-Origin"] = "*"
        elif origin and origin in self.allowed_origins:
            response.headers["Access-Control-Allow-Origin"] = origin
        return response


@dataclass(frozen=True)
class Route:
    method: str
    resource: str  # e.g. /v1/generations/{id}, /{proxy+}
    api_key_required: bool = True
    function: str = ""  # logical id of the function that answers
    mock: Mock | None = None  # or API Gateway itself

    @property
    def pattern(self) -> re.Pattern[str]:
        regex = re.sub(r"\\\{(\w+)\\\+\\\}", r"(?P<\1>.+)", re.escape(self.resource))
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", regex)
        return re.compile(f"^{regex}$")


@dataclass(frozen=True)
class Gateway:
    """The REST API's own settings from template.yaml: what the front must play."""

    routes: list[Route]
    binary_media_types: list[str]
    responses: dict[str, dict[str, Any]]

    @classmethod
    def from_template(cls, api: dict[str, Any], events: dict[str, dict[str, Any]]) -> Gateway:
        """`api`: the Api resource's properties; `events`: function logical id -> its events."""
        key_required = bool(api.get("Auth", {}).get("ApiKeyRequired", False))
        routes = [
            Route(
                method=spec["Properties"]["Method"].upper(),
                resource=spec["Properties"]["Path"],
                api_key_required=bool(
                    spec["Properties"].get("Auth", {}).get("ApiKeyRequired", key_required)
                ),
                function=function,
            )
            for function, function_events in events.items()
            for spec in function_events.values()
            if spec.get("Type") == "Api"
        ]
        # Methods the API's own document defines (DefinitionBody): mock integrations. SAM
        # puts the key on a preflight too unless AddApiKeyRequiredToCorsPreflight is false.
        preflight_key = api.get("Auth", {}).get("AddApiKeyRequiredToCorsPreflight", True)
        for resource, methods in api.get("DefinitionBody", {}).get("paths", {}).items():
            for method, operation in methods.items():
                integration = operation.get("x-amazon-apigateway-integration", {})
                if integration.get("type") != "mock":
                    continue
                routes.append(
                    Route(
                        method=method.upper(),
                        resource=resource,
                        api_key_required=key_required and (method != "options" or preflight_key),
                        mock=Mock.from_integration(integration),
                    )
                )
        binary = [t.replace("~1", "/") for t in api.get("BinaryMediaTypes", [])]
        return cls(routes, binary, api.get("GatewayResponses", {}))

    def error(self, kind: str, request_id: str) -> Response:
        """API Gateway's answer of this kind, from the template's gateway response if any."""
        spec = self.responses.get(kind) or self.responses.get(
            "DEFAULT_5XX" if DEFAULT_STATUS.get(kind, 400) >= 500 else "DEFAULT_4XX", {}
        )
        status = int(spec.get("StatusCode", DEFAULT_STATUS.get(kind, 400)))
        message = DEFAULT_MESSAGE.get(kind, kind)
        template = spec.get("ResponseTemplates", {}).get("application/json")
        if template is None:
            body = json.dumps({"message": message})
        else:
            body = (
                template.replace("$context.requestId", request_id)
                .replace("$context.error.messageString", json.dumps(message))
                .replace("$context.error.responseType", kind)
            )
        return Response(body, status=status, content_type="application/json")


class ApiKeys:
    """The keys API Gateway would accept: the enabled keys of one usage plan, read from the
    local AWS (an `apigateway` client), so keys added there with boto3 or the aws CLI
    (`create-api-key --enabled`, `create-usage-plan-key`) work as they would on AWS."""

    def __init__(
        self,
        client: Any,
        usage_plan_id: str,
        *,
        cache_seconds: float = KEYS_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self.usage_plan_id = usage_plan_id
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._ids: dict[str, str] = {}  # key value -> key id
        self._read_at: float | None = None

    @classmethod
    def provision(cls, client: Any, *, name: str, value: str) -> tuple[ApiKeys, str]:
        """A usage plan with one enabled key of this value, as the deployed stack has (SAM
        makes them from the Api's Auth.UsagePlan); the keys and the key's id."""
        plan = client.create_usage_plan(name=name, description="backdrop local: API keys")
        key = client.create_api_key(name=name, value=value, enabled=True)
        client.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
        return cls(client, plan["id"]), str(key["id"])

    def key_id(self, value: str | None) -> str | None:
        """The id of the key with this value, if the front is to accept it."""
        if not value:
            return None
        with self._lock:
            now = self._clock()
            stale = self._read_at is None or now - self._read_at > self._cache_seconds
            if stale or value not in self._ids:
                self._ids, self._read_at = self._read(), now
            return self._ids.get(value)

    def _read(self) -> dict[str, str]:
        plan_keys = self._client.get_paginator("get_usage_plan_keys").paginate(
            usagePlanId=self.usage_plan_id
        )
        on_plan = {item["id"] for page in plan_keys for item in page.get("items", [])}
        keys = self._client.get_paginator("get_api_keys").paginate(includeValues=True)
        return {
            item["value"]: item["id"]
            for page in keys
            for item in page.get("items", [])
            if item["id"] in on_plan and item.get("enabled") and item.get("value")
        }


class ApiFront:
    def __init__(
        self, *, gateway: Gateway, invoke: Invoke, keys: ApiKeys, host: str, port: int
    ) -> None:
        self._gateway = gateway
        self._invoke = invoke
        self._keys = keys
        self._host = host
        self._server = make_server(host, port, self._app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._server.server_port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)

    def _app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        request_id = str(uuid.uuid4())
        response = self._answer(request, request_id)
        # API Gateway names the request in every answer, its own and the function's.
        response.headers["x-amzn-RequestId"] = request_id
        return response(environ, start_response)

    def _answer(self, request: Request, request_id: str) -> Response:
        match = self._match(request.method, request.path)
        if match is None:
            return self._gateway.error("MISSING_AUTHENTICATION_TOKEN", request_id)
        route, path_parameters = match
        key_id = None
        if route.api_key_required:
            key_id = self._keys.key_id(request.headers.get("x-api-key"))
            if key_id is None:
                return self._gateway.error("INVALID_API_KEY", request_id)
        if route.mock is not None:
            return route.mock.answer(request.headers.get("Origin"))
        if (request.content_length or 0) > MAX_BODY_BYTES:
            return self._gateway.error("REQUEST_TOO_LARGE", request_id)
        event = self._event(request, route, path_parameters, request_id, key_id)
        if len(json.dumps(event)) > MAX_EVENT_BYTES:
            # Lambda refuses the invocation; API Gateway answers for it.
            return self._gateway.error("REQUEST_TOO_LARGE", request_id)
        answer = self._invoke(route.function, event)
        if "statusCode" not in answer:
            # An unhandled error in the function: API Gateway answers 502.
            return self._gateway.error("DEFAULT_5XX", request_id)
        return self._response(answer)

    def _match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self._gateway.routes:
            found = route.pattern.match(path)
            if found and route.method == method:
                return route, found.groupdict()
        return None

    def _event(
        self,
        request: Request,
        route: Route,
        path_parameters: dict[str, str],
        request_id: str,
        key_id: str | None,
    ) -> dict[str, Any]:
        body = request.get_data()
        text_body: str | None
        is_base64 = False
        if not body:
            text_body = None
        elif request.mimetype in self._gateway.binary_media_types:
            text_body, is_base64 = base64.b64encode(body).decode(), True
        else:
            try:
                text_body = body.decode("utf-8")
            except UnicodeDecodeError:
                text_body, is_base64 = base64.b64encode(body).decode(), True
        query = request.args
        now = datetime.now(UTC)
        return {
            "resource": route.resource,
            "path": request.path,
            "httpMethod": request.method,
            "headers": dict(request.headers.items()),
            "multiValueHeaders": {k: request.headers.getlist(k) for k, _ in request.headers},
            "queryStringParameters": dict(query.items()) or None,
            "multiValueQueryStringParameters": {k: query.getlist(k) for k in query} or None,
            "pathParameters": path_parameters or None,
            "stageVariables": None,
            "requestContext": {
                "resourcePath": route.resource,
                "httpMethod": request.method,
                "path": f"/prod{request.path}",
                "stage": "prod",
                "requestId": request_id,
                "extendedRequestId": request_id,
                "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "requestTimeEpoch": int(time.time() * 1000),
                "protocol": "HTTP/1.1",
                "accountId": "123456789012",
                "apiId": "local",
                "domainName": request.host,
                "identity": {
                    "sourceIp": request.remote_addr,
                    "userAgent": request.user_agent.string,
                    "apiKey": request.headers.get("x-api-key") if key_id else None,
                    "apiKeyId": key_id,
                },
            },
            "body": text_body,
            "isBase64Encoded": is_base64,
        }

    @staticmethod
    def _response(answer: dict[str, Any]) -> Response:
        body = answer.get("body") or ""
        data = base64.b64decode(body) if answer.get("isBase64Encoded") else body.encode()
        response = Response(data, status=int(answer["statusCode"]))
        response.headers.clear()
        for key, value in (answer.get("headers") or {}).items():
            response.headers[key] = str(value)
        for key, values in (answer.get("multiValueHeaders") or {}).items():
            response.headers.remove(key)
            for value in values:
                response.headers.add(key, str(value))
        return response
