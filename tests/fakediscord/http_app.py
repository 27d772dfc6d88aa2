"""The REST side's plumbing: body parsing (JSON and multipart), auth, fault injection,
Discord-shaped JSON answers, and the request log."""

from __future__ import annotations

import json
import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .errors import ApiError
from .faults import FaultInjector

__all__ = ["UploadedFile", "RecordedRequest", "Reply", "Api", "json_response", "Handler"]

_log = logging.getLogger(__name__)


@dataclass
class UploadedFile:
    """A file part of a multipart request (``files[n]``)."""

    field: str
    filename: str
    data: bytes = field(repr=False)
    content_type: str | None = None


@dataclass
class RecordedRequest:
    """One REST request as the fake received it, and how it answered."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    headers: dict[str, str]
    files: list[UploadedFile] = field(default_factory=list)
    status: int | None = None
    error_code: int | None = None
    at: float = field(default_factory=time.monotonic)


@dataclass
class Reply:
    """A handler's answer: JSON ``body`` (None means 204 No Content) with extra headers."""

    body: Any = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


RECORD = web.RequestKey("record", RecordedRequest)
Handler = Callable[[web.Request, RecordedRequest], Awaitable[Any]]


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """JSON with ``Content-Type: application/json`` exactly (discord.py rejects a charset suffix)."""
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    return web.Response(body=json.dumps(body).encode(), status=status, headers=all_headers)


async def _read_body(request: web.Request) -> tuple[Any, list[UploadedFile]]:
    if request.content_type == "multipart/form-data":
        payload: Any = None
        files: list[UploadedFile] = []
        reader = await request.multipart()
        async for part in reader:
            name = part.name or ""  # type: ignore[union-attr]
            data = await part.read()  # type: ignore[union-attr]
            if name == "payload_json":
                try:
                    payload = json.loads(data.decode())
                except ValueError as exc:
                    raise ApiError(400, 50109, "The request body contains invalid JSON.") from exc
            else:
                files.append(UploadedFile(name, part.filename or name, bytes(data), part.headers.get("Content-Type")))  # type: ignore[union-attr]
        return payload, files
    raw = await request.read()
    if not raw:
        return None, []
    if request.content_type != "application/json":
        raise ApiError(400, 50109, "The request body contains invalid JSON.")
    try:
        return json.loads(raw), []
    except ValueError as exc:
        raise ApiError(400, 50109, "The request body contains invalid JSON.") from exc


class Api:
    """Builds the aiohttp routes under ``base`` and runs every request through the same checks."""

    def __init__(self, app: web.Application, base: str, token: str, faults: FaultInjector) -> None:
        self.app = app
        self.base = base
        self.token = token
        self.faults = faults
        self.requests: deque[RecordedRequest] = deque()
        self.unhandled: list[RecordedRequest] = []
        self.crashes: list[tuple[RecordedRequest, BaseException]] = []
        #: answers given, by (method, route as registered, status): cheap to keep for any length of run
        self.tally: Counter[tuple[str, str, int]] = Counter()
        app.middlewares.append(self._middleware)

    def add(self, method: str, path: str, handler: Handler, *, auth: bool = True) -> None:
        """Register ``handler`` for ``method base+path``; ``auth`` requires ``Authorization: Bot <token>``."""

        async def endpoint(request: web.Request) -> web.StreamResponse:
            record: RecordedRequest = request[RECORD]
            if auth and request.headers.get("Authorization") != f"Bot {self.token}":
                raise ApiError(401, 0, "401: Unauthorized")
            fault = self.faults.take(request.method, record.path)
            if fault is not None:
                raise fault.error()
            result = await handler(request, record)
            reply = result if isinstance(result, Reply) else Reply(body=result)
            if reply.body is None:
                return web.Response(status=204, headers=reply.headers)
            return json_response(reply.body, reply.status, reply.headers)

        self.app.router.add_route(method, self.base + path, endpoint)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        if not request.path.startswith(self.base + "/"):
            return await handler(request)
        record = RecordedRequest(
            method=request.method,
            path=request.path[len(self.base):],
            query=dict(request.query),
            json=None,
            headers=dict(request.headers),
        )
        self.requests.append(record)
        request[RECORD] = record
        try:
            record.json, record.files = await _read_body(request)
            response = await handler(request)
        except ApiError as exc:
            record.error_code = exc.code
            response = json_response(exc.body(), exc.status, exc.headers)
        except web.HTTPException as exc:
            if exc.status not in (404, 405):
                raise
            _log.warning("fake Discord has no route for %s %s", request.method, record.path)
            self.unhandled.append(record)
            response = json_response({"message": "404: Not Found", "code": 0}, 404)
        except Exception as exc:  # a bug in the fake: answer at once (a 500 would make discord.py retry for 25 s)
            _log.exception("fake Discord crashed on %s %s", request.method, record.path)
            self.crashes.append((record, exc))
            response = json_response({"message": f"fake Discord crashed: {exc!r}", "code": 0}, 400)
        record.status = response.status
        route = request.match_info.route.resource
        path = route.canonical[len(self.base):] if route is not None else record.path
        self.tally[(record.method, path, response.status)] += 1
        return response
