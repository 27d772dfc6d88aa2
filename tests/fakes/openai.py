"""A fake OpenAI-compatible server, optionally with text-generation-webui's extras.

Generic mode follows OpenAI's API: ``/v1/models``, ``/v1/completions`` and
``/v1/chat/completions`` (SSE chunks, then ``data: [DONE]``), bearer-key checks,
OpenAI's error bodies (``context_length_exceeded``, ``invalid_api_key``, unknown
arguments refused). ``tokenize_extras`` adds llama-cpp-python's
``/extras/tokenize/count``. ``ooba`` mode follows text-generation-webui's openai
extension instead: its extra sampler fields, FastAPI's 422 body for bad requests,
and the ``/v1/internal/*`` routes (token count, model info/list/load, stop).
``reasoning`` makes chat streams send thinking first, in ``reasoning_content`` deltas
(as llama.cpp's server with ``--reasoning-format``, DeepSeek's API and vLLM do);
``props`` serves llama.cpp's ``/props`` (with the model's ``chat_template``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.server import FakeServer, Misbehaviour, check_fields, fake_tokenize, plan_reply

__all__ = ["FakeOpenAIServer"]

_COMMON = {
    "model": str, "max_tokens": int, "stop": "str_or_list", "stream": bool, "temperature": float, "top_p": float,
    "presence_penalty": float, "frequency_penalty": float, "seed": int, "n": int, "logit_bias": dict,
    "user": str, "stream_options": dict,
}
_COMPLETIONS = {**_COMMON, "logprobs": int, "echo": bool, "suffix": str, "best_of": int}
_CHAT = {**_COMMON, "max_completion_tokens": int, "response_format": dict, "tools": list, "tool_choice": "any"}
#: what llama.cpp / llama-cpp-python / vLLM accept beyond OpenAI's fields
_EXTENDED = {"top_k": int, "min_p": float, "repeat_penalty": float}
#: text-generation-webui's GenerationOptions (extensions/openai/typing.py)
_OOBA = {
    "preset": str, "min_p": float, "dynamic_temperature": bool, "dynatemp_low": float, "dynatemp_high": float,
    "dynatemp_exponent": float, "smoothing_factor": float, "smoothing_curve": float, "top_k": int,
    "repetition_penalty": float, "repetition_penalty_range": int, "typical_p": float, "tfs": float, "top_a": float,
    "epsilon_cutoff": float, "eta_cutoff": float, "guidance_scale": float, "negative_prompt": str,
    "penalty_alpha": float, "mirostat_mode": int, "mirostat_tau": float, "mirostat_eta": float,
    "temperature_last": bool, "do_sample": bool, "encoder_repetition_penalty": float, "no_repeat_ngram_size": int,
    "dry_multiplier": float, "dry_base": float, "dry_allowed_length": int, "dry_sequence_breakers": str,
    "xtc_threshold": float, "xtc_probability": float, "truncation_length": int, "max_tokens_second": int,
    "prompt_lookup_num_tokens": int, "custom_token_bans": str, "sampler_priority": "any",
    "auto_max_new_tokens": bool, "ban_eos_token": bool, "add_bos_token": bool, "skip_special_tokens": bool,
    "grammar_string": str, "mode": str, "instruction_template": str, "character": str, "name1": str, "name2": str,
    "context": str, "greeting": str, "user_bio": str, "chat_template_str": str, "continue_": bool,
}


def _openai_error(status: int, message: str, kind: str, code: str | None = None, param: str | None = None) -> web.Response:
    return web.json_response({"error": {"message": message, "type": kind, "param": param, "code": code}}, status=status)


@dataclass
class FakeOpenAIServer(FakeServer):
    """See the module docstring."""

    reply: list[str] = field(default_factory=lambda: ["Hello", " there", ",", " friend", "."])
    #: when set, the reply to each request: a function of its prompt (the messages as JSON in chat mode)
    reply_for: Callable[[str], list[str]] | None = None
    models: list[dict[str, Any]] = field(default_factory=lambda: [{"id": "fake-model"}])
    api_key: str | None = None
    n_ctx: int = 4096
    tokenize_extras: bool = False
    extended_samplers: bool = False
    ooba: bool = False
    ooba_model: str = "fake-model-7B"
    ooba_models: list[str] = field(default_factory=lambda: ["fake-model-7B", "other-model-13B"])
    stop_requests: int = 0
    reasoning: list[str] = field(default_factory=list)
    props: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self._stop = asyncio.Event()

    def routes(self) -> list[web.RouteDef]:
        routes = [
            web.get("/v1/models", self._models),
            web.post("/v1/completions", self._completions),
            web.post("/v1/chat/completions", self._chat),
        ]
        if self.tokenize_extras:
            routes.append(web.post("/extras/tokenize/count", self._extras_count))
        if self.props is not None:
            routes.append(web.get("/props", self._props))
        if self.ooba:
            routes += [
                web.post("/v1/internal/token-count", self._token_count),
                web.get("/v1/internal/model/info", self._model_info),
                web.get("/v1/internal/model/list", self._model_list),
                web.post("/v1/internal/model/load", self._model_load),
                web.post("/v1/internal/stop-generation", self._stop_generation),
            ]
        return routes

    # ------------------------------------------------------------------ checks

    def _denied(self, request: web.Request) -> web.Response | None:
        if self.api_key is None:
            return None
        if request.headers.get("Authorization") == f"Bearer {self.api_key}":
            return None
        if self.ooba:
            return web.json_response({"detail": "Unauthorized"}, status=401)
        return _openai_error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")

    def _invalid(self, body: Any, required: dict[str, Any], optional: dict[str, Any]) -> web.Response | None:
        allowed = {**optional, **(_EXTENDED if self.extended_samplers else {}), **(_OOBA if self.ooba else {})}
        problem = check_fields(body, required, allowed)
        if problem is None:
            return None
        if self.ooba:
            return web.json_response({"detail": [{"type": "value_error", "loc": ["body"], "msg": problem}]}, status=422)
        return _openai_error(400, f"Unrecognized request argument supplied: {problem}", "invalid_request_error")

    # ------------------------------------------------------------------ routes

    async def _models(self, request: web.Request) -> web.Response:
        denied = self._denied(request)
        if denied:
            return denied
        data = [{"object": "model", "created": 0, "owned_by": "user", **m} for m in self.models]
        return web.json_response({"object": "list", "data": data})

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, chat=False)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, chat=True)

    async def _generate(self, request: web.Request, *, chat: bool) -> web.StreamResponse:
        denied = self._denied(request)
        if denied:
            return denied
        if self.take_failure():
            return _openai_error(503, "The server is overloaded or not ready yet.", "server_error")
        body = await request.json()
        invalid = (
            self._invalid(body, {"messages": list}, _CHAT) if chat else self._invalid(body, {"prompt": "str_or_list"}, _COMPLETIONS)
        )
        if invalid:
            return invalid
        text = json.dumps(body["messages"]) if chat else str(body["prompt"])
        n_prompt = len(fake_tokenize(text))
        if n_prompt >= self.n_ctx and not self.ooba:
            return _openai_error(
                400,
                f"This model's maximum context length is {self.n_ctx} tokens. However, your prompt resulted in "
                f"{n_prompt} tokens. Please reduce the length of the prompt.",
                "invalid_request_error",
                "context_length_exceeded",
                "messages" if chat else "prompt",
            )
        stops = body.get("stop") or []
        pieces = self.reply_for(text) if self.reply_for is not None else self.reply
        plan = plan_reply(pieces, [stops] if isinstance(stops, str) else stops, body.get("max_tokens"))
        finish = "length" if plan.finish == "limit" else "stop"
        usage = {"prompt_tokens": n_prompt, "completion_tokens": len(plan.pieces), "total_tokens": n_prompt + len(plan.pieces)}
        if self.misbehave == Misbehaviour.HANG:
            return await self.hang()
        if self.misbehave == Misbehaviour.DROP_BEFORE_TEXT:
            self.drop(request)
            return web.Response()
        if not body.get("stream"):
            joined = "".join(plan.pieces)
            choice = {"index": 0, "message": {"role": "assistant", "content": joined}} if chat else {"index": 0, "text": joined}
            return web.json_response({"id": "x", "object": "x", "created": int(time.time()), "model": "fake-model",
                                      "choices": [{**choice, "finish_reason": finish}], "usage": usage})
        return await self._stream(request, chat, plan.pieces, finish, usage)

    def _chunk(self, chat: bool, text: str | None, finish: str | None) -> dict[str, Any]:
        if chat:
            choice: dict[str, Any] = {"index": 0, "delta": {} if text is None else {"content": text}, "finish_reason": finish}
        else:
            choice = {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish}
        kind = "chat.completion.chunk" if chat else "text_completion"
        return {"id": "cmpl-fake", "object": kind, "created": int(time.time()), "model": "fake-model", "choices": [choice]}

    async def _stream(
        self, request: web.Request, chat: bool, pieces: list[str], finish: str, usage: dict[str, int]
    ) -> web.StreamResponse:
        self._stop.clear()
        response = await self.open_stream(request, "text/event-stream; charset=utf-8")
        if self.misbehave == Misbehaviour.CUT_MID_LINE:
            return await self.write_last(request, response, 'data: {"id": "cmpl-fake", "choices": [{"te')
        if self.misbehave == Misbehaviour.GARBAGE:
            return await self.write_last(request, response, "data: <html>Bad Gateway</html>\n\n")
        if chat:
            first = self._chunk(True, None, None)
            first["choices"][0]["delta"] = {"role": "assistant", "content": ""}
            if not await self.write(request, response, f"data: {json.dumps(first)}\n\n"):
                return response
            for thought in self.reasoning:
                event = self._chunk(True, None, None)
                event["choices"][0]["delta"] = {"reasoning_content": thought}
                if not await self.write(request, response, f"data: {json.dumps(event)}\n\n"):
                    return response
        for piece in pieces:
            if self._stop.is_set():
                finish = "stop"
                break
            if not await self.write(request, response, f"data: {json.dumps(self._chunk(chat, piece, None))}\n\n"):
                return response
            self.pieces_sent += 1
            if self.misbehave == Misbehaviour.DROP:
                self.drop(request)
                return response
        if self.misbehave != Misbehaviour.NO_FINAL:
            await self.write(request, response, f"data: {json.dumps(self._chunk(chat, None, finish) | {'usage': usage})}\n\n")
            await self.write(request, response, "data: [DONE]\n\n")
        with contextlib.suppress(ConnectionError):  # a client may hang up once it has the finish reason
            await response.write_eof()
        return response

    async def _props(self, request: web.Request) -> web.Response:
        return self._denied(request) or web.json_response(self.props)

    async def _extras_count(self, request: web.Request) -> web.Response:
        body = await request.json()
        problem = check_fields(body, {"input": str}, {"model": str})
        if problem:
            return web.json_response({"detail": [{"msg": problem}]}, status=422)
        return web.json_response({"count": len(fake_tokenize(body["input"]))})

    # ------------------------------------------------------------------ text-generation-webui internals

    async def _token_count(self, request: web.Request) -> web.Response:
        denied = self._denied(request)
        if denied:
            return denied
        body = await request.json()
        problem = check_fields(body, {"text": str}, {})
        if problem:
            return web.json_response({"detail": [{"msg": problem}]}, status=422)
        return web.json_response({"length": len(fake_tokenize(body["text"]))})

    async def _model_info(self, request: web.Request) -> web.Response:
        return self._denied(request) or web.json_response(
            {"model_name": self.ooba_model, "lora_names": [], "loader": "llama.cpp"}
        )

    async def _model_list(self, request: web.Request) -> web.Response:
        return self._denied(request) or web.json_response({"model_names": self.ooba_models})

    async def _model_load(self, request: web.Request) -> web.Response:
        denied = self._denied(request)
        if denied:
            return denied
        body = await request.json()
        problem = check_fields(body, {"model_name": str}, {"args": dict, "settings": dict})
        if problem:
            return web.json_response({"detail": [{"msg": problem}]}, status=422)
        if body["model_name"] not in self.ooba_models:
            return web.json_response({"detail": "Failed to load the model."}, status=400)
        self.ooba_model = body["model_name"]
        return web.json_response("OK")

    async def _stop_generation(self, request: web.Request) -> web.Response:
        denied = self._denied(request)
        if denied:
            return denied
        self.stop_requests += 1
        self._stop.set()
        return web.json_response("OK")
