"""HTTP helpers shared by the HubSpot sandbox's endpoint modules: HubSpot's error body, query
parameters as the SDK sends them (capitalised booleans, repeated names), JSON bodies, batch inputs
and their caps, `paging.next`."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from crmsweep.sandbox.hubspot_schema import ObjectType, object_type
from crmsweep.sandbox.hubspot_values import format_ts
from crmsweep.sandbox.provider_api import Request, Response, json_response

BATCH_MAX = 100


class HubSpotError(Exception):
    """A whole-request failure, answered as HubSpot's JSON error."""

    def __init__(self, status: int, category: str, message: str, errors: Sequence[Mapping[str, Any]] = (),
                 **extra: Any) -> None:
        super().__init__(message)
        self.status, self.category, self.message = status, category, message
        self.errors, self.extra = list(errors), extra


def error_body(category: str, message: str, errors: Sequence[Mapping[str, Any]] = (), **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"status": "error", "message": message, "correlationId": str(uuid.uuid4()),
                            "category": category, **extra}
    if errors:
        body["errors"] = list(errors)
    return body


def hs_error(status: int, category: str, message: str, errors: Sequence[Mapping[str, Any]] = (),
             **extra: Any) -> Response:
    return json_response(status, error_body(category, message, errors, **extra))


def flag(request: Request, name: str) -> bool:
    """A boolean query parameter as the SDK sends it ("True"/"False") or as documented ("true")."""
    return (request.param(name) or "false").strip().lower() == "true"


def multi(request: Request, name: str) -> list[str]:
    """A repeated parameter (the SDK's "multi" format), comma-joined values accepted too."""
    return [v.strip() for raw in request.query.get(name, []) for v in raw.split(",") if v.strip()]


def int_param(request: Request, name: str, default: int, *, low: int = 0) -> int:
    raw = request.param(name)
    if raw is None or raw == "":
        return default
    if not raw.strip().lstrip("-").isdigit() or int(raw) < low:
        raise HubSpotError(400, "VALIDATION_ERROR", f"Invalid value for {name}: {raw!r} is not an integer >= {low}")
    return int(raw)


def json_body(request: Request) -> Any:
    try:
        return json.loads(request.body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise HubSpotError(400, "VALIDATION_ERROR", "Invalid input JSON on line 1: the body is not JSON") from None


def json_object(request: Request) -> dict[str, Any]:
    data = json_body(request)
    if not isinstance(data, dict):
        raise HubSpotError(400, "VALIDATION_ERROR", "Invalid input JSON: expected an object")
    return data


def batch_inputs(request: Request, limit: int = BATCH_MAX) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    data = json_object(request)
    inputs = data.get("inputs")
    if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
        raise HubSpotError(400, "VALIDATION_ERROR", "Invalid input JSON: inputs must be a list of objects")
    if len(inputs) > limit:
        raise HubSpotError(400, "VALIDATION_ERROR",
                           f"Batch input limit exceeded: provided input size ({len(inputs)}) exceeded maximum "
                           f"size ({limit})", context={"inputs": [str(len(inputs))]})
    return data, inputs


def paging(after: int | str | None) -> dict[str, Any]:
    return {} if after is None else {"paging": {"next": {"after": str(after), "link": f"?after={after}"}}}


def batch_times(started: datetime, clock: Callable[[], datetime]) -> dict[str, str]:
    return {"startedAt": format_ts(started), "completedAt": format_ts(clock())}


def object_or_400(name: str) -> ObjectType:
    o = object_type(name)
    if o is None:
        raise HubSpotError(400, "OBJECT_NOT_FOUND" if name.isdigit() else "VALIDATION_ERROR",
                           f"Unable to infer object type from: {name}")
    return o


def allow(method: str, *allowed: str) -> None:
    if method not in allowed:
        raise HubSpotError(405, "METHOD_NOT_ALLOWED", f"HTTP method {method} is not supported here; use "
                           + " or ".join(allowed))
