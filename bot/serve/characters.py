"""Troupe's characters over the OpenAI chat API.

``POST /v1/chat/completions`` with ``model`` set to a character's name runs the same
ChatService as Discord (card, lorebook, stops, prompt format, retries) on the
request's messages, mapped to turns by :mod:`bot.serve.turns`. A conversation id
(the ``X-Conversation-Id`` header, else the request's ``user`` field) names the
ChatService conversation ``serve:<id>``, which keeps that conversation's state (its
window anchor, its backend KV-cache slot or saved state) between requests; the
``serve:`` prefix keeps it apart from Discord's numeric channel ids.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from typing import Any

from aiohttp import web

from bot.cards.library import CharacterLibrary
from bot.cards.model import Character
from bot.chat import ChatService, ReplyStream, resolve_sampling
from bot.config import Config
from bot.errors import BotError
from bot.prompt.stops import StopScanner
from bot.serve import wire
from bot.serve.turns import messages_to_conversation

__all__ = ["CONVERSATION_HEADER", "Characters", "conversation_key"]

log = logging.getLogger(__name__)

CONVERSATION_HEADER = "X-Conversation-Id"
_MAX_ID = 256


def conversation_key(header: str | None, user: Any) -> str | None:
    """The ChatService conversation for a request: ``serve:<id>``, or None without an id."""
    given = header if header else user
    if given is None or given == "":
        return None
    if not isinstance(given, str) or not given.strip():
        raise wire.RequestError("user must be a non-empty string", "user")
    if len(given) > _MAX_ID:
        raise wire.RequestError(f"the conversation id is longer than {_MAX_ID} characters", "user")
    return f"serve:{given.strip()}"


class Characters:
    """The characters ``serve`` offers, and the ChatService that voices them.

    The library is looked at again (off the event loop) at most every ``watch``
    seconds, so cards added or edited go live without a restart (0: never).
    """

    def __init__(
        self, service: ChatService, library: CharacterLibrary, config: Config, *, watch: float = 5.0
    ) -> None:
        self.service = service
        self.library = library
        self.config = config
        self.watch = watch
        self._looked = time.monotonic()
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        """Reload the characters folder if it changed (at most every ``watch`` seconds)."""
        if self.watch <= 0 or time.monotonic() - self._looked < self.watch:
            return
        async with self._lock:
            if time.monotonic() - self._looked < self.watch:
                return
            self._looked = time.monotonic()
            if await asyncio.to_thread(self.library.changed):
                await asyncio.to_thread(self.library.reload)

    def find(self, name: str) -> Character | None:
        """The character with this name or nickname (case-insensitive)."""
        return self.library.get(name)

    def names(self) -> list[str]:
        """Every character's name, sorted."""
        return self.library.names()

    async def chat(
        self, request: web.Request, body: dict[str, Any], character: Character
    ) -> web.StreamResponse:
        """Answer one chat completion as ``character``."""
        try:
            conversation = messages_to_conversation(
                wire.messages(body.get("messages")), character.display_name
            )
            overrides = wire.sampling_values(body)
            limit = wire.max_tokens(body, None)
            client_stops = wire.stops(body.get("stop"))
            key = conversation_key(request.headers.get(CONVERSATION_HEADER), body.get("user"))
        except wire.RequestError as exc:
            return exc.response()
        sampling = replace(resolve_sampling(self.config, character), **overrides) if overrides else None
        try:
            stream = await self.service.reply(
                character,
                conversation.turns,
                conversation=key,
                user_name=conversation.user_name,
                prefill=conversation.prefill,
                sampling=sampling,
                max_tokens=limit,
            )
        except BotError as exc:
            log.error("serve: %s could not reply: %s", character.name, exc)
            return wire.failure_response(exc)
        shape = wire.Shape(chat=True, model=character.name)
        sse = wire.SSE(request) if body.get("stream") else None
        try:
            reply = await _relay(stream, client_stops, sse, shape)
        except BotError as exc:
            log.error("serve: %s failed mid-reply: %s", character.name, exc)
            if sse is None or not sse.opened:
                return wire.failure_response(exc)
            _, error = wire.failure_body(exc)
            await sse.send({"error": error})
            return await sse.close()
        if sse is None:
            return web.json_response(shape.whole(reply))
        if not sse.opened:
            await sse.send(shape.piece(None, role=True))
        await sse.send(shape.piece(None, finish=reply.finish, usage=wire.usage(reply)))
        await sse.send("[DONE]")
        return await sse.close()


async def _relay(
    stream: ReplyStream, client_stops: tuple[str, ...], sse: wire.SSE | None, shape: wire.Shape
) -> wire.Reply:
    """Read the reply (also cut at the client's own stops), sending each piece when streaming."""
    reply = wire.Reply()
    cutter = StopScanner(client_stops, strip_leading=False, trim_trailing=False) if client_stops else None

    async def send(text: str) -> bool:
        if not text:
            return True
        reply.text += text
        if sse is None:
            return True
        if not sse.opened and not await sse.send(shape.piece(None, role=True)):
            return False
        return await sse.send(shape.piece(text))

    try:
        async for piece in stream:
            if not await send(cutter.feed(piece) if cutter else piece):
                break  # the client left: closing the stream stops the generation
            if cutter is not None and cutter.stopped:
                break
        else:
            if cutter is not None:
                await send(cutter.finish())
    finally:
        await stream.aclose()
    stats = stream.stats
    cut = (cutter is not None and cutter.stopped) or stats.stop is not None
    reply.finish = (
        "length" if not cut and stats.timings and stats.timings.finish_reason == "length" else "stop"
    )
    reply.count(stats.timings, prompt_estimate=stats.prompt_tokens)
    return reply
