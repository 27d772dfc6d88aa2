"""The OpenAI wire format ``serve`` speaks: request fields in, response bodies and SSE out.

Shared by the raw-model routes (:mod:`bot.serve.raw`) and the character routes
(:mod:`bot.serve.characters`). Errors use the one mapping in :mod:`bot.failures`.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass, fields
from typing import Any

from aiohttp import web

from bot.backends.base import Sampling, Timings
from bot.failures import describe

__all__ = [
    "SSE",
    "Reply",
    "RequestError",
    "Shape",
    "error_response",
    "failure_body",
    "failure_response",
    "json_body",
    "max_tokens",
    "messages",
    "prompt_text",
    "sampling_values",
    "stops",
    "usage",
]

log = logging.getLogger(__name__)

_SAMPLING_FIELDS = {f.name for f in fields(Sampling)}
_SAMPLING_ALIASES = {"repetition_penalty": "repeat_penalty"}
_ROLES = ("system", "user", "assistant")


class RequestError(Exception):
    """A request the server refuses (HTTP 400, or ``status``)."""

    def __init__(
        self, message: str, param: str | None = None, *, status: int = 400, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.param = param
        self.status = status
        self.code = code

    def response(self) -> web.Response:
        """This refusal as an OpenAI-style error answer."""
        return error_response(
            self.status, str(self), "invalid_request_error", code=self.code, param=self.param
        )


# --------------------------------------------------------------------------- request fields


def sampling_values(body: dict[str, Any]) -> dict[str, Any]:
    """The sampler fields the request sets (OpenAI names and llama.cpp's extras)."""
    values: dict[str, Any] = {}
    for key, value in body.items():
        name = _SAMPLING_ALIASES.get(key, key)
        if name not in _SAMPLING_FIELDS or value is None:
            continue
        if name == "seed":
            if not isinstance(value, int) or isinstance(value, bool):
                raise RequestError("seed must be an integer", key)
            values[name] = value if value >= 0 else None
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            values[name] = int(value) if name in ("top_k", "repeat_last_n") else float(value)
        else:
            raise RequestError(f"{key} must be a number", key)
    return values


def stops(value: Any) -> tuple[str, ...]:
    """The request's ``stop``: a string or a list of strings."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return tuple(value)
    raise RequestError("stop must be a string or a list of strings", "stop")


def max_tokens(body: dict[str, Any], default: int | None) -> int | None:
    """``max_tokens`` (or ``max_completion_tokens``), else ``default``."""
    value = body.get("max_tokens", body.get("max_completion_tokens"))
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise RequestError("max_tokens must be a positive integer", "max_tokens")
    return value


def prompt_text(value: Any) -> str:
    """A completion's ``prompt`` (a string, or a list holding one)."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if not isinstance(value, str):
        raise RequestError("prompt must be a string", "prompt")
    return value


def messages(value: Any, param: str = "messages") -> list[dict[str, Any]]:
    """Validated chat messages with text ``content``.

    Content given as a list of parts (``[{"type": "text", "text": ...}]``, as newer
    clients send) is joined into one string; other parts (images) are refused.
    """
    if not isinstance(value, list) or not value:
        raise RequestError(f"{param} must be a non-empty list of messages", param)
    out = []
    for message in value:
        if not isinstance(message, dict) or message.get("role") not in _ROLES:
            raise RequestError(f"each of {param} needs a role of system, user or assistant", param)
        content = _content(message.get("content"), param)
        name = message.get("name")
        if name is not None and not isinstance(name, str):
            raise RequestError(f"a message's name must be a string ({param})", param)
        out.append({**message, "content": content})
    return out


def _content(content: Any, param: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if not (
                isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)
            ):
                raise RequestError(f"only text content is supported ({param})", param)
            texts.append(part["text"])
        return "".join(texts)
    raise RequestError(f"each of {param} needs text content", param)


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object."""
    try:
        body = await request.json()
    except ValueError as exc:
        raise RequestError("the body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise RequestError("the body must be a JSON object")
    if body.get("n", 1) not in (1, None):
        raise RequestError("only n=1 is supported", "n")
    return body


# --------------------------------------------------------------------------- errors


def error_response(
    status: int, message: str, kind: str, *, code: str | None = None, param: str | None = None
) -> web.Response:
    """An OpenAI-style error answer."""
    return web.json_response(
        {"error": {"message": message, "type": kind, "param": param, "code": code}}, status=status
    )


def failure_body(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """HTTP status and OpenAI-style ``error`` object for a failure (:func:`bot.failures.describe`).

    The message is the sentence people read, then the technical detail: the token
    holder runs the server, and Troupe's own remote backends match on the detail.
    """
    failure = describe(exc)
    detail = str(exc)
    message = f"{failure.text} ({detail})" if detail and detail != failure.text else failure.text
    return failure.status, {"message": message, "type": failure.kind, "param": None, "code": failure.code}


def failure_response(exc: BaseException) -> web.Response:
    """A failure as an OpenAI-style error answer."""
    status, error = failure_body(exc)
    return web.json_response({"error": error}, status=status)


# --------------------------------------------------------------------------- responses


@dataclass
class Reply:
    """A finished reply: its text, why it ended, and what it cost."""

    text: str = ""
    finish: str = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def count(self, timings: Timings | None, *, prompt_estimate: int = 0) -> None:
        """Take the token counts from the backend's timings (else the prompt's estimate)."""
        timings = timings or Timings()
        self.prompt_tokens = timings.prompt_tokens or prompt_estimate
        self.completion_tokens = timings.generated_tokens or 0


def usage(reply: Reply) -> dict[str, int]:
    """OpenAI's ``usage`` object."""
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
    }


