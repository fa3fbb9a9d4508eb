"""An HTTP front for the API function: what API Gateway does for a REST API with
`ApiKeyRequired`, on loopback. Requests become REST proxy events; answers go back as HTTP."""

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

Invoke = Callable[[dict[str, Any]], dict[str, Any]]
# API Gateway's own limit on a request payload.
MAX_BODY_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class Route:
    method: str
    resource: str  # e.g. /v1/generations/{id}

    @property
    def pattern(self) -> re.Pattern[str]:
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.resource))
        return re.compile(f"^{regex}$")


def routes_from_events(events: dict[str, Any]) -> list[Route]:
    """The function's `Type: Api` events in template.yaml."""
    return [
        Route(method=spec["Properties"]["Method"].upper(), resource=spec["Properties"]["Path"])
        for spec in events.values()
        if spec.get("Type") == "Api"
    ]


def _gateway_error(status: int, message: str) -> Response:
    # API Gateway's own answers (before any Lambda runs) have this shape.
    return Response(
        json.dumps({"message": message}),
        status=status,
        content_type="application/json",
        headers={"x-amzn-ErrorType": "ForbiddenException" if status == 403 else "Error"},
    )


class ApiFront:
    def __init__(
        self, *, routes: list[Route], invoke: Invoke, api_key: str, host: str, port: int
    ) -> None:
        self._routes = routes
        self._invoke = invoke
        self._api_key = api_key
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
        return self._answer(request)(environ, start_response)

    def _answer(self, request: Request) -> Response:
        match = self._match(request.method, request.path)
        if match is None:
            return _gateway_error(403, "Missing Authentication Token")
        if request.headers.get("x-api-key") != self._api_key:
            return _gateway_error(403, "Forbidden")
        if (request.content_length or 0) > MAX_BODY_BYTES:
            return _gateway_error(413, "Request Too Long")
        route, path_parameters = match
        event = self._event(request, route, path_parameters)
        answer = self._invoke(event)
        return self._response(answer)

    def _match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self._routes:
            found = route.pattern.match(path)
            if found and route.method == method:
                return route, found.groupdict()
        return None

    def _event(
        self, request: Request, route: Route, path_parameters: dict[str, str]
    ) -> dict[str, Any]:
        body = request.get_data()
        text_body: str | None
        is_base64 = False
        if not body:
            text_body = None
        else:
            try:
                text_body = body.decode("utf-8")
            except UnicodeDecodeError:
                text_body, is_base64 = base64.b64encode(body).decode(), True
        query = request.args
        now = datetime.now(UTC)
        request_id = str(uuid.uuid4())
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
                    "apiKey": self._api_key,
                },
            },
            "body": text_body,
            "isBase64Encoded": is_base64,
        }

    @staticmethod
    def _response(answer: dict[str, Any]) -> Response:
        if "statusCode" not in answer:
            # An unhandled error in the function: API Gateway answers 502.
            return _gateway_error(502, "Internal server error")
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
