"""The emulator's HTTP side: routing, control endpoints and the server's lifecycle."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

from pydantic import ValidationError
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from backdrop_local.emulator.credits import (
    CreditsError,
    amount_of,
    apply_change,
    parse_change,
    provider_of,
)
from backdrop_local.emulator.faults import ScriptError, parse_script
from backdrop_local.emulator.photoroom import PhotoroomApi, PhotoroomError
from backdrop_local.emulator.picsart import PicsartApi
from backdrop_local.emulator.settings import EmulatorSettings
from backdrop_local.emulator.state import EmulatorState
from backdrop_local.emulator.stats import Stats
from backdrop_local.emulator.web import json_response

logger = logging.getLogger("backdrop_local.emulator")

PICSART_PREFIX = "/picsart/v1"
PHOTOROOM_PREFIX = "/photoroom"
# Each emulated provider's base URL under the emulator's, by registry name.
PREFIXES = {"picsart": PICSART_PREFIX, "photoroom": PHOTOROOM_PREFIX}


def provider_url(base_url: str, provider: str) -> str | None:
    """The emulated provider's base URL under the emulator's, or None for a provider it does
    not emulate."""
    prefix = PREFIXES.get(provider)
    return None if prefix is None else f"{base_url}{prefix}"


_KNOWN_STATUSES = frozenset(status.value for status in HTTPStatus)

_RULES = Map(
    [
        Rule("/_emulator/health", endpoint="health", methods=["GET"]),
        Rule("/_emulator/stats", endpoint="stats", methods=["GET"]),
        Rule("/_emulator/settings", endpoint="settings", methods=["GET", "PUT"]),
        Rule("/_emulator/script", endpoint="script", methods=["GET", "POST", "DELETE"]),
        Rule("/_emulator/reset", endpoint="reset", methods=["POST"]),
        Rule("/_emulator/credits", endpoint="credits", methods=["GET", "POST"]),
        Rule(
            f"{PICSART_PREFIX}/painting/replace-background",
            endpoint="picsart_submit",
            methods=["POST"],
        ),
        Rule(f"{PICSART_PREFIX}/painting/<inference_id>", endpoint="picsart_poll", methods=["GET"]),
        Rule(f"{PICSART_PREFIX}/balance", endpoint="picsart_balance", methods=["GET"]),
        Rule("/picsart/results/<inference_id>/<name>", endpoint="picsart_result", methods=["GET"]),
        Rule(f"{PHOTOROOM_PREFIX}/v2/edit", endpoint="photoroom_edit", methods=["GET", "POST"]),
        Rule(f"{PHOTOROOM_PREFIX}/v2/account", endpoint="photoroom_account", methods=["GET"]),
    ]
)


class EmulatorApp:
    """The WSGI application behind both emulated providers."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self.picsart = PicsartApi(state)
        self.photoroom = PhotoroomApi(state)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        try:
            response = self._respond(request)
        finally:
            request.close()  # uploaded files are spooled to temporary files
        result: Iterable[bytes] = response(environ, start_response)
        return result

    def reset(self) -> None:
        self.state.reset()
        self.picsart.clear()

    def _respond(self, request: Request) -> Response:
        adapter = _RULES.bind_to_environ(request.environ)
        try:
            endpoint, arguments = adapter.match()
            return self._dispatch(str(endpoint), request, arguments)
        except (NotFound, MethodNotAllowed) as error:
            return self._unrouted(request, error)
        except HTTPException as error:
            # Answered in the shape of the provider the path belongs to.
            return self._failed(request, error.code or 500, str(error.description))
        except Exception as error:  # an emulator bug: say so loudly, in the provider's shape
            logger.exception("emulator failure on %s %s", request.method, request.path)
            detail = f"Provider emulator failure: {type(error).__name__}: {error}"
            return self._failed(request, 500, detail)

    def _failed(self, request: Request, status: int, detail: str) -> Response:
        if request.path.startswith(PICSART_PREFIX + "/"):
            # Through the Picsart side, so even these carry its X-Picsart-* headers.
            return self.picsart.error(request, status, detail)
        if request.path.startswith(PHOTOROOM_PREFIX):
            return PhotoroomError(status, detail).response()
        message = HTTPStatus(status).phrase if status in _KNOWN_STATUSES else "Error"
        return json_response({"code": status, "message": message, "detail": detail}, status)

    def _dispatch(self, endpoint: str, request: Request, arguments: Mapping[str, str]) -> Response:
        match endpoint:
            case "picsart_submit":
                return self.picsart.submit(request)
            case "picsart_poll":
                return self.picsart.poll(request, arguments["inference_id"])
            case "picsart_balance":
                return self.picsart.balance(request)
            case "picsart_result":
                return self.picsart.result_file(arguments["inference_id"], arguments["name"])
            case "photoroom_edit":
                return self.photoroom.edit(request)
            case "photoroom_account":
                return self.photoroom.account(request)
            case "health":
                return json_response({"status": "ok"})
            case "stats":
                return json_response(self.state.stats())
            case "settings":
                return self._settings(request)
            case "script":
                return self._script(request)
            case "credits":
                return self._credits(request)
            case "reset":
                self.reset()
                return json_response({"status": "reset", "stats": self.state.stats()})
        raise NotFound()

    def _settings(self, request: Request) -> Response:
        if request.method == "PUT":
            patch = request.get_json(silent=True)
            if not isinstance(patch, dict):
                return json_response({"error": "expected a JSON object of settings"}, 400)
            try:
                self.state.update_settings(patch)
            except ValidationError as error:
                return json_response({"error": json.loads(error.json(include_url=False))}, 400)
        return json_response(self.state.settings.model_dump())

    def _script(self, request: Request) -> Response:
        faults = self.state.faults
        if request.method == "POST":
            try:
                faults.add_script(parse_script(request.get_json(silent=True)))
            except ScriptError as error:
                return json_response({"error": str(error)}, 400)
        elif request.method == "DELETE":
            faults.clear_scripts()
        return json_response(faults.scripts())

    def _credits(self, request: Request) -> Response:
        if request.method == "GET":
            return json_response(self.state.balances())
        try:
            change = parse_change(request.get_json(silent=True))
        except CreditsError as error:
            return json_response({"error": str(error)}, 400)
        return json_response(apply_change(self.state, change))

    def _unrouted(self, request: Request, error: NotFound | MethodNotAllowed) -> Response:
        status = error.code or 404
        detail = f"{request.method} {request.path}: {error.name}"
        if request.path.startswith(PICSART_PREFIX + "/"):
            return self.picsart.error(request, status, detail)
        if request.path.startswith(PHOTOROOM_PREFIX + "/"):
            return PhotoroomError(status, detail).response()
        return json_response({"error": detail}, status)


