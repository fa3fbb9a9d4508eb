"""Emulated Photoroom Image Editing API v2 (`/v2/edit`, AI backgrounds only; `/v2/account`).

Synchronous: one call, one image in the answer body. Fields, headers and error bodies
follow providers.md and the AI Backgrounds page (seeds/000). `/v2/account` answers the
balance as `images.available` (what community SDKs read); like Picsart's balance it shares
the key's rate limit but is no generation and no `calls` in the stats.

Rate limit: Photoroom documents a 429 over the limit but no rate-limit headers at all.
The emulator's 429 carries a `Retry-After` header (seconds until the key's window renews;
1 for an injected 429): an emulator choice, the standard HTTP header, so a client that
honours it waits just long enough. Clients of the real API must cope without it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from PIL import Image
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Request, Response

from backdrop_local.emulator import images
from backdrop_local.emulator.fetch import FetchError, fetch, is_web_url
from backdrop_local.emulator.images import Cutout, OutputFormat
from backdrop_local.emulator.settings import EmulatorSettings
from backdrop_local.emulator.state import EmulatorState
from backdrop_local.emulator.web import (
    file_field,
    is_multipart,
    json_response,
    read_upload,
    text_field,
)

PROVIDER: Literal["photoroom"] = "photoroom"
API_KEY_HEADER = "x-api-key"
MODEL_HEADER = "pr-ai-background-model-version"
SANDBOX_PREFIX = "sandbox_"
MAX_IMAGE_BYTES = 30 * 1024 * 1024
MAX_OUTPUT_SIDE = 4096
MODELS = ("3", "background-studio-beta-2025-03-17", "2")
NEGATIVE_PROMPT_MODEL = "2"  # the only model that honours background.negativePrompt

_EXPORT_FORMATS: dict[str, OutputFormat] = {
    "png": "PNG",
    "jpeg": "JPEG",
    "jpg": "JPEG",
    "webp": "WEBP",
}
_QUALITY: dict[OutputFormat, int] = {"JPEG": 80, "WEBP": 90, "PNG": 100}
_SIZE = re.compile(r"^(\d{1,5})x(\d{1,5})$")
# Room left around the subject when it is re-centred (referenceBox=subjectBox).
_SUBJECT_PADDING = 0.1


class PhotoroomError(Exception):
    """An answer in Photoroom's error shape: {"error": {"message"}} ({"detail"} for 402)."""

    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after  # seconds; an emulator addition (module docstring)

    def response(self) -> Response:
        field = "detail" if self.status == 402 else "message"
        headers = {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}
        return json_response({"error": {field: self.message}}, self.status, headers)


@dataclass(frozen=True)
class Edit:
    prompt: str | None
    seed: int | None
    negative_prompt: str | None
    guidance_scale: float
    reference_box: Literal["subjectBox", "originalImage"]
    output_size: str
    export_format: OutputFormat
    model: str


