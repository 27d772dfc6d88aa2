"""A fake llama.cpp ``llama-server`` (tools/server README, field by field).

Routes: ``GET /health``, ``GET /props``, ``POST /tokenize``, ``POST /completion``
(SSE when ``stream`` is true). It keeps a per-slot prompt cache so ``timings.prompt_n``
shows what a real server would have had to read again, answers 503 with the
server's ``unavailable_error`` while ``loading``, and refuses a prompt longer than
its context with the real ``exceed_context_size_error`` body.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.server import FakeServer, Misbehaviour, check_fields, fake_tokenize, plan_reply

__all__ = ["FakeLlamaServer", "COMPLETION_FIELDS"]

#: every field ``/completion`` documents (the real server ignores others; this fake refuses them)
COMPLETION_FIELDS: dict[str, Any] = {
    "temperature": float, "dynatemp_range": float, "dynatemp_exponent": float, "top_k": int, "top_p": float,
    "min_p": float, "n_predict": int, "n_indent": int, "n_keep": int, "stream": bool, "stop": "str_list",
    "typical_p": float, "repeat_penalty": float, "repeat_last_n": int, "presence_penalty": float,
    "frequency_penalty": float, "dry_multiplier": float, "dry_base": float, "dry_allowed_length": int,
    "dry_penalty_last_n": int, "dry_sequence_breakers": "str_list", "xtc_probability": float,
    "xtc_threshold": float, "mirostat": int, "mirostat_tau": float, "mirostat_eta": float, "grammar": str,
    "json_schema": dict, "seed": int, "ignore_eos": bool, "logit_bias": "any", "n_probs": int, "min_keep": int,
    "t_max_predict_ms": int, "id_slot": int, "cache_prompt": bool, "return_tokens": bool, "samplers": "any",
    "timings_per_token": bool, "return_progress": bool, "post_sampling_probs": bool, "response_fields": "any",
    "lora": "any", "n_cache_reuse": int, "n_cmpl": int,
}


def _error(status: int, message: str, kind: str, **extra: Any) -> web.Response:
    return web.json_response({"error": {"code": status, "message": message, "type": kind, **extra}}, status=status)


@dataclass
class FakeLlamaServer(FakeServer):
    """See the module docstring."""

    reply: list[str] = field(default_factory=lambda: ["Hello", " there", ",", " friend", "."])
    n_ctx: int = 4096
    total_slots: int = 2
    loading: bool = False
    model_path: str = "/models/fake-model-Q4_K_M.gguf"
    slot_cache: dict[int, list[int]] = field(default_factory=dict)
    #: generations streamed to the end (final message sent)
    completed: int = 0
    #: like ``--api-key``: every route but /health then needs ``Authorization: Bearer <key>``
    api_key: str | None = None
    #: an ``error`` object to send as a stream event after the text (as the server does for late failures)
    stream_error: dict[str, Any] | None = None
    #: whether the server can shift its KV cache (``--cache-reuse`` honoured and, for sliding-window
    #: models, ``--swa-full``): a request's ``n_cache_reuse`` then reuses moved chunks of the old prompt
    can_shift: bool = True
    #: like recent builds' ``--cache-ram``: earlier prompts are kept in memory and a new prompt
    #: starts from the one sharing its longest prefix, whichever slot read it
    cache_ram: bool = False
    _remembered: list[list[int]] = field(default_factory=list)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/health", self._health),
            web.get("/props", self._keyed(self._props)),
            web.post("/tokenize", self._keyed(self._tokenize)),
            web.post("/completion", self._keyed(self._completion)),
        ]

    def _keyed(self, handler: Any) -> Any:
        async def check(request: web.Request) -> web.StreamResponse:
            if self.api_key is not None and request.headers.get("Authorization") != f"Bearer {self.api_key}":
                return _error(401, "Invalid API Key", "authentication_error")
            return await handler(request)

        return check

    def _loading(self) -> web.Response:
        return _error(503, "Loading model", "unavailable_error")

    async def _health(self, request: web.Request) -> web.Response:
        return self._loading() if self.loading else web.json_response({"status": "ok"})

    async def _props(self, request: web.Request) -> web.Response:
        if self.loading:
            return self._loading()
        return web.json_response({
            "default_generation_settings": {"n_ctx": self.n_ctx, "params": {"n_predict": -1, "temperature": 0.8}},
            "total_slots": self.total_slots,
            "model_alias": self.model_path,  # recent builds (b11434): the path when no --alias is given
            "model_path": self.model_path,
            "chat_template": "",
            "build_info": "b6000-fake",
        })

    async def _tokenize(self, request: web.Request) -> web.Response:
        if self.loading:
            return self._loading()
        body = await request.json()
        problem = check_fields(body, {"content": str}, {"add_special": bool, "with_pieces": bool})
        if problem:
            return _error(400, problem, "invalid_request_error")
        return web.json_response({"tokens": fake_tokenize(body["content"])})

    async def _completion(self, request: web.Request) -> web.StreamResponse:
        if self.loading or self.take_failure():
            return self._loading()
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "invalid JSON", "invalid_request_error")
        if not isinstance(body, dict) or "prompt" not in body:
            return _error(400, '"prompt" must be provided', "invalid_request_error")
        problem = check_fields(body, {"prompt": str}, COMPLETION_FIELDS)
        if problem:
            return _error(400, problem, "invalid_request_error")
        slot = body.get("id_slot", -1)
        if slot >= self.total_slots:
            return _error(400, f"invalid slot id {slot}", "invalid_request_error")
        slot = 0 if slot < 0 else slot
        prompt = fake_tokenize(body["prompt"])
        if len(prompt) >= self.n_ctx:
            return _error(
                400,
                f"request ({len(prompt)} tokens) exceeds the available context size ({self.n_ctx} tokens), "
                "try increasing it",
                "exceed_context_size_error",
                n_prompt_tokens=len(prompt),
                n_ctx=self.n_ctx,
            )
        if self.misbehave == Misbehaviour.HANG:
            return await self.hang()
        if self.misbehave == Misbehaviour.DROP_BEFORE_TEXT:
            self.drop(request)
            return web.Response()
        cached = self.slot_cache.get(slot, []) if body.get("cache_prompt", True) else []
        if self.cache_ram and body.get("cache_prompt", True):
            cached = max([cached, *self._remembered], key=lambda old: _common_prefix(old, prompt))
            self._remembered.append(prompt)
        common = _common_prefix(cached, prompt)
        chunk = body.get("n_cache_reuse", 0)
        if self.can_shift and chunk > 0:
            common += _shifted_reuse(cached, prompt, common, chunk)
        self.slot_cache[slot] = prompt
        plan = plan_reply(self.reply, body.get("stop", []), body.get("n_predict", -1))
        final = {
            "content": "",
            "stop": True,
            "id_slot": slot,
            "model": self.model_path,
            "tokens_predicted": len(plan.pieces),
            "tokens_evaluated": len(prompt),
            "tokens_cached": len(prompt) + len(plan.pieces),
            "truncated": False,
            "stop_type": plan.finish,
            "stopping_word": plan.stopping_word,
            "generation_settings": {"n_ctx": self.n_ctx},
            "timings": {
                "cache_n": common,
                "prompt_n": len(prompt) - common,
                "prompt_ms": 12.5,
                "prompt_per_token_ms": 0.5,
                "prompt_per_second": 2000.0,
                "predicted_n": len(plan.pieces),
                "predicted_ms": 40.0,
                "predicted_per_token_ms": 8.0,
                "predicted_per_second": 125.0,
            },
        }
        if not body.get("stream"):
            return web.json_response({**final, "content": "".join(plan.pieces)})
        return await self._stream(request, plan.pieces, slot, final)

    async def _stream(self, request: web.Request, pieces: list[str], slot: int, final: dict[str, Any]) -> web.StreamResponse:
        response = await self.open_stream(request, "text/event-stream")
        if self.misbehave == Misbehaviour.CUT_MID_LINE:
            return await self.write_last(request, response, 'data: {"content":"Hel')
        if self.misbehave == Misbehaviour.GARBAGE:
            return await self.write_last(request, response, "data: {this is not json\n\n")
        for index, piece in enumerate(pieces):
            event = {"content": piece, "stop": False, "id_slot": slot, "tokens": [index]}
            if not await self.write(request, response, f"data: {json.dumps(event)}\n\n"):
                return response
            self.pieces_sent += 1
            if self.misbehave == Misbehaviour.DROP:
                self.drop(request)
                return response
        if self.stream_error is not None:
            await self.write(request, response, f"data: {json.dumps({'error': self.stream_error})}\n\n")
        elif self.misbehave != Misbehaviour.NO_FINAL:
            if await self.write(request, response, f"data: {json.dumps(final)}\n\n"):
                self.completed += 1
        await response.write_eof()
        return response


def _common_prefix(a: list[int], b: list[int]) -> int:
    count = 0
    for x, y in zip(a, b):
        if x != y:
            break
        count += 1
    return count


def _shifted_reuse(cached: list[int], prompt: list[int], start: int, chunk: int) -> int:
    """Tokens after ``start`` a shifting server takes from later in its cache (runs of >= ``chunk``).

    Like llama-server's cache reuse, it walks the cache looking for the prompt's next token and
    never skips prompt tokens: one unmatched token at the seam ends the reuse.
    """
    reused, i, j = 0, start, start
    while i < len(prompt) and j < len(cached):
        run = 0
        while i + run < len(prompt) and j + run < len(cached) and prompt[i + run] == cached[j + run]:
            run += 1
        if run >= chunk:
            reused += run
            i, j = i + run, j + run
        else:
            j += 1
    return reused
