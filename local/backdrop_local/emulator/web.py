"""Small HTTP helpers shared by the emulated providers."""

from __future__ import annotations

import json
from collections.abc import Mapping

from werkzeug.datastructures import FileStorage
from werkzeug.wrappers import Request, Response


def json_response(
    body: object, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        json.dumps(body), status=status, headers=dict(headers or {}), mimetype="application/json"
    )


def is_multipart(request: Request) -> bool:
    return request.mimetype == "multipart/form-data"


def text_field(request: Request, name: str) -> str | None:
    """A form (or, for GET, query) value; an empty string counts as absent."""
    source = request.args if request.method == "GET" else request.form
    value = source.get(name)
    return value if value else None


def file_field(request: Request, name: str) -> FileStorage | None:
    upload = request.files.get(name)
    # Browsers and some clients send an empty part for an unset file input.
    if upload is None or (not upload.filename and _empty(upload)):
        return None
    return upload


def _empty(upload: FileStorage) -> bool:
    stream = upload.stream
    position = stream.tell()
    stream.seek(0, 2)
    empty = stream.tell() == 0
    stream.seek(position)
    return empty


def read_upload(upload: FileStorage, limit: int) -> bytes | None:
    """The uploaded bytes, or None when they exceed `limit`."""
    data = upload.stream.read(limit + 1)
    return None if len(data) > limit else data