@dataclass
class Shape:
    """OpenAI response bodies for one request (``chat``: chat completion, else text completion)."""

    chat: bool
    model: str

    def __post_init__(self) -> None:
        self.id = f"{'chatcmpl' if self.chat else 'cmpl'}-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())

    def _envelope(self, choice: dict[str, Any], *, streaming: bool) -> dict[str, Any]:
        if self.chat:
            kind = "chat.completion.chunk" if streaming else "chat.completion"
        else:
            kind = "text_completion"
        return {
            "id": self.id,
            "object": kind,
            "created": self.created,
            "model": self.model,
            "choices": [choice],
        }

    def piece(
        self,
        text: str | None,
        *,
        role: bool = False,
        finish: str | None = None,
        usage: dict[str, int] | None = None,
    ) -> dict[str, Any]:
        """One streamed chunk (``role``: the chat stream's opening chunk)."""
        if self.chat:
            delta: dict[str, Any] = {"role": "assistant", "content": ""} if role else {}
            if text is not None:
                delta["content"] = text
            choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish}
        else:
            choice = {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish}
        out = self._envelope(choice, streaming=True)
        if usage is not None:
            out["usage"] = usage
        return out

    def whole(self, reply: Reply) -> dict[str, Any]:
        """The non-streamed answer."""
        if self.chat:
            choice: dict[str, Any] = {
                "index": 0,
                "message": {"role": "assistant", "content": reply.text},
                "finish_reason": reply.finish,
            }
        else:
            choice = {"index": 0, "text": reply.text, "logprobs": None, "finish_reason": reply.finish}
        return {**self._envelope(choice, streaming=False), "usage": usage(reply)}


class SSE:
    """An OpenAI-style server-sent event stream; notices when the client has left."""

    def __init__(self, request: web.Request) -> None:
        self.request = request
        self.response = web.StreamResponse(
            status=200, headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        self.opened = False
        self.gone = False

    async def open(self) -> None:
        """Send the headers (once)."""
        if not self.opened:
            self.opened = True
            await self.response.prepare(self.request)

    async def send(self, data: dict[str, Any] | str) -> bool:
        """Send one ``data:`` event; False once the client has gone."""
        if self.gone:
            return False
        await self.open()
        text = data if isinstance(data, str) else json.dumps(data)
        transport = self.request.transport
        try:
            if transport is None or transport.is_closing():
                raise ConnectionResetError("client closed the connection")
            await self.response.write(f"data: {text}\n\n".encode())
        except (ConnectionError, RuntimeError):
            self.gone = True
            log.info("serve: the client left mid-stream; generation stopped")
            return False
        return True

    async def close(self) -> web.StreamResponse:
        """End the stream."""
        await self.open()
        if not self.gone:
            try:
                await self.response.write_eof()
            except (ConnectionError, RuntimeError):
                self.gone = True
        return self.response
