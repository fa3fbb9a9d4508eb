"""Emulated Picsart Smart Background: submit, poll, result files, balance.

Paths, fields, status codes, headers and error bodies follow the GenAI OpenAPI file
(`/painting/replace-background`, `/painting/{inference_id}`, `/balance`) and providers.md.

Submissions answer as Picsart's gateway does (docs.picsart.io/docs/sync-async-execution):
- `mode=sync` without `Prefer: respond-async`: held for the whole processing time, then 200
  with the result.
- `Prefer: respond-async` (or `mode=async`): 202 with the inference id, to be polled.
- `Prefer: respond-async, wait=N`: held until the job is done or N seconds have passed. Done
  in time: 200 with exactly what a poll would answer then (the result, or the job's error
  body), plus `Preference-Applied: respond-async, wait=N`. Not done (slow, stuck): 202 with
  the id and `Preference-Applied: respond-async`. The setting `honour_prefer_wait=false`
  plays an endpoint that ignores `wait`: always 202. Holds end at once when the emulator
  stops, and hold only their own request's thread.

Every answer of the API (submit, poll, balance, errors, 429s included) carries the
`X-Picsart-*` headers: correlation id, credits, and the key's rate-limit window (limit, what
is left, seconds until it renews; an injected 429 says 0 left, renewing in 1 s). Result files
(`/picsart/results/...`) stand for Picsart's CDN: no key, no rate limit, no API headers.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Literal

from PIL import Image
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.wrappers import Request, Response

from backdrop_local.emulator import images
from backdrop_local.emulator.faults import Fate, JobDice
from backdrop_local.emulator.fetch import FetchError, TooLarge, fetch, is_web_url
from backdrop_local.emulator.images import Cutout, OutputFormat
from backdrop_local.emulator.prefer import Preferences, parse_prefer
from backdrop_local.emulator.ratelimit import Quota
from backdrop_local.emulator.settings import EmulatorSettings
from backdrop_local.emulator.state import EmulatorState
from backdrop_local.emulator.web import (
    file_field,
    is_multipart,
    json_response,
    read_upload,
    text_field,
)

PROVIDER: Literal["picsart"] = "picsart"
API_KEY_HEADER = "X-Picsart-API-Key"
MAX_IMAGE_BYTES = 100 * 1024 * 1024
MAX_URL_LENGTH = 2083
MAX_COUNT = 10
# Oldest jobs are forgotten past this, so a long local run does not grow without bound.
MAX_JOBS = 500

_FORMATS: dict[str, OutputFormat] = {"JPG": "JPEG", "PNG": "PNG", "WEBP": "WEBP"}
_EXTENSIONS: dict[OutputFormat, str] = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
_INJECTED = "Injected by the provider emulator (fault share or script)."

Status = Literal["processing", "success", "error"]


class PicsartError(Exception):
    """An answer in Picsart's error shape: {"code", "message", "detail"}."""

    def __init__(self, status: int, detail: str, quota: Quota | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.quota = quota  # replaces the key's real window in the rate-limit headers

    def response(self) -> Response:
        body = {
            "code": self.status,
            "message": HTTPStatus(self.status).phrase,
            "detail": self.detail,
        }
        return json_response(body, self.status)


@dataclass(frozen=True)
class Submission:
    prompt: str
    count: int
    image_format: OutputFormat
    wants_async: bool
    prefer: Preferences
    image_url: str | None
    image_id: str | None


@dataclass
class Job:
    inference_id: str
    cutout: Cutout
    prompt: str
    count: int
    image_format: OutputFormat
    dice: JobDice
    ready_at: float  # monotonic time its processing ends (or ended)
    fate: Fate
    charged: int
    results: list[bytes] | None = None
    first_download_at: float | None = None  # monotonic time of its first file served
    lock: threading.Lock = field(default_factory=threading.Lock)

    def status(self, now: float) -> Status:
        if self.fate == "stuck" or now < self.ready_at:
            return "processing"
        return "error" if self.fate == "error" else "success"

    def result_id(self, number: int) -> str:
        return f"{self.inference_id}-{number}"


class PicsartApi:
    def __init__(self, state: EmulatorState) -> None:
        self._state = state
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}

    def clear(self) -> None:
        with self._lock:
            self._jobs.clear()

    # --- routes -------------------------------------------------------------------------

    def submit(self, request: Request) -> Response:
        return self._api(request, lambda: self._submit(request))

    def poll(self, request: Request, inference_id: str) -> Response:
        return self._api(request, lambda: self._poll(request, inference_id))

    def balance(self, request: Request) -> Response:
        return self._api(request, lambda: json_response({"credits": self._balance()}))

    def error(self, request: Request, status: int, detail: str) -> Response:
        """An error for a request no route took (404, 405), with the usual headers."""

        def fail() -> Response:
            raise PicsartError(status, detail)

        return self._api(request, fail, authenticate=False)

    def result_file(self, inference_id: str, name: str) -> Response:
        """A generated file, as the provider's CDN serves it: no key, no rate limit."""
        settings = self._state.settings
        forced = self._state.faults.next_answer("picsart_result", settings)
        if isinstance(forced, int):
            if forced == 429:
                self._state.count(PROVIDER, "throttled")
            return PicsartError(forced, _INJECTED).response()
        gone = PicsartError(404, "The file does not exist or has expired.").response()
        job = self._job(inference_id)
        if forced == "expired" or job is None or job.results is None or job.dice.expired:
            return gone
        stem, _, extension = name.partition(".")
        if not stem.isdigit() or extension != _EXTENSIONS[job.image_format]:
            return gone
        number = int(stem)
        if not 1 <= number <= len(job.results):
            return gone
        self._downloaded(job)
        return Response(job.results[number - 1], mimetype=images.CONTENT_TYPES[job.image_format])

    # --- the calls ------------------------------------------------------------------------

    def _api(
        self, request: Request, handle: Callable[[], Response], *, authenticate: bool = True
    ) -> Response:
        """Authentication, rate limit and the headers every Picsart answer carries."""
        settings = self._state.settings
        key = request.headers.get(API_KEY_HEADER, "")
        quota: Quota | None = None
        try:
            if authenticate:
                self._authenticate(key, settings)
                window = self._state.limiter.hit(PROVIDER, key, settings.rate_limit_per_minute)
                if not window.allowed:
                    raise PicsartError(
                        429,
                        f"Rate limit of {window.limit} requests per minute reached; "
                        f"retry in {window.reset_seconds} s.",
                        quota=window,
                    )
            response = handle()
        except PicsartError as error:
            response, quota = error.response(), error.quota
        except RequestEntityTooLarge:
            detail = f"The request is too large (images up to {MAX_IMAGE_BYTES} bytes)."
            response = PicsartError(413, detail).response()
        except HTTPException as error:
            # E.g. a malformed multipart body: still Picsart's error shape and headers.
            response = PicsartError(error.code or 400, str(error.description)).response()
        if response.status_code == 429:
            self._state.count(PROVIDER, "throttled")
        if quota is None:
            quota = self._state.limiter.peek(PROVIDER, key, settings.rate_limit_per_minute)
        response.headers.update(
            {
                "X-Picsart-Correlation-Id": str(uuid.uuid4()),
                "X-Picsart-Ratelimit-Available": str(quota.available),
                "X-Picsart-Ratelimit-Limit": str(quota.limit),
                "X-Picsart-Ratelimit-Reset-Time": str(quota.reset_seconds),
                "X-Picsart-Credit-Available": str(self._balance()),
            }
        )
        return response

    def _submit(self, request: Request) -> Response:
        self._state.count(PROVIDER, "submissions")
        settings = self._state.settings
        self._forced("picsart_submit", settings)
        if not is_multipart(request):
            raise PicsartError(415, "Send the request as multipart/form-data.")
        # Leaves room for the other form fields around a maximal image.
        request.max_content_length = MAX_IMAGE_BYTES + 1024 * 1024
        submission = _parse_submission(request)
        if self._balance() < submission.count:
            raise PicsartError(402, "Not enough credits for this request.")
        cutout = images.cut_out(self._source_image(request, submission))

        dice = self._state.faults.new_job(settings)
        charged = 0 if dice.fate == "error" else submission.count  # failures are not billed
        if charged and not self._state.charge(PROVIDER, charged):
            raise PicsartError(402, "Not enough credits for this request.")
        job = Job(
            inference_id=str(uuid.uuid4()),
            cutout=cutout,
            prompt=submission.prompt,
            count=submission.count,
            image_format=submission.image_format,
            dice=dice,
            ready_at=time.monotonic() + dice.processing_seconds,
            fate=dice.fate,
            charged=charged,
        )
        self._remember(job)

        if submission.wants_async:
            response = self._answer_async(request, job, submission.prefer, settings)
        else:
            response = self._answer_sync(request, job, settings)
        # Reached only with a 200 or 202: the job was taken (a sync job error raises a 500).
        self._state.count(PROVIDER, "accepted")
        return response

    def _answer_async(
        self, request: Request, job: Job, prefer: Preferences, settings: EmulatorSettings
    ) -> Response:
        wait = prefer.wait if prefer.respond_async and settings.honour_prefer_wait else None
        if wait is not None:
            status = self._hold(job, wait)
            if status != "processing":
                response = self._finished(request, job, status)
                response.headers["Preference-Applied"] = f"respond-async, wait={wait}"
                return response
        headers = {"Preference-Applied": "respond-async"} if prefer.respond_async else {}
        body = {"status": "processing", "inference_id": job.inference_id, "data": []}
        return json_response(body, 202, headers)

    def _hold(self, job: Job, wait: int) -> Status:
        """Wait up to `wait` seconds for the job to be done; its status at the end."""
        deadline = time.monotonic() + wait
        while True:
            now = time.monotonic()
            with job.lock:
                status = job.status(now)
                done_at = math.inf if job.fate == "stuck" else job.ready_at
            if status != "processing" or now >= deadline or self._state.stopping.is_set():
                return status
            # Sleeps until whichever comes first; the loop re-reads the job after it.
            self._state.pause(min(done_at, deadline) - now)

    def _answer_sync(self, request: Request, job: Job, settings: EmulatorSettings) -> Response:
        if job.fate == "stuck":
            # Waited as long as it dares, then hands over the id as an async answer would.
            self._state.pause(settings.slow_seconds)
            return json_response({"status": "processing", "inference_id": job.inference_id}, 202)
        self._state.pause(job.dice.processing_seconds)
        if job.fate == "error":
            raise PicsartError(500, "The generation failed (emulated job error).")
        return json_response({"status": "success", "data": self._results(request, job)})

    def _poll(self, request: Request, inference_id: str) -> Response:
        self._state.count(PROVIDER, "polls")
        word = self._forced("picsart_poll", self._state.settings)
        job = self._job(inference_id)
        if job is None:
            raise PicsartError(404, f"No inference with id {inference_id!r}.")
        now = time.monotonic()
        with job.lock:
            if word == "stuck":
                job.fate = "stuck"
            elif word in ("error", "success"):
                job.ready_at = now
                if word == "error" and job.fate != "error":
                    self._state.refund(PROVIDER, job.charged)
                    job.charged = 0
                job.fate = "error" if word == "error" else "ok"
            status = "processing" if word == "processing" else job.status(now)
        if status == "processing":
            return json_response({"status": "processing", "inference_id": inference_id}, 202)
        return self._finished(request, job, status)

    def _finished(
        self, request: Request, job: Job, status: Literal["success", "error"]
    ) -> Response:
        """The 200 a poll answers for a job that is done; a Prefer wait answers the same."""
        if status == "error":
            body = {
                "status": "error",
                "inference_id": job.inference_id,
                "message": "Generation failed",
                "detail": "The emulated job ended with an error (fault_error or script).",
            }
            return json_response(body)
        return json_response({"status": "success", "data": self._results(request, job)})

    # --- helpers ------------------------------------------------------------------------

    def _forced(
        self, operation: Literal["picsart_submit", "picsart_poll"], settings: EmulatorSettings
    ) -> str | None:
        """Apply a scripted or random fault; return a word the caller must act on."""
        answer = self._state.faults.next_answer(operation, settings)
        if isinstance(answer, int):
            # A short reset keeps clients that honour it from idling a whole minute.
            quota = Quota(False, settings.rate_limit_per_minute, 0, 1) if answer == 429 else None
            raise PicsartError(answer, _INJECTED, quota)
        if answer == "slow":
            self._state.pause(settings.slow_seconds)
            return None
        return answer

    def _authenticate(self, key: str, settings: EmulatorSettings) -> None:
        if not key:
            raise PicsartError(401, f"Missing {API_KEY_HEADER} header.")
        if settings.api_keys is not None and key not in settings.api_keys:
            raise PicsartError(401, "Unknown API key.")

    def _balance(self) -> int:
        return self._state.balance(PROVIDER)

    def _source_image(self, request: Request, submission: Submission) -> Image.Image:
        upload = file_field(request, "image")
        if upload is not None:
            data = read_upload(upload, MAX_IMAGE_BYTES)
            if data is None:
                raise PicsartError(413, f"image: larger than {MAX_IMAGE_BYTES} bytes")
            source = "image"
        elif submission.image_url is not None:
            source = "image_url"
            try:
                data = fetch(submission.image_url, MAX_IMAGE_BYTES)
            except TooLarge as error:
                raise PicsartError(413, f"image_url: {error}") from error
            except FetchError as error:
                raise PicsartError(400, f"image_url: {error}") from error
        else:
            source = "image_id"
            data = self._result_by_id(submission.image_id or "")
        try:
            return images.open_image(data)
        except images.UnsupportedImage as error:
            raise PicsartError(415, f"{source}: {error}") from error
        except images.BrokenImage as error:
            raise PicsartError(400, f"{source}: {error}") from error

    def _result_by_id(self, image_id: str) -> bytes:
        # Ids of this emulator's own results are "<inference_id>-<n>".
        inference_id, _, number = image_id.rpartition("-")
        job = self._job(inference_id)
        if job is None or job.results is None or not number.isdigit():
            raise PicsartError(400, f"image_id: unknown id {image_id!r}")
        if not 1 <= int(number) <= len(job.results):
            raise PicsartError(400, f"image_id: unknown id {image_id!r}")
        return job.results[int(number) - 1]

    def _results(self, request: Request, job: Job) -> list[dict[str, str]]:
        """The result entries, rendering the images on first use."""
        with job.lock:
            if job.results is None:
                job.results = [self._render(job, number) for number in range(job.count)]
                self._state.count(PROVIDER, "images", job.count)
        root = request.host_url.rstrip("/")
        extension = _EXTENSIONS[job.image_format]
        return [
            {
                "id": job.result_id(number),
                "url": f"{root}/picsart/results/{job.inference_id}/{number}.{extension}",
            }
            for number in range(1, job.count + 1)
        ]

    @staticmethod
    def _render(job: Job, index: int) -> bytes:
        scene = images.backdrop(job.cutout.size, job.prompt, job.dice.seed, index)
        picture = images.label(images.composite(job.cutout, scene))
        return images.encode(picture, job.image_format)

    def _downloaded(self, job: Job) -> None:
        """Note a job's first download, and how long after it was ready that came."""
        now = time.monotonic()
        with job.lock:
            if job.first_download_at is not None:
                return
            job.first_download_at = now
            lag = now - job.ready_at
        self._state.figures.record_lag(lag)

    def _job(self, inference_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(inference_id)

    def _remember(self, job: Job) -> None:
        with self._lock:
            self._jobs[job.inference_id] = job
            while len(self._jobs) > MAX_JOBS:
                del self._jobs[next(iter(self._jobs))]


def _parse_submission(request: Request) -> Submission:
    """Validate the form: 400 for missing or conflicting fields, 422 for bad types or ranges."""
    form = request.form
    if "image" in form:
        raise PicsartError(422, "image: expected a file part; use image_url for a URL")
    sources = [
        name
        for name, present in (
            ("image", file_field(request, "image") is not None),
            ("image_url", text_field(request, "image_url") is not None),
            ("image_id", text_field(request, "image_id") is not None),
        )
        if present
    ]
    if not sources:
        raise PicsartError(400, "image: one of image, image_url or image_id is required")
    if len(sources) > 1:
        raise PicsartError(400, f"{', '.join(sources)}: give only one image source")

    image_url = text_field(request, "image_url")
    if image_url is not None:
        if len(image_url) > MAX_URL_LENGTH:
            raise PicsartError(422, f"image_url: longer than {MAX_URL_LENGTH} characters")
        if not is_web_url(image_url):
            raise PicsartError(422, "image_url: expected an absolute http(s) URL")

    prompt = (form.get("prompt") or "").strip()
    if not prompt:
        raise PicsartError(400, "prompt: field required")

    raw_count = form.get("count", "2").strip()
    try:
        count = int(raw_count)
    except ValueError:
        raise PicsartError(422, f"count: expected an integer, got {raw_count!r}") from None
    if not 1 <= count <= MAX_COUNT:
        raise PicsartError(422, f"count: must be from 1 to {MAX_COUNT}, got {count}")

    raw_format = form.get("format", "JPG")
    image_format = _FORMATS.get(raw_format)
    if image_format is None:
        raise PicsartError(422, f"format: must be one of JPG, PNG, WEBP, got {raw_format!r}")

    mode = form.get("mode", "sync")
    if mode not in ("sync", "async"):
        raise PicsartError(422, f"mode: must be sync or async, got {mode!r}")
    prefer = parse_prefer(request.headers.getlist("Prefer"))
    wants_async = mode == "async" or prefer.respond_async

    return Submission(
        prompt=prompt,
        count=count,
        image_format=image_format,
        wants_async=wants_async,
        prefer=prefer,
        image_url=image_url,
        image_id=text_field(request, "image_id"),
    )