class _RequestLog(WSGIRequestHandler):
    """Access lines go to the emulator's logger, without colour codes."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        logger.info('%s "%s" %s %s', self.address_string(), self.requestline, code, size)

    def log(self, type: str, message: str, *args: Any) -> None:
        level = logging.ERROR if type == "error" else logging.INFO
        logger.log(level, "%s " + message, self.address_string(), *args)


class ProviderEmulator:
    """Picsart and Photoroom stand-ins served over HTTP on a background thread.

    ``stats()`` (and ``GET /_emulator/stats``) gives per provider the calls that got past
    authentication and the rate limit (Picsart ``submissions`` and ``polls``, Photoroom
    ``calls``), the generations taken and paid for (``accepted``), the 429s sent
    (``throttled``), the images generated (``images``), and for Picsart the percentiles of
    the lag from a job being ready to its first download (``lag_p50_seconds``,
    ``lag_p95_seconds``). The stats module explains each; ``reset()`` zeroes them.
    """

    def __init__(
        self, settings: EmulatorSettings | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self._app = EmulatorApp(EmulatorState(settings or EmulatorSettings()))
        self._host = host
        self._port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind and serve in the background; returns at once, ready for requests."""
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        self._app.state.stopping.clear()
        server = make_server(
            self._host, self._port, self._app, threaded=True, request_handler=_RequestLog
        )
        self._server = server
        # A short poll interval makes stop() quick, which test fixtures feel.
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="provider-emulator",
            daemon=True,
        )
        self._thread.start()
        logger.info("provider emulator listening on %s", self.base_url)

    def stop(self) -> None:
        """Stop serving; deliberate delays in flight end at once. Safe to call twice."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._app.state.stopping.set()
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> ProviderEmulator:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator is not running; call start() first")
        return int(self._server.server_port)

    @property
    def base_url(self) -> str:
        # A wildcard bind is reachable on loopback; clients cannot dial 0.0.0.0 everywhere.
        host = "127.0.0.1" if self._host in ("", "0.0.0.0") else self._host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    def base_url_of(self, provider: str) -> str | None:
        return provider_url(self.base_url, provider)

    @property
    def picsart_base_url(self) -> str:
        return f"{self.base_url}{PICSART_PREFIX}"

    @property
    def photoroom_base_url(self) -> str:
        return f"{self.base_url}{PHOTOROOM_PREFIX}"

    @property
    def settings(self) -> EmulatorSettings:
        return self._app.state.settings

    def stats(self) -> Stats:
        """Same as GET /_emulator/stats."""
        return self._app.state.stats()

    def update_settings(self, **patch: Any) -> EmulatorSettings:
        """Same as PUT /_emulator/settings.

        A new seed restarts the random sequence; new credits refill both balances.
        """
        return self._app.state.update_settings(patch)

    def script(self, script: Mapping[str, list[int | str]]) -> None:
        """Same as POST /_emulator/script."""
        self._app.state.faults.add_script(parse_script(dict(script)))

    def reset(self) -> None:
        """Same as POST /_emulator/reset."""
        self._app.reset()

    def top_up(self, provider: str, credits: int) -> int:
        """Same as POST /_emulator/credits {"provider", "add"}: the new balance.

        ValueError for an unknown provider or credits that are not a positive int.
        """
        account = provider_of(provider)
        amount = amount_of(credits, "credits", minimum=1)
        return self._app.state.add_credits(account, amount)

    def set_credits(self, provider: str, credits: int) -> int:
        """Same as POST /_emulator/credits {"provider", "set"}: the new balance.

        ValueError for an unknown provider or credits that are not an int >= 0.
        """
        account = provider_of(provider)
        amount = amount_of(credits, "credits", minimum=0)
        return self._app.state.set_credits(account, amount)

    def balances(self) -> dict[str, int]:
        """Same as GET /_emulator/credits."""
        return {provider: n for provider, n in self._app.state.balances().items()}
