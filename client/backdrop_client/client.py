"""A client of backdrop's HTTPS API, for any stack: deployed, or `backdrop local`.

The `backdrop generate`, `backdrop jobs` and `backdrop batch` commands and the demo talk to
the API through this module alone. It speaks only the API (and the presigned S3 forms and
URLs the API hands out), never AWS directly, so it works with nothing but a URL and an API
key.

Every failure a caller can act on is a `BackdropError`: one line of text, and the exit
code the command ends with (`USAGE`, `FAILED`, `UNREACHABLE`).
"""

from __future__ import annotations

import base64
import io
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from PIL import Image, UnidentifiedImageError

# Exit codes of the client commands (0: every job succeeded).
FAILED = 1  # a job failed, did not finish in time, or its results could not be downloaded
USAGE = 2  # bad arguments, a photo that cannot be sent, a request the API refused (4xx)
UNREACHABLE = 3  # no answer from the API, or it could not serve us (5xx, still throttled)

# Photos up to this size go inline (API Gateway's and Lambda's limits); larger ones are
# uploaded with POST /v1/uploads first.
MAX_INLINE_BYTES = 4 * 1024 * 1024
CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
TERMINAL = frozenset({"succeeded", "failed", "canceled"})
# A batch's statuses once it has ended (it is "running" until then).
BATCH_ENDED = frozenset({"succeeded", "completed_with_failures", "canceled", "failed"})
# What a batch's manifest may be, by its suffix, and the type POST /v1/uploads is told.
MANIFEST_TYPES = {".csv": "text/csv", ".jsonl": "application/x-ndjson"}
# Where `backdrop local` writes its URL and key, and where the client looks for them.
DEFAULT_READY_FILE = Path(".backdrop") / "ready.json"
API_URL_VARIABLE, API_KEY_VARIABLE = "BACKDROP_API_URL", "BACKDROP_API_KEY"

_RETRIED_STATUSES = frozenset({429, 502, 503, 504})
_ATTEMPTS = 3


