"""KoboldAI / KoboldCpp through the KoboldAI API.

Generation streams from ``/api/extra/generate/stream`` (server-sent ``message``
events carrying ``token``; the last one has a ``finish_reason``). Each request
gets its own ``genkey`` so ``/api/extra/abort`` stops exactly that generation.
``stop_sequence`` with ``trim_stop`` cuts at stop strings server-side; token counts
come from ``/api/extra/tokencount`` and the context size from
``/api/extra/true_max_context_length``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
from pydantic import BaseModel, TypeAdapter

from bot.backends.base import Capabilities, Chunk, GenerationRequest, Health, ModelInfo
from bot.backends.http import Generation, GenerationClock, HttpBackend, iter_sse, parse_as
from bot.backends.settings import KoboldConfig
from bot.errors import BackendError, BackendProtocolError

__all__ = ["KoboldBackend"]

log = logging.getLogger(__name__)

_FINISHED = {"stop", "length", "abort"}


class _Event(BaseModel):
    """One ``message`` event of the generate stream."""

    token: str = ""
    finish_reason: str | None = None


class _Value(BaseModel):
    """The answer of ``tokencount`` and the context-length routes."""

    value: int


class _Model(BaseModel):
    result: str


_EVENT = TypeAdapter(_Event)
_VALUE = TypeAdapter(_Value)
_MODEL = TypeAdapter(_Model)


class KoboldBackend(HttpBackend):
    """A KoboldCpp (or KoboldAI United) server."""

    kind = "kobold"
    capabilities = Capabilities(streaming=True, tokenize=True, abort=True, model_info=True)

    def __init__(self, config: KoboldConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__(config, transport=transport)
        self.config: KoboldConfig = config

    async def _generate(self, request: GenerationRequest, generation: Generation) -> AsyncIterator[Chunk]:
        genkey = f"KCPP{secrets.token_hex(4).upper()}"
        generation.extra["genkey"] = genkey
        body = self._body(request, genkey, await self.context_size())
        clock = GenerationClock()
        finish: str | None = None
        async with self._open_stream("/api/extra/generate/stream", body, generation) as response:
            async for event in iter_sse(response, backend=self.name):
                data = parse_as(_EVENT, event.data, backend=self.name, what="the generate stream")
                if data.token:
                    clock.text()
                    yield Chunk(text=data.token)
                finish = data.finish_reason if data.finish_reason in _FINISHED else None
        if finish is None:
            raise BackendProtocolError(
                "the stream ended before KoboldCpp said it was finished (cut short?)", backend=self.name
            )
        yield Chunk(done=True, timings=clock.timings(finish_reason=finish))

    def _body(self, request: GenerationRequest, genkey: str, n_ctx: int) -> dict[str, Any]:
        s = request.sampling
        body: dict[str, Any] = {
            "prompt": request.prompt,
            "max_length": request.max_tokens,
            "max_context_length": n_ctx,
            "stop_sequence": list(request.stops),
            "trim_stop": True,
            "genkey": genkey,
            "temperature": s.temperature,
            "top_k": s.top_k,
            "top_p": s.top_p,
            "min_p": s.min_p,
            "rep_pen": s.repeat_penalty,
            "rep_pen_range": s.repeat_last_n,
            "presence_penalty": s.presence_penalty,
        }
        if s.seed is not None:
            body["sampler_seed"] = s.seed
        body.update(self.config.extra_body)
        return body

    async def _stop_server_generation(self, generation: Generation) -> None:
        genkey = generation.extra.get("genkey")
        if genkey:
            await self._request("POST", "/api/extra/abort", json_body={"genkey": genkey})

    async def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Exact counts from ``/api/extra/tokencount``."""

        async def count(text: str) -> int:
            if not text:
                return 0
            answer = await self._parsed("POST", "/api/extra/tokencount", _VALUE, json_body={"prompt": text})
            return answer.value

        return list(await asyncio.gather(*(count(text) for text in texts)))

    async def _server_context_size(self) -> int | None:
        for path in ("/api/extra/true_max_context_length", "/api/v1/config/max_context_length"):
            try:
                answer = await self._parsed("GET", path, _VALUE)
            except BackendError as exc:
                log.debug("%s: %s unavailable: %s", self.name, path, exc)
                continue
            if answer.value > 0:
                return answer.value
        return None

    async def model_info(self) -> ModelInfo:
        """The loaded model, from ``/api/v1/model``."""
        answer = await self._parsed("GET", "/api/v1/model", _MODEL)
        return ModelInfo(name=answer.result, n_ctx=await self.context_size())

    async def _probe(self) -> Health:
        info = await self.model_info()
        if info.name in ("", "ReadOnly"):
            return Health(ok=False, detail="KoboldCpp has no text model loaded")
        return Health(ok=True, detail="ready", model=info.name, n_ctx=info.n_ctx)
