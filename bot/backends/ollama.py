"""Ollama through its native API.

``POST /api/generate`` with ``raw: true`` sends the transcript as it is (no
template) and streams JSON lines. Ollama's default context is small and it
truncates silently beyond it, so ``options.num_ctx`` is always sent: the
config's ``n_ctx``, else the model's own ``num_ctx`` parameter, else its trained
context capped at :data:`MAX_AUTO_CONTEXT`. ``keep_alive`` keeps the model
loaded between replies. Ollama has no tokenizer endpoint: counts are estimated.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
from pydantic import BaseModel, TypeAdapter

from bot.backends.base import Capabilities, Chunk, GenerationRequest, Health, ModelInfo, Timings
from bot.backends.http import Generation, GenerationClock, HttpBackend, iter_ndjson, llama_samplers
from bot.backends.settings import OllamaConfig
from bot.errors import BackendError

__all__ = ["OllamaBackend", "MAX_AUTO_CONTEXT"]

log = logging.getLogger(__name__)

#: the largest context chosen automatically (a model's trained context can be far beyond the GPU's memory)
MAX_AUTO_CONTEXT = 8192
_LOAD_TIMEOUT = 600.0


class _Line(BaseModel):
    """One line of ``/api/generate``'s stream; the last has ``done`` and the counts (durations in ns)."""

    response: str = ""
    done: bool = False
    error: object = None
    done_reason: str | None = None
    prompt_eval_count: int | None = None
    eval_count: int | None = None
    prompt_eval_duration: int | None = None
    eval_duration: int | None = None


class _Shown(BaseModel):
    """What ``/api/show`` says of a model (the parts read here)."""

    parameters: str | None = None
    model_info: dict[str, Any] | None = None
    details: dict[str, Any] | None = None


class _Pulled(BaseModel):
    name: str


class _Tags(BaseModel):
    models: list[_Pulled]


_LINE = TypeAdapter(_Line)
_SHOWN = TypeAdapter(_Shown)
_TAGS = TypeAdapter(_Tags)


class OllamaBackend(HttpBackend):
    """An Ollama server."""

    kind = "ollama"
    capabilities = Capabilities(streaming=True, tokenize=False, abort=True, model_info=True, model_load=True)

    def __init__(self, config: OllamaConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__(config, transport=transport)
        self.config: OllamaConfig = config
        self.model = config.model
        self.name = f"ollama {config.url} ({self.model})"

    # ------------------------------------------------------------------ generation

    async def _generate(self, request: GenerationRequest, generation: Generation) -> AsyncIterator[Chunk]:
        body = {
            "model": self.model,
            "prompt": request.prompt,
            "raw": True,
            "stream": True,
            "keep_alive": self.config.keep_alive,
            "options": self._options(request, await self.context_size()),
        }
        body.update(self.config.extra_body)
        clock = GenerationClock()
        async with self._open_stream("/api/generate", body, generation) as response:
            async for line in iter_ndjson(response, _LINE, backend=self.name):
                if line.error is not None:
                    raise self._error_for_status(500, json.dumps({"error": line.error}), "/api/generate")
                if line.response:
                    clock.text()
                    yield Chunk(text=line.response)
                if line.done:
                    yield Chunk(done=True, timings=_timings(line, clock))
                    return

    def _options(self, request: GenerationRequest, n_ctx: int) -> dict[str, Any]:
        return {
            "num_ctx": n_ctx,
            "num_predict": request.max_tokens,
            "stop": list(request.stops),
            **llama_samplers(request.sampling),
        }

    # ------------------------------------------------------------------ models

    async def _show(self, model: str) -> _Shown:
        return await self._parsed("POST", "/api/show", _SHOWN, json_body={"model": model})

    async def _server_context_size(self) -> int | None:
        shown = await self._show(self.model)
        if shown.parameters is not None:
            match = re.search(r"^num_ctx\s+(\d+)", shown.parameters, re.MULTILINE)
            if match:
                return int(match.group(1))
        trained = _trained_context(shown.model_info)
        if trained is None:
            return None
        if trained > MAX_AUTO_CONTEXT:
            log.info(
                "%s: the model was trained for %d tokens of context; using %d (set backend.n_ctx for more)",
                self.name,
                trained,
                MAX_AUTO_CONTEXT,
            )
        return min(trained, MAX_AUTO_CONTEXT)

    async def _pulled(self) -> list[str]:
        return [model.name for model in (await self._parsed("GET", "/api/tags", _TAGS)).models if model.name]

    def _is_pulled(self, model: str, pulled: list[str]) -> bool:
        wanted = {model, f"{model}:latest"} if ":" not in model else {model}
        return any(name in wanted for name in pulled)

    async def model_info(self) -> ModelInfo:
        """The configured model (with its family and size) and every pulled model."""
        pulled = await self._pulled()
        details: dict[str, object] = {}
        if self._is_pulled(self.model, pulled):
            shown_details = (await self._show(self.model)).details or {}
            wanted = ("family", "parameter_size", "quantization_level")
            details = {key: value for key, value in shown_details.items() if key in wanted}
        return ModelInfo(
            name=self.model, n_ctx=await self.context_size(), available=tuple(pulled), details=details
        )

    async def _probe(self) -> Health:
        pulled = await self._pulled()
        if not self._is_pulled(self.model, pulled):
            return Health(
                ok=False, detail=f"model {self.model!r} is not pulled (run: ollama pull {self.model})"
            )
        return Health(ok=True, detail="ready", model=self.model, n_ctx=await self.context_size())

    async def load_model(self, name: str) -> ModelInfo:
        """Switch to another pulled model and load it now (an empty generate loads it)."""
        if not self._is_pulled(name, await self._pulled()):
            raise BackendError(f"model {name!r} is not pulled (run: ollama pull {name})", backend=self.name)
        await self._request(
            "POST",
            "/api/generate",
            json_body={"model": name, "keep_alive": self.config.keep_alive},
            timeout=_LOAD_TIMEOUT,
        )
        self.model = name
        self.name = f"ollama {self.config.url} ({name})"
        self._n_ctx = self.config.n_ctx
        return await self.model_info()

    async def advice(self) -> list[str]:
        """Setup hints for the owner (shown by ``python -m bot check``)."""
        if self.config.n_ctx is None:
            chosen = await self.context_size()
            return [f"context size chosen automatically ({chosen}); set backend.n_ctx to choose"]
        return []


def _trained_context(model_info: dict[str, Any] | None) -> int | None:
    if model_info is None:
        return None
    architecture = model_info.get("general.architecture")
    value = model_info.get(f"{architecture}.context_length")
    return value if isinstance(value, int) and value > 0 else None


def _timings(line: _Line, clock: GenerationClock) -> Timings:
    known: dict[str, Any] = {
        "prompt_evaluated": line.prompt_eval_count,
        "generated_tokens": line.eval_count,
        "finish_reason": line.done_reason,
    }
    if line.prompt_eval_duration is not None:
        known["prompt_seconds"] = line.prompt_eval_duration / 1e9
    if line.eval_duration is not None:
        known["generation_seconds"] = line.eval_duration / 1e9
    return clock.timings(**known)
