"""What the API reads: one JSON object per request body, within Django's size limit."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest
from django.utils.http import parse_header_parameters
from rest_framework.exceptions import ParseError, UnsupportedMediaType
from rest_framework.parsers import JSONParser
from rest_framework.request import Request

JSON = "application/json"


class JSONObjectParser(JSONParser):
    """A JSON object, or a 400 that says what is wrong.

    Unlike DRF's parser it reads the body through Django's `request.body`, which enforces
    `DATA_UPLOAD_MAX_MEMORY_SIZE` (DRF reads the raw stream, so a 10 MB body would be
    parsed in full); the `RequestDataTooBig` it raises becomes a 413
    (`exceptions.handle`). Nesting past Python's recursion limit is a 400, not a crash.
    """

    media_type = JSON
    strict = True  # NaN and Infinity are not JSON, whatever the host's STRICT_JSON says

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> dict:
        context = parser_context or {}
        raw: bytes = context["request"].body
        try:
            data = json.loads(raw.decode(context.get("encoding") or "utf-8"), parse_constant=_refuse_constant)
        except ValueError as exc:  # UnicodeDecodeError is one
            raise ParseError(f"Invalid JSON: {exc}") from exc
        except RecursionError as exc:
            raise ParseError("Invalid JSON: nested too deeply.") from exc
        if not isinstance(data, dict):
            raise ParseError("Send a JSON object.")
        return data


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def sends_json(request: HttpRequest | Request) -> bool:
    """Whether the request says its body is JSON (`Content-Type: application/json`, with any
    parameters): what a cross-site form or a simple cross-site fetch cannot send."""
    media_type, _ = parse_header_parameters(request.META.get("CONTENT_TYPE", ""))
    return media_type == JSON


def json_object(request: Request, required: bool = False) -> dict[str, Any]:
    """The request's JSON object. Without `required`, no body is `{}`; with it, a request
    that does not say it sends JSON is a 415 even when empty. A body without a content type
    is a 415 too (DRF would ignore it, and a `terminate` with it)."""
    if (required or request.stream is not None) and not sends_json(request):
        raise UnsupportedMediaType(request.content_type or "(none)")
    return request.data or {}
