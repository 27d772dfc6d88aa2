"""The raw model over HTTP: OpenAI completions and chat, the api_host protocol, health.

Stop strings are enforced here, whatever the backend does with them, by the same
:class:`~bot.prompt.stops.StopScanner` the ChatService uses (set to cut only, so the
text is otherwise returned byte for byte). Chat messages become a plain transcript:
the system messages, then one line per message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import aclosing
from typing import Any

from aiohttp import web

from bot.backends.base import Backend, GenerationRequest, ModelInfo, Sampling
from bot.errors import BackendError
from bot.prompt.stops import StopScanner
from bot.serve import wire

__all__ = ["RawRoutes", "generate", "messages_to_prompt"]

_DEFAULT_MAX_TOKENS = 16  # OpenAI's own default for /v1/completions
_CHAT_MAX_TOKENS = 512


def messages_to_prompt(messages: Sequence[dict[str, Any]]) -> str:
    """A plain transcript: the system messages, a blank line, then one line per message.

    A message with a ``name`` becomes ``name: content``. When the last message is the
    assistant's, the model continues it; otherwise the prompt ends with a newline.
    """
    system = [str(m.get("content", "")) for m in messages if m.get("role") == "system"]
    lines = []
    for message in messages:
        if message.get("role") == "system":
            continue
        content, name = str(message.get("content", "")), message.get("name")
        lines.append(f"{name}: {content}" if name else content)
    head = "\n\n".join(s for s in system if s)
    body = "\n".join(lines)
    ends_with_reply = bool(messages) and messages[-1].get("role") == "assistant"
    prompt = f"{head}\n\n{body}" if head and body else head or body
    return prompt if ends_with_reply or not prompt else prompt + "\n"


async def generate(
    backend: Backend, request: GenerationRequest, on_text: Callable[[str], Awaitable[bool]] | None = None
) -> wire.Reply:
    """Run one generation, cutting at stops; ``on_text`` gets each safe piece (False: stop)."""
    scanner = StopScanner(request.stops, strip_leading=False, trim_trailing=False)
    reply = wire.Reply()
    timings = None

    async def emit(text: str) -> bool:
        if not text:
            return True
        reply.text += text
        return await on_text(text) if on_text is not None else True

    async with aclosing(backend.stream(request)) as chunks:
        async for chunk in chunks:
            if chunk.done:
                timings = chunk.timings
                if timings and timings.finish_reason == "length":
                    reply.finish = "length"
                break
            if not await emit(scanner.feed(chunk.text)) or scanner.stopped:
                break
    if scanner.stopped:
        reply.finish = "stop"
    else:
        await emit(scanner.finish())
    reply.count(timings)
    return reply


class RawRoutes:
    """The route handlers that serve the backend itself."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    async def model_info(self) -> ModelInfo:
        """The served model (raises BackendError)."""
        return await self.backend.model_info()

    async def model_name(self) -> str:
        """The served model's name (``troupe`` when the backend cannot say)."""
        try:
            return (await self.backend.model_info()).name
        except BackendError:
            return "troupe"

    async def health(self, request: web.Request, *, authorized: bool) -> web.Response:
        """Liveness; the model and its details only for the token holder."""
        health = await self.backend.health()
        status = 200 if health.ok else 503
        body: dict[str, Any] = {"status": "ok" if health.ok else "unavailable"}
        if authorized:
            body.update(detail=health.detail, model=health.model, n_ctx=health.n_ctx)
        return web.json_response(body, status=status)

    async def completion(
        self, request: web.Request, body: dict[str, Any], *, chat: bool
    ) -> web.StreamResponse:
        """``/v1/completions``, or ``/v1/chat/completions`` for the raw model."""
        try:
            if chat:
                prompt = messages_to_prompt(wire.messages(body.get("messages")))
                default_max = _CHAT_MAX_TOKENS
            else:
                if "prompt" not in body:
                    raise wire.RequestError("prompt is required", "prompt")
                prompt = wire.prompt_text(body["prompt"])
                default_max = _DEFAULT_MAX_TOKENS
            generation = GenerationRequest(
                prompt=prompt,
                max_tokens=wire.max_tokens(body, default_max) or default_max,
                stops=wire.stops(body.get("stop")),
                sampling=Sampling(**wire.sampling_values(body)),
            )
        except wire.RequestError as exc:
            return exc.response()
        shape = wire.Shape(chat=chat, model=await self.model_name())
        if body.get("stream"):
            return await self._stream(request, generation, shape)
        try:
            reply = await generate(self.backend, generation)
        except BackendError as exc:
            return wire.failure_response(exc)
        return web.json_response(shape.whole(reply))

    async def _stream(
        self, request: web.Request, generation: GenerationRequest, shape: wire.Shape
    ) -> web.StreamResponse:
        sse = wire.SSE(request)

        async def on_text(text: str) -> bool:
            if not sse.opened and shape.chat and not await sse.send(shape.piece(None, role=True)):
                return False
            return await sse.send(shape.piece(text))

        try:
            reply = await generate(self.backend, generation, on_text)
        except BackendError as exc:
            if not sse.opened:
                return wire.failure_response(exc)
            _, error = wire.failure_body(exc)
            await sse.send({"error": error})
            return await sse.close()
        if not sse.opened and shape.chat:
            await sse.send(shape.piece(None, role=True))
        await sse.send(shape.piece(None, finish=reply.finish, usage=wire.usage(reply)))
        await sse.send("[DONE]")
        return await sse.close()

    async def api(self, request: web.Request, body: dict[str, Any]) -> web.Response:
        """The api_host protocol (the token was checked by the caller)."""
        if body.get("task", "text_generation") != "text_generation":
            return web.json_response({"error": f"unsupported task {body.get('task')!r}"}, status=400)
        parameters = body.get("parameters") or {}
        try:
            if not isinstance(parameters, dict):
                raise wire.RequestError("parameters must be an object", "parameters")
            inputs = body.get("inputs")
            prompt = (
                inputs if isinstance(inputs, str) else messages_to_prompt(wire.messages(inputs, "inputs"))
            )
            generation = GenerationRequest(
                prompt=prompt,
                max_tokens=wire.max_tokens(parameters, 256) or 256,
                stops=wire.stops(parameters.get("stop")),
                sampling=Sampling(**wire.sampling_values(parameters)),
            )
        except wire.RequestError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        try:
            reply = await generate(self.backend, generation)
        except BackendError as exc:
            status, error = wire.failure_body(exc)
            return web.json_response({"error": error["message"]}, status=status)
        return web.json_response({"answer": {"content": reply.text}, "usage": wire.usage(reply)})
