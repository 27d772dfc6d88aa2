"""The simple hosted-model protocol used by notebook hosts (and by ``python -m bot serve``).

One route, ``POST {url}/api``, with the caller's ``token``, ``task:
"text_generation"``, the model to use (``repo_id``, ``file_name``), ``inputs`` (the
prompt, or role/content messages when the host applies a ``chat_format``),
``parameters`` (max_tokens, top_k, top_p, temperature) and ``options`` (use_gpu,
ctx_length, chat_format). The whole reply comes back at once in
``answer.content``: no streaming, no stop strings (the caller cuts at them).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
from pydantic import BaseModel, TypeAdapter

from bot.backends.base import Capabilities, Chunk, GenerationRequest, Health, ModelInfo
from bot.backends.http import DEFAULT_CONTEXT, Generation, GenerationClock, HttpBackend, parse_as
from bot.backends.settings import ApiHostConfig
from bot.errors import BackendHTTPError, BackendProtocolError

__all__ = ["ApiHostBackend"]

log = logging.getLogger(__name__)


class _Content(BaseModel):
    content: str


class _Answer(BaseModel):
    """The answer of ``POST /api``: the whole reply at once."""

    answer: _Content


class _HostHealth(BaseModel):
    model: str | None = None


_ANSWER = TypeAdapter(_Answer)
_HEALTH = TypeAdapter(_HostHealth)


class ApiHostBackend(HttpBackend):
    """A notebook host (or Troupe's own ``serve``) speaking the api_host protocol."""

    kind = "api_host"
    capabilities = Capabilities(streaming=False, tokenize=False, abort=False, model_info=False)

    def __init__(self, config: ApiHostConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__(config, transport=transport)
        self.config: ApiHostConfig = config
        secret = config.token or config.api_key
        self._token = secret.get_secret_value() if secret else ""
        if self._token:
            self._client.headers["Authorization"] = f"Bearer {self._token}"

    async def _generate(self, request: GenerationRequest, generation: Generation) -> AsyncIterator[Chunk]:
        clock = GenerationClock()
        async with self._open_stream("/api", await self._body(request), generation) as response:
            try:
                raw = await response.aread()
            except (httpx.HTTPError, httpx.StreamError) as exc:
                raise BackendProtocolError(
                    f"the answer from {self.url}/api was cut short ({exc})", backend=self.name
                ) from exc
        content = parse_as(_ANSWER, raw, backend=self.name, what="the answer of /api").answer.content
        if content:
            clock.text()
            yield Chunk(text=content)
        yield Chunk(done=True, timings=clock.timings(generated_tokens=0, finish_reason="stop"))

    async def _body(self, request: GenerationRequest) -> dict[str, Any]:
        s = request.sampling
        inputs: str | list[dict[str, str]] = request.prompt
        if self.config.chat_format and request.messages:
            inputs = [{"role": m.role, "content": m.content} for m in request.messages]
        body: dict[str, Any] = {
            "token": self._token,
            "task": "text_generation",
            "repo_id": self.config.repo_id,
            "file_name": self.config.file_name,
            "inputs": inputs,
            "parameters": {
                "max_tokens": request.max_tokens,
                "top_k": s.top_k,
                "top_p": s.top_p,
                "temperature": s.temperature,
            },
            "options": {
                "use_gpu": self.config.use_gpu,
                "ctx_length": await self.context_size(),
                "chat_format": self.config.chat_format,
            },
        }
        body.update(self.config.extra_body)
        return body

    async def context_size(self) -> int:
        """``n_ctx`` from the config (the protocol has no way to ask), else a safe default."""
        return self.config.n_ctx or DEFAULT_CONTEXT

    async def model_info(self) -> ModelInfo:
        """The configured model (the protocol cannot report one)."""
        parts = [part for part in (self.config.repo_id, self.config.file_name) if part]
        name = "/".join(parts) or "host default"
        return ModelInfo(name=name, n_ctx=await self.context_size())

    async def _probe(self) -> Health:
        info = await self.model_info()
        try:
            host = await self._parsed("GET", "/health", _HEALTH)
        except BackendHTTPError as exc:
            if exc.status not in (404, 405):
                raise
            detail = "reachable (the host has no /health route)"
            return Health(ok=True, detail=detail, model=info.name, n_ctx=info.n_ctx)
        return Health(ok=True, detail="ready", model=host.model or info.name, n_ctx=info.n_ctx)
