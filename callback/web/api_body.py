"""What the JSON API reads from a request: a bounded JSON object, and the one error shape it
answers with (`ApiError`, rendered by the API blueprint)."""
import json

from flask import request

# Every API body is a small flat object: bound what parsing one may cost.
MAX_BODY_BYTES = 16 * 1024
MAX_JSON_DEPTH = 8


class ApiError(Exception):
    """An error answered as JSON {"error": …, "fields": {…}} (and, rarely, `extra` members)."""

    def __init__(self, status, message, fields=None, extra=None):
        super().__init__(message)
        self.status, self.message, self.fields, self.extra = status, message, fields or {}, extra or {}


def json_depth(text):
    """How deeply arrays and objects nest in a JSON text, found in one pass without parsing
    (a hostile body must not reach the parser's recursion)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def json_body():
    """The request's JSON object, or a JSON 400 (413 when over MAX_BODY_BYTES)."""
    if not request.is_json:
        raise ApiError(400, "the body must be a JSON object (Content-Type: application/json)")
    try:
        text = request.get_data().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, "the body must be UTF-8 JSON") from exc
    if json_depth(text) > MAX_JSON_DEPTH:
        raise ApiError(400, f"the body nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ApiError(400, "the body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object")
    return data