class PhotoroomApi:
    def __init__(self, state: EmulatorState) -> None:
        self._state = state

    def edit(self, request: Request) -> Response:
        return self._answer(lambda: self._call(request))

    def account(self, request: Request) -> Response:
        return self._answer(lambda: self._account(request))

    def _answer(self, handle: Callable[[], Response]) -> Response:
        try:
            return handle()
        except PhotoroomError as error:
            if error.status == 429:
                self._state.count(PROVIDER, "throttled")
            return error.response()
        except RequestEntityTooLarge:
            return PhotoroomError(400, f"Images must be under {MAX_IMAGE_BYTES} bytes.").response()

    def _admit(self, request: Request, settings: EmulatorSettings) -> str:
        """Authentication and the key's rate limit; the key."""
        key = request.headers.get(API_KEY_HEADER, "")
        if not key or (settings.api_keys is not None and key not in settings.api_keys):
            raise PhotoroomError(403, "Unauthorized")
        window = self._state.limiter.hit(PROVIDER, key, settings.rate_limit_per_minute)
        if not window.allowed:
            raise PhotoroomError(429, "Too many requests", retry_after=window.reset_seconds)
        return key

    def _account(self, request: Request) -> Response:
        settings = self._state.settings
        self._admit(request, settings)  # a sandbox key sees the same account
        left = {"available": self._state.balance(PROVIDER), "subscription": settings.credits}
        return json_response({"plan": "emulated", "images": left})

    def _call(self, request: Request) -> Response:
        settings = self._state.settings
        key = self._admit(request, settings)
        self._state.count(PROVIDER, "calls")
        self._forced(settings)
        response = self._edit(request, key)
        self._state.count(PROVIDER, "accepted")  # an image answered: generated and paid for
        return response

    def _forced(self, settings: EmulatorSettings) -> None:
        answer = self._state.faults.next_answer("photoroom_edit", settings)
        if isinstance(answer, int):
            # A short wait keeps clients that honour it from idling a whole minute.
            retry_after = 1 if answer == 429 else None
            raise PhotoroomError(
                answer, "Injected by the provider emulator (fault share or script).", retry_after
            )
        if answer == "slow":
            self._state.pause(settings.slow_seconds)

    def _edit(self, request: Request, key: str) -> Response:
        if request.method == "POST" and not is_multipart(request):
            raise PhotoroomError(400, "Send the request as multipart/form-data.")
        # An input image and a guidance image may both be near the limit.
        request.max_content_length = 2 * MAX_IMAGE_BYTES + 1024 * 1024
        edit = _parse_edit(request)
        sandbox = key.startswith(SANDBOX_PREFIX)  # sandbox calls are free
        if not sandbox and self._state.balance(PROVIDER) < 1:
            raise PhotoroomError(402, "You have exhausted your credits.")

        source = _image(request, "imageFile", "imageUrl")
        if source is None:
            raise PhotoroomError(400, "imageFile or imageUrl is required.")
        cutout = images.cut_out(source)
        guidance = _image(request, "background.guidance.imageFile", "background.guidance.imageUrl")
        background = _image(request, "background.imageFile", "background.imageUrl")
        seed = edit.seed if edit.seed is not None else self._state.faults.new_seed()
        placed = _place(cutout, edit)
        if background is not None:
            picture = images.composite(placed, images.fill_backdrop(placed.size, background))
        elif edit.prompt is not None or guidance is not None:
            scene = images.backdrop(
                placed.size,
                edit.prompt or "",
                seed,
                guidance=guidance,
                guidance_scale=edit.guidance_scale,
            )
            picture = images.composite(placed, scene)
        else:
            # No background asked for: the cut-out alone, as the edit endpoint gives it.
            picture = images.transparent(placed)
        picture = images.label(picture)
        if sandbox:
            picture = images.watermark(picture)
        body = images.encode(picture, edit.export_format, _QUALITY[edit.export_format])

        if not sandbox and not self._state.charge(PROVIDER, 1):
            raise PhotoroomError(402, "You have exhausted your credits.")
        self._state.count(PROVIDER, "images")
        headers = {
            "pr-ai-background-seed": str(seed),
            "x-uncertainty-score": f"{images.edge_share(placed.mask):.4f}",
        }
        if edit.negative_prompt is not None and edit.model != NEGATIVE_PROMPT_MODEL:
            headers["pr-unsupported-attributes"] = "background.negativePrompt"
        return Response(body, mimetype=images.CONTENT_TYPES[edit.export_format], headers=headers)


