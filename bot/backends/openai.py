"""Any OpenAI-compatible server: vLLM, LM Studio, TabbyAPI, KoboldCpp, llama.cpp,
llama-cpp-python's server, text-generation-webui, OpenRouter, ...

The transcript goes to ``/v1/completions`` as a raw prompt (the default); with
``mode: chat`` the request's chat messages go to ``/v1/chat/completions``. Both
stream server-sent events ending with ``data: [DONE]``. Only the standard sampler
fields are sent unless ``extended_samplers`` is on; anything else a server
understands goes in ``extra_body``. Token counts come from llama-cpp-python's
``/extras/tokenize/count`` where the server has it, else from an estimate.
Thinking a server sends apart from the answer (``reasoning_content``, or vLLM's
``reasoning``) comes as :attr:`Chunk.reasoning`. The model's chat template is read
from ``/props`` where the server is llama.cpp's; other servers do not tell it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
from pydantic import BaseModel, TypeAdapter

from bot.backends.base import Capabilities, ChatTemplate, Chunk, GenerationRequest, Health, ModelInfo
from bot.backends.http import Generation, GenerationClock, HttpBackend, iter_sse, parse_as
from bot.backends.llama_server import chat_template_from_props
from bot.backends.settings import OobaConfig, OpenAIConfig
from bot.errors import BackendError, BackendHTTPError, BackendProtocolError

__all__ = ["OpenAIBackend"]

log = logging.getLogger(__name__)

#: where OpenAI-compatible servers put the context length in a ``/v1/models`` entry
_CONTEXT_KEYS = ("max_model_len", "context_length", "max_context_length", "n_ctx")


class _Delta(BaseModel):
    content: str | None = None
    #: a reasoning model's thinking, where the server keeps it apart (llama.cpp, vLLM: one or the other)
    reasoning_content: str | None = None
    reasoning: str | None = None


class _Choice(BaseModel):
    text: str | None = None  # /v1/completions
    delta: _Delta | None = None  # /v1/chat/completions
    finish_reason: str | None = None


class _Usage(BaseModel):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class _StreamEvent(BaseModel):
    """One ``data:`` event of a completions stream (an error event carries ``error`` instead)."""

    choices: list[_Choice] | None = None
    usage: _Usage | None = None
    error: object = None


class _ModelList(BaseModel):
    data: list[dict[str, Any]]


class _Count(BaseModel):
    count: int


_STREAM_EVENT = TypeAdapter(_StreamEvent)
_MODEL_LIST = TypeAdapter(_ModelList)
_COUNT = TypeAdapter(_Count)


class OpenAIBackend(HttpBackend):
    """An OpenAI-compatible server."""

    kind = "openai"
    capabilities = Capabilities(streaming=True, tokenize=False, abort=True, model_info=True)

    def __init__(
        self, config: OpenAIConfig | OobaConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        super().__init__(config, transport=transport)
        self.config: OpenAIConfig | OobaConfig = config
        self._model: str | None = config.model
        self._models: list[dict[str, Any]] | None = None
        self._server_tokenizer: bool | None = None

    @property
    def chat_mode(self) -> bool:
        """Whether requests go to ``/v1/chat/completions``."""
        return self.config.mode == "chat"

    # ------------------------------------------------------------------ generation

    async def _generate(self, request: GenerationRequest, generation: Generation) -> AsyncIterator[Chunk]:
        path = "/v1/chat/completions" if self.chat_mode else "/v1/completions"
        body = await self._body(request)
        clock = GenerationClock()
        finish: str | None = None
        usage = _Usage()
        async with self._open_stream(path, body, generation) as response:
            async for event in iter_sse(response, backend=self.name):
                if event.data.strip() == "[DONE]":
                    yield Chunk(done=True, timings=clock.timings(
                        prompt_tokens=usage.prompt_tokens,
                        generated_tokens=usage.completion_tokens,
                        finish_reason=finish,
                    ))
                    return
                data = parse_as(_STREAM_EVENT, event.data, backend=self.name, what=f"the {path} stream")
                if data.error is not None:
                    raise self._stream_error(data.error, path)
                if data.choices is None:
                    raise BackendProtocolError(
                        f"stream event without 'choices': {event.data[:80]!r}", backend=self.name
                    )
                usage = data.usage or usage
                text, reason, thinking = self._read_choice(data.choices)
                finish = reason or finish
                if text or thinking:
                    clock.text()
                    yield Chunk(text=text, reasoning=thinking)

    def _read_choice(self, choices: list[_Choice]) -> tuple[str, str | None, str]:
        """The text, the finish reason and any separate thinking of one stream event."""
        if not choices:
            return "", None, ""  # e.g. the usage-only chunk
        choice = choices[0]
        if self.chat_mode:
            delta = choice.delta or _Delta()
            return delta.content or "", choice.finish_reason, delta.reasoning_content or delta.reasoning or ""
        return choice.text or "", choice.finish_reason, ""

    def _stream_error(self, error: object, path: str) -> BackendError:
        status = error.get("code") if isinstance(error, dict) else None
        status = status if isinstance(status, int) and status >= 400 else 500
        return self._error_for_status(status, json.dumps({"error": error}), path)

    async def _body(self, request: GenerationRequest) -> dict[str, Any]:
        s = request.sampling
        body: dict[str, Any] = {}
        model = await self._model_name()
        if model:
            body["model"] = model
        if self.chat_mode:
            messages = request.messages or ()
            body["messages"] = [{"role": m.role, "content": m.content} for m in messages] or [
                {"role": "user", "content": request.prompt}
            ]
        else:
            body["prompt"] = request.prompt
        body.update({
            "max_tokens": request.max_tokens,
            "stream": True,
            "temperature": s.temperature,
            "top_p": s.top_p,
            "presence_penalty": s.presence_penalty,
            "frequency_penalty": s.frequency_penalty,
        })
        if request.stops:
            body["stop"] = list(request.stops)
        if s.seed is not None:
            body["seed"] = s.seed
        body.update(self._sampler_extras(request))
        body.update(self.config.extra_body)
        return body

    def _sampler_extras(self, request: GenerationRequest) -> dict[str, Any]:
        """Sampler fields beyond OpenAI's own, for servers that take them."""
        if not (isinstance(self.config, OpenAIConfig) and self.config.extended_samplers):
            return {}
        s = request.sampling
        return {"top_k": s.top_k, "min_p": s.min_p, "repeat_penalty": s.repeat_penalty}

    # ------------------------------------------------------------------ models

    async def chat_template(self) -> ChatTemplate | None:
        """The model's chat template where the server shows it (llama.cpp's ``/props``), else None."""
        try:
            props = await self._json("GET", "/props")
        except BackendHTTPError as exc:
            if exc.status in (404, 405, 501):
                return None
            raise
        return chat_template_from_props(props)

    async def _list_models(self) -> list[dict[str, Any]]:
        if self._models is None:
            self._models = (await self._parsed("GET", "/v1/models", _MODEL_LIST)).data
        return self._models

    async def _model_name(self) -> str | None:
        """The configured model, else the first one the server lists (None if it lists none)."""
        if self._model is None:
            try:
                models = await self._list_models()
            except BackendError as exc:
                log.info("%s: cannot list models (%s); sending requests without a model name", self.name, exc)
                return None
            ids = [str(entry["id"]) for entry in models if entry.get("id")]
            self._model = ids[0] if ids else ""
            if len(ids) > 1:
                log.warning(
                    "%s: the server has %d models; using %r (set backend.model)", self.name, len(ids), ids[0]
                )
        return self._model or None

    async def _server_context_size(self) -> int | None:
        models = await self._list_models()
        wanted = await self._model_name()
        for entry in models:
            if wanted and entry.get("id") != wanted:
                continue
            for source in (entry, entry.get("meta"), entry.get("top_provider")):
                if not isinstance(source, dict):
                    continue
                for key in _CONTEXT_KEYS:
                    value = source.get(key)
                    if isinstance(value, int) and value > 0:
                        return value
        return None

    async def model_info(self) -> ModelInfo:
        """The configured (or first listed) model and every model the server lists."""
        models = await self._list_models()
        ids = tuple(str(entry["id"]) for entry in models if entry.get("id"))
        name = await self._model_name()
        return ModelInfo(name=name or "unknown", n_ctx=await self.context_size(), available=ids)

    async def _probe(self) -> Health:
        self._models = None
        info = await self.model_info()
        if self.config.model and info.available and self.config.model not in info.available:
            return Health(
                ok=False,
                detail=f"model {self.config.model!r} is not served here "
                f"(available: {', '.join(info.available)})",
            )
        return Health(ok=True, detail="ready", model=info.name, n_ctx=info.n_ctx)

    # ------------------------------------------------------------------ tokens

    async def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """The server's tokenizer where it has one (llama-cpp-python), else an estimate."""
        if self._server_tokenizer is not False:
            try:
                counts = [await self._count_on_server(text) for text in texts]
            except BackendHTTPError as exc:
                if exc.status not in (404, 405, 501):
                    raise
                self._server_tokenizer = False
                log.info("%s: no /extras/tokenize/count on this server", self.name)
            else:
                if self._server_tokenizer is None:
                    self._server_tokenizer = True
                    self.capabilities = Capabilities(**{**self.capabilities.__dict__, "tokenize": True})
                return counts
        return await super().count_tokens(texts)

    async def _count_on_server(self, text: str) -> int:
        if not text:
            return 0
        body: dict[str, Any] = {"input": text}
        model = await self._model_name()
        if model:
            body["model"] = model
        return (await self._parsed("POST", "/extras/tokenize/count", _COUNT, json_body=body)).count
