"""The aiohttp application: auth, the route table, starting and stopping.

Which handler answers ``/v1/chat/completions`` depends on ``model``: absent, or the
raw model's id, is the raw model (:mod:`bot.serve.raw`); a character's name or
nickname (case-insensitive) is that character (:mod:`bot.serve.characters`);
anything else is a 404 naming what is available. Without characters (``create_app``
given none) every chat request goes to the raw model, as before characters existed.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.backends.base import Backend
from bot.errors import BackendError, BackendUnavailable
from bot.serve import wire
from bot.serve.characters import Characters
from bot.serve.raw import RawRoutes

__all__ = ["RunningServer", "create_app", "serve", "start_server"]

log = logging.getLogger(__name__)

TOKEN = web.AppKey("token", str)

_PUBLIC = {"/health", "/api"}  # /health says little without the token; /api checks its body token
_MAX_BODY = 16 * 1024 * 1024
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


@web.middleware
async def _auth(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    if request.path in _PUBLIC or _bearer_ok(request):
        return await handler(request)
    return _unauthorized()


def _bearer_ok(request: web.Request) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and _same(given.strip(), request.app[TOKEN])


def _same(given: str, token: str) -> bool:
    return hmac.compare_digest(given.encode(), token.encode())


def _unauthorized() -> web.Response:
    response = wire.error_response(
        401, "missing or wrong bearer token", "invalid_request_error", code="invalid_api_key"
    )
    response.headers["WWW-Authenticate"] = "Bearer"
    return response


class _Routes:
    """The route table: the raw model's handlers, and the characters' when served."""

    def __init__(self, backend: Backend, characters: Characters | None) -> None:
        self.raw = RawRoutes(backend)
        self.characters = characters

    async def health(self, request: web.Request) -> web.Response:
        return await self.raw.health(request, authorized=_bearer_ok(request))

    async def models(self, request: web.Request) -> web.Response:
        """The raw model first (Troupe's remote backends take the first), then the characters."""
        try:
            info = await self.raw.model_info()
        except BackendError as exc:
            return wire.failure_response(exc)
        entries = [_model_entry(info.name, info.n_ctx, "troupe")]
        if self.characters is not None:
            await self.characters.refresh()
            entries += [
                _model_entry(name, info.n_ctx, "troupe-character") for name in self.characters.names()
            ]
        return web.json_response({"object": "list", "data": entries})

    async def completions(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await wire.json_body(request)
        except wire.RequestError as exc:
            return exc.response()
        return await self.raw.completion(request, body, chat=False)

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await wire.json_body(request)
        except wire.RequestError as exc:
            return exc.response()
        model = body.get("model")
        if self.characters is None or model is None or model == "":
            return await self.raw.completion(request, body, chat=True)
        if not isinstance(model, str):
            return wire.RequestError("model must be a string", "model").response()
        raw_name = await self.raw.model_name()
        if model == raw_name:
            return await self.raw.completion(request, body, chat=True)
        await self.characters.refresh()
        character = self.characters.find(model)
        if character is None:
            return _no_such_model(model, raw_name, self.characters.names())
        return await self.characters.chat(request, body, character)

    async def api(self, request: web.Request) -> web.Response:
        try:
            body = await wire.json_body(request)
        except wire.RequestError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        token = body.get("token")
        if not ((isinstance(token, str) and _same(token, request.app[TOKEN])) or _bearer_ok(request)):
            return web.json_response({"error": "missing or wrong token"}, status=401)
        return await self.raw.api(request, body)


def _model_entry(name: str, n_ctx: int | None, owner: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": owner, "n_ctx": n_ctx}


def _no_such_model(model: str, raw_name: str, characters: list[str]) -> web.Response:
    listed = ", ".join(characters) if characters else "none"
    message = (
        f"The model {model!r} does not exist. Characters: {listed}. "
        f"The raw model: {raw_name!r}. GET /v1/models lists them."
    )
    return wire.error_response(404, message, "invalid_request_error", code="model_not_found", param="model")


def create_app(backend: Backend, *, token: str, characters: Characters | None = None) -> web.Application:
    """The aiohttp application serving ``backend`` (and ``characters``); every route but
    /health needs ``token``."""
    if not token:
        raise ValueError("serve needs a non-empty token")
    app = web.Application(middlewares=[_auth], client_max_size=_MAX_BODY)
    app[TOKEN] = token
    routes = _Routes(backend, characters)
    app.add_routes(
        [
            web.get("/health", routes.health),
            web.get("/v1/models", routes.models),
            web.post("/v1/completions", routes.completions),
            web.post("/v1/chat/completions", routes.chat_completions),
            web.post("/api", routes.api),
        ]
    )
    return app


# --------------------------------------------------------------------------- running it


@dataclass
class RunningServer:
    """A started server: where it listens and the token clients need."""

    url: str
    token: str
    runner: web.AppRunner

    async def close(self) -> None:
        """Stop listening and finish."""
        await self.runner.cleanup()


async def start_server(
    backend: Backend,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    token: str | None = None,
    characters: Characters | None = None,
) -> RunningServer:
    """Start serving ``backend`` (and ``characters``) in this event loop (``port=0``: a free port)."""
    if not token:
        token = secrets.token_urlsafe(24)
        log.warning("serve: no token configured; clients must send this one (shown once): %s", token)
    app = create_app(backend, token=token, characters=characters)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise BackendUnavailable(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    bound_host, bound_port = runner.addresses[0][:2]
    url = f"http://{host if ':' not in host else f'[{host}]'}:{bound_port}"
    if host not in _LOOPBACK:
        log.warning(
            "serve: listening on %s (%s): anyone who can reach it and has the token can use the model",
            url,
            bound_host,
        )
    served = f" and {len(characters.names())} character(s)" if characters is not None else ""
    log.info("serve: %s serving %s%s (OpenAI-compatible /v1, api_host /api)", url, backend.name, served)
    return RunningServer(url=url, token=token, runner=runner)


async def serve(
    backend: Backend,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    token: str | None = None,
    characters: Characters | None = None,
) -> None:
    """Serve ``backend`` (and ``characters``) until cancelled (Ctrl-C)."""
    server = await start_server(backend, host=host, port=port, token=token, characters=characters)
    try:
        await asyncio.Event().wait()
    finally:
        await server.close()