def _parse_edit(request: Request) -> Edit:
    prompt = text_field(request, "background.prompt")
    if prompt is not None and _given(request, "background.imageFile", "background.imageUrl"):
        raise PhotoroomError(
            400, "background.prompt cannot be combined with background.imageUrl/imageFile."
        )

    raw_seed = text_field(request, "background.seed")
    seed: int | None = None
    if raw_seed is not None and raw_seed.isdigit():
        seed = int(raw_seed)  # exact, however long
    elif raw_seed is not None:
        try:
            number = float(raw_seed)  # a "number" field may arrive as 42.0
        except ValueError:
            number = -1.0
        if number < 0 or not number.is_integer():
            raise PhotoroomError(400, "background.seed must be a positive integer.")
        seed = int(number)

    expand = text_field(request, "background.expandPrompt.mode") or "ai.auto"
    if expand not in ("ai.auto", "ai.never"):
        raise PhotoroomError(400, "background.expandPrompt.mode must be ai.auto or ai.never.")

    raw_scale = text_field(request, "background.guidance.scale") or "0.6"
    try:
        scale = float(raw_scale)
    except ValueError:
        scale = -1.0
    if not 0.0 <= scale <= 1.0:
        raise PhotoroomError(400, "background.guidance.scale must be a number from 0 to 1.")

    reference_box = text_field(request, "referenceBox") or "subjectBox"
    if reference_box not in ("subjectBox", "originalImage"):
        raise PhotoroomError(400, "referenceBox must be subjectBox or originalImage.")

    output_size = text_field(request, "outputSize") or "auto"
    if output_size not in ("auto", "originalImage", "croppedSubject"):
        match = _SIZE.match(output_size)
        if match is None or not all(1 <= int(side) <= MAX_OUTPUT_SIDE for side in match.groups()):
            raise PhotoroomError(
                400,
                "outputSize must be auto, originalImage, croppedSubject or WIDTHxHEIGHT "
                f"(sides up to {MAX_OUTPUT_SIDE}).",
            )

    raw_format = text_field(request, "export.format") or "png"
    export_format = _EXPORT_FORMATS.get(raw_format)
    if export_format is None:
        raise PhotoroomError(400, "export.format must be png, jpeg, jpg or webp.")

    model = request.headers.get(MODEL_HEADER) or MODELS[0]
    if model not in MODELS:
        raise PhotoroomError(400, f"{MODEL_HEADER} must be one of {', '.join(MODELS)}.")

    return Edit(
        prompt=prompt,
        seed=seed,
        negative_prompt=text_field(request, "background.negativePrompt"),
        guidance_scale=scale,
        reference_box="subjectBox" if reference_box == "subjectBox" else "originalImage",
        output_size=output_size,
        export_format=export_format,
        model=model,
    )


def _given(request: Request, file_name: str, url_name: str) -> bool:
    return file_field(request, file_name) is not None or text_field(request, url_name) is not None


def _image(request: Request, file_name: str, url_name: str) -> Image.Image | None:
    """The image from the file or the URL field (never both), or None if neither is given."""
    upload: FileStorage | None = file_field(request, file_name)
    url = text_field(request, url_name)
    if upload is not None and url is not None:
        raise PhotoroomError(400, f"Send either {file_name} or {url_name}, not both.")
    if upload is None and url is None:
        return None
    if upload is not None:
        field_name = file_name
        data = read_upload(upload, MAX_IMAGE_BYTES)
        if data is None:
            raise PhotoroomError(400, f"{file_name} is larger than {MAX_IMAGE_BYTES} bytes.")
    else:
        assert url is not None
        field_name = url_name
        if not is_web_url(url):
            raise PhotoroomError(400, f"{url_name} must be an absolute http(s) URL.")
        try:
            data = fetch(url, MAX_IMAGE_BYTES)
        except FetchError as error:
            raise PhotoroomError(400, f"{url_name}: {error}") from error
    try:
        return images.open_image(data)
    except (images.UnsupportedImage, images.BrokenImage) as error:
        raise PhotoroomError(400, f"{field_name}: {error}") from error


def _place(cutout: Cutout, edit: Edit) -> Cutout:
    """Output size and subject position from outputSize and referenceBox."""
    if edit.output_size == "croppedSubject":
        left, top, right, bottom = cutout.subject_box()
        return images.arrange(cutout, (right - left, bottom - top), around_subject=True)
    match = _SIZE.match(edit.output_size)
    size = (int(match.group(1)), int(match.group(2))) if match else cutout.size
    if edit.reference_box == "originalImage":
        return images.arrange(cutout, size, around_subject=False)
    return images.arrange(cutout, size, around_subject=True, padding=_SUBJECT_PADDING)
