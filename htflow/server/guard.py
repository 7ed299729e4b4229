"""What every request of ``htflow serve`` passes through: a request id, a query time budget, and
errors turned into short JSON bodies.

- Each request gets an id (``X-Request-ID`` in the answer). An error the server did not expect is
  answered ``500 {"error": "internal error", "request_id": ...}`` and logged as one line with the
  exception's type and the id, never with a traceback, a path or a connection string.
- Queries made while answering stop after ``HTFLOW_API_QUERY_SECONDS``
  (:func:`htflow.store.limits.query_budget`), so no request holds the server longer.
- Bad parameters are a 400 naming the parameter (FastAPI's own 422 lists are folded into one line).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from htflow.settings import get_settings
from htflow.store.limits import query_budget

logger = logging.getLogger("htflow.server")


def request_id(request: Request) -> str:
    """The id the guard gave this request."""
    return request.scope.get("state", {}).get("request_id", "-")


def validation_message(exc: RequestValidationError) -> str:
    """FastAPI's list of parameter errors as one line: ``limit: Input should be a valid integer``."""
    parts = []
    for err in exc.errors()[:3]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "path", "body"))
        parts.append(f"{where}: {err.get('msg', 'invalid')}" if where else str(err.get("msg", "invalid")))
    return "; ".join(parts) or "invalid request"


async def bad_parameters(request: Request, exc: RequestValidationError) -> JSONResponse:
    return JSONResponse({"error": validation_message(exc)}, status_code=400)


class Guard:
    """Pure ASGI middleware around the whole application (the mounted OPTIMADE app included)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = uuid.uuid4().hex[:12]
        scope.setdefault("state", {})["request_id"] = rid
        started = False

        async def send_with_id(message: dict) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        try:
            with query_budget(get_settings().api_query_seconds):
                await self.app(scope, receive, send_with_id)
        except Exception as exc:  # answered (or already answered) without details; logged in one line
            logger.error("request %s: %s %s failed: %s", rid, scope.get("method"), scope.get("path"),
                         type(exc).__name__)
            if not started:
                response = JSONResponse({"error": "internal error", "request_id": rid}, status_code=500)
                await response(scope, receive, send_with_id)
