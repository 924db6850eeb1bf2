"""The /_sim control API's JSON plumbing: one reading of a request body, one error shape."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object ({} without a body); 400 for anything else."""
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise bad_request("body must be JSON") from None
    if not isinstance(body, dict):
        raise bad_request("body must be a JSON object")
    return body


def bad_request(message: str) -> web.HTTPBadRequest:
    """400 with `{"error": message}`."""
    return web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")