class BackdropError(Exception):
    """A problem in one line, and the exit code it deserves."""

    def __init__(self, message: str, exit_code: int = USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class ApiError(BackdropError):
    """The API answered with an error: its status and the error body's code and message."""

    def __init__(self, status: int, code: str, message: str, request_id: str | None) -> None:
        self.status, self.code, self.request_id = status, code, request_id
        text = f"the API answered {status} {code}: {message}"
        if status == 403:
            text += f" (check --api-key or {API_KEY_VARIABLE})"
        if request_id:
            text += f" [request id {request_id}]"
        server_side = status >= 500 or status == 429
        super().__init__(text, UNREACHABLE if server_side else USAGE)
        self.reason = message

    @classmethod
    def from_answer(cls, answer: httpx.Response) -> ApiError:
        request_id = answer.headers.get("x-amzn-RequestId")
        try:
            error = answer.json()["error"]
            code, message = str(error["code"]), str(error["message"])
            details = [
                f"{d['field']}: {d['reason']}" if d.get("field") else str(d.get("reason"))
                for d in error.get("details") or []
            ]
            if details:
                message += " (" + "; ".join(details) + ")"
            request_id = error.get("request_id") or request_id
        except (ValueError, KeyError, TypeError):
            code, message = f"http_{answer.status_code}", _one_line(answer.text) or "no body"
        return cls(answer.status_code, code, message, request_id)


@dataclass(frozen=True)
class Connection:
    api_url: str
    api_key: str
    origin: str  # where they came from, for messages

    @classmethod
    def resolve(
        cls,
        api_url: str | None = None,
        api_key: str | None = None,
        ready_file: Path | None = None,
        environ: Mapping[str, str] = os.environ,
    ) -> Connection:
        """The arguments, else BACKDROP_API_URL / BACKDROP_API_KEY, else the ready file of
        a running `backdrop local` (`ready_file`, default .backdrop/ready.json)."""
        url = api_url or environ.get(API_URL_VARIABLE)
        key = api_key or environ.get(API_KEY_VARIABLE)
        origin = "the command line" if api_url else API_URL_VARIABLE
        if url and key:
            return cls(url.rstrip("/"), key, origin)
        path = ready_file or DEFAULT_READY_FILE
        if not path.exists():
            if ready_file is not None:
                raise BackdropError(f"no ready file at {path}")
            missing = "an API URL" if not url else "an API key"
            raise BackdropError(
                f"no API to talk to: {missing} is missing; pass --api-url and --api-key, set "
                f"{API_URL_VARIABLE} and {API_KEY_VARIABLE}, or start `backdrop local` "
                f"(it writes {DEFAULT_READY_FILE})"
            )
        try:
            ready = json.loads(path.read_text())
            url, key = url or ready["api_url"], key or ready["api_key"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise BackdropError(f"cannot read {path}: {_describe(error)}") from None
        return cls(str(url).rstrip("/"), str(key), f"{path} (is `backdrop local` running?)")


@dataclass(frozen=True)
class Photo:
    name: str
    data: bytes
    content_type: str

    @classmethod
    def read(cls, path: Path) -> Photo:
        """A local photo, checked by its bytes: a JPEG, PNG or WEBP image."""
        return cls.from_bytes(path.name, _read_file(path))

    @classmethod
    def from_bytes(cls, name: str, data: bytes) -> Photo:
        if not data:
            raise BackdropError(f"{name}: the file is empty")
        try:
            with Image.open(io.BytesIO(data)) as image:
                kind = image.format or "?"
        except Image.DecompressionBombError:
            raise BackdropError(f"{name}: too many pixels to be a photo") from None
        except (UnidentifiedImageError, OSError, ValueError):
            raise BackdropError(f"{name}: not an image (JPEG, PNG or WEBP expected)") from None
        if kind not in CONTENT_TYPES:
            raise BackdropError(f"{name}: a {kind} image; JPEG, PNG or WEBP expected")
        return cls(name, data, CONTENT_TYPES[kind])


@dataclass(frozen=True)
class Manifest:
    """A batch's list of images: a CSV file with a header, or JSON Lines. Only its name
    and size are checked here; the API reads every row before the batch starts."""

    name: str
    data: bytes
    content_type: str

    @classmethod
    def read(cls, path: Path) -> Manifest:
        content_type = MANIFEST_TYPES.get(path.suffix.lower())
        if content_type is None:
            raise BackdropError(f"{path}: a manifest is a .csv or .jsonl file")
        data = _read_file(path)
        if not data.strip():
            raise BackdropError(f"{path}: the file is empty")
        return cls(path.name, data, content_type)


class Client:
    """One API (URL and key). Use as a context manager, or call close()."""

    def __init__(
        self,
        connection: Connection,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        pause: Callable[[float], None] = time.sleep,
    ) -> None:
        self.connection = connection
        self._api = httpx.Client(
            base_url=connection.api_url,
            headers={"x-api-key": connection.api_key, "user-agent": "backdrop-client"},
            timeout=timeout,
            transport=transport,
        )
        # Presigned S3 forms and URLs: never given the API key.
        self._plain = httpx.Client(timeout=timeout, transport=transport)
        self._pause = pause

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._api.close()
        self._plain.close()

    # The API's routes.

    def create_generation(
        self, body: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """POST /v1/generations: the queued job. With an Idempotency-Key the request is
        safe to repeat, so a throttled or lost answer is retried."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        answer = self._call(
            "POST", "/v1/generations", json=dict(body), headers=headers, retry=bool(headers)
        )
        return _json(answer)

    def create_upload(self, content_type: str, content_length: int) -> dict[str, Any]:
        """POST /v1/uploads: a form for one file, and the image_key to generate from."""
        body = {"content_type": content_type, "content_length": content_length}
        return _json(self._call("POST", "/v1/uploads", json=body))

    def get_generation(self, job_id: str) -> dict[str, Any]:
        return _json(self._call("GET", f"/v1/generations/{job_id}", retry=True))

    def cancel_generation(self, job_id: str) -> dict[str, Any]:
        # Safe to retry: a second cancel of a canceled job is a 409 that says so.
        return _json(self._call("POST", f"/v1/generations/{job_id}/cancel", retry=True))

    def list_generations(
        self, *, status: str | None = None, limit: int = 20, cursor: str | None = None
    ) -> dict[str, Any]:
        """One page: {"items": [...], "next_cursor": ... | None}."""
        params: dict[str, str | int] = {"limit": limit}
        if status:
            params["status"] = status
        if cursor:
            params["cursor"] = cursor
        return _json(self._call("GET", "/v1/generations", params=params, retry=True))

    def create_batch(
        self, body: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """POST /v1/batches: the batch, running. With an Idempotency-Key the request is
        safe to repeat, so a throttled or lost answer is retried."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        answer = self._call(
            "POST", "/v1/batches", json=dict(body), headers=headers, retry=bool(headers)
        )
        return _json(answer)

    def get_batch(self, batch_id: str) -> dict[str, Any]:
        return _json(self._call("GET", f"/v1/batches/{batch_id}", retry=True))

    def list_batches(self, *, limit: int = 20, cursor: str | None = None) -> dict[str, Any]:
        """One page: {"items": [...], "next_cursor": ... | None}."""
        params: dict[str, str | int] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        return _json(self._call("GET", "/v1/batches", params=params, retry=True))

    def cancel_batch(self, batch_id: str) -> dict[str, Any]:
        # Safe to retry: asking a canceling batch again changes nothing.
        return _json(self._call("POST", f"/v1/batches/{batch_id}/cancel", retry=True))

    def retry_batch(self, batch_id: str, budget: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A new batch over the failed items; `budget` (max_images, max_cost_usd) instead of
        the batch's own. Never repeated: each call starts a new batch."""
        body = dict(budget) if budget else None
        return _json(self._call("POST", f"/v1/batches/{batch_id}/retry", json=body))

    def quote_batch(self, source: str | Manifest, options: Mapping[str, Any]) -> dict[str, Any]:
        """What a batch would do (`dry_run`): nothing is started, so it is safe to repeat."""
        body = {**options, "dry_run": True}
        if isinstance(source, str):
            body["prefix"] = source
        else:
            body["manifest_key"] = self.upload(source)
        return _json(self._call("POST", "/v1/batches", json=body, retry=True))

    def usage(self, *, start: str | None = None, end: str | None = None) -> dict[str, Any]:
        """GET /v1/usage: this key's jobs, images and cost by day and provider."""
        params = {name: value for name, value in (("from", start), ("to", end)) if value}
        return _json(self._call("GET", "/v1/usage", params=params, retry=True))

    # What the commands do with them.

    def jobs(self, *, status: str | None = None, limit: int = 20) -> Iterator[dict[str, Any]]:
        """Up to `limit` jobs, newest first, following the cursor from page to page."""
        return _follow(
            lambda cursor, size: self.list_generations(status=status, limit=size, cursor=cursor),
            limit,
        )

    def batches(self, *, limit: int = 20) -> Iterator[dict[str, Any]]:
        """Up to `limit` batches, newest first, following the cursor from page to page."""
        return _follow(lambda cursor, size: self.list_batches(limit=size, cursor=cursor), limit)

    def upload(self, file: Photo | Manifest) -> str:
        """POST /v1/uploads, then the file to S3 with the form (fields first, file last);
        the key to pass as image_key (a photo) or manifest_key (a manifest)."""
        ticket = self.create_upload(file.content_type, len(file.data))
        form = ticket["upload"]
        try:
            answer = self._plain.post(
                form["url"],
                data=form["fields"],
                files={"file": (file.name, file.data, file.content_type)},
            )
        except httpx.TransportError as error:
            raise BackdropError(
                f"cannot reach the upload URL {form['url']}: {_describe(error)}", UNREACHABLE
            ) from None
        if not answer.is_success:
            raise BackdropError(f"the upload was refused: {_s3_error(answer)}")
        return str(ticket["image_key"])

    def generate(
        self, photo: Photo | str, options: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """A job for a photo: a URL as image_url, a file up to 4 MB inline, a larger one
        uploaded first. `options` are the other fields of POST /v1/generations."""
        body = dict(options)
        if isinstance(photo, str):
            body["image_url"] = photo
        elif len(photo.data) <= MAX_INLINE_BYTES:
            body["image_base64"] = base64.b64encode(photo.data).decode()
        else:
            body["image_key"] = self.upload(photo)
        return self.create_generation(body, idempotency_key=idempotency_key or uuid.uuid4().hex)

    def wait(
        self,
        job_ids: list[str],
        *,
        timeout: float = 600.0,
        interval: float = 1.0,
        on_poll: Callable[[dict[str, dict[str, Any]]], None] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Poll until every job has ended or `timeout` passed: the jobs as last seen."""
        seen: dict[str, dict[str, Any]] = {job_id: {"id": job_id} for job_id in job_ids}
        deadline = time.monotonic() + timeout
        while True:
            for job_id, job in seen.items():
                if job.get("status") not in TERMINAL:
                    seen[job_id] = self.get_generation(job_id)
            if on_poll is not None:
                on_poll(seen)
            if all(job["status"] in TERMINAL for job in seen.values()):
                return seen
            if time.monotonic() >= deadline:
                return seen
            self._pause(interval)

    def start_batch(
        self,
        source: str | Manifest,
        options: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """A batch over every object under a prefix of the input bucket, or over the rows
        of a manifest (uploaded first). `options` are the other fields of POST /v1/batches."""
        body = dict(options)
        if isinstance(source, str):
            body["prefix"] = source
        else:
            body["manifest_key"] = self.upload(source)
        return self.create_batch(body, idempotency_key=idempotency_key or uuid.uuid4().hex)

    def watch_batch(
        self,
        batch_id: str,
        *,
        timeout: float | None = None,
        interval: float = 2.0,
        on_poll: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll a batch until it has ended or `timeout` passed (None: however long it
        runs): the batch as last seen."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            batch = self.get_batch(batch_id)
            if on_poll is not None:
                on_poll(batch)
            if batch.get("status") in BATCH_ENDED:
                return batch
            if deadline is not None and time.monotonic() >= deadline:
                return batch
            self._pause(interval)

    def download(self, url: str, target: Path) -> Path:
        """One presigned result URL into a file."""
        try:
            with self._plain.stream("GET", url) as answer:
                if not answer.is_success:
                    answer.read()
                    raise BackdropError(
                        f"cannot download {target.name}: {_s3_error(answer)}", FAILED
                    )
                target.parent.mkdir(parents=True, exist_ok=True)
                with target.open("wb") as file:
                    for chunk in answer.iter_bytes(64 * 1024):
                        file.write(chunk)
        except httpx.TransportError as error:
            raise BackdropError(
                f"cannot download {target.name}: {_describe(error)}", UNREACHABLE
            ) from None
        return target

    def download_results(self, job: Mapping[str, Any], folder: Path) -> list[Path]:
        """Every result of a finished job, as <index>.<format> in `folder`."""
        return [
            self.download(result["url"], folder / f"{result['index']}.{_suffix(result)}")
            for result in job.get("results") or []
        ]

    def _call(
        self,
        method: str,
        path: str,
        *,
        retry: bool = False,
        **kwargs: Any,
    ) -> httpx.Response:
        """One API request; a request safe to repeat is retried on 429, 502-504, timeouts
        and dropped connections, a few times with a growing pause."""
        attempts = _ATTEMPTS if retry else 1
        for attempt in range(1, attempts + 1):
            try:
                answer = self._api.request(method, path, **kwargs)
            except httpx.TransportError as error:
                # Refused or unresolvable: nothing to wait for.
                if attempt < attempts and not isinstance(error, httpx.ConnectError):
                    self._pause(0.5 * 2**attempt)
                    continue
                raise BackdropError(
                    f"cannot reach the API at {self.connection.api_url} "
                    f"(from {self.connection.origin}): {_describe(error)}",
                    UNREACHABLE,
                ) from None
            if answer.is_success:
                return answer
            if answer.status_code in _RETRIED_STATUSES and attempt < attempts:
                self._pause(_retry_after(answer, 0.5 * 2**attempt))
                continue
            raise ApiError.from_answer(answer)
        raise AssertionError("unreachable")  # pragma: no cover


def _follow(
    page: Callable[[str | None, int], dict[str, Any]], limit: int
) -> Iterator[dict[str, Any]]:
    """Up to `limit` items of a listing, asking `page(cursor, size)` for one page at a
    time (at most 100, the API's largest)."""
    cursor, left = None, limit
    while left > 0:
        answer = page(cursor, min(left, 100))
        items = answer.get("items") or []
        yield from items[:left]
        left -= len(items)
        cursor = answer.get("next_cursor")
        if not cursor or not items:
            return


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise BackdropError(f"{path}: no such file") from None
    except OSError as error:
        raise BackdropError(f"{path}: cannot read it: {_describe(error)}") from None


def _json(answer: httpx.Response) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise BackdropError(
            f"the API answered {answer.status_code} with something that is not a JSON "
            f"object: {_one_line(answer.text)[:200]!r} (is the URL right?)",
            UNREACHABLE,
        )
    return body


def _retry_after(answer: httpx.Response, default: float) -> float:
    try:
        return min(float(answer.headers.get("retry-after", default)), 30.0)
    except ValueError:
        return default


def _suffix(result: Mapping[str, Any]) -> str:
    kind = str(result.get("format") or "bin").lower()
    return "jpg" if kind == "jpeg" else kind


def _s3_error(answer: httpx.Response) -> str:
    """S3's XML error as "<status> <Code>: <Message>"."""
    text = answer.text
    code = _between(text, "<Code>", "</Code>")
    message = _between(text, "<Message>", "</Message>")
    return f"{answer.status_code} {code or ''}{': ' if code and message else ''}{message or ''}"


def _between(text: str, start: str, end: str) -> str | None:
    _, found, rest = text.partition(start)
    return rest.partition(end)[0] if found else None


def _describe(error: BaseException) -> str:
    return _one_line(str(error)) or type(error).__name__


def _one_line(text: str) -> str:
    return " ".join(text.split())
