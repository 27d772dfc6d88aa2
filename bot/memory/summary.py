"""The running summary: what scrolls out of a conversation's window, folded in by the model.

When a reply's window slides, the turns it dropped are noted (:meth:`Summaries.slid`). While
the model is idle (the front end schedules :meth:`Summaries.fold`, as it does read-ahead),
the model writes a new summary from the old one and the dropped turns with a short
instruction (stops enforced, at most ``memory.summary_tokens`` tokens, any ``[Name]:``
line thrown away), :class:`~bot.conversations.Conversations` keeps it, and the new prefix
(card, summary, window) is read into the backend's state for the conversation, so the next
reply reads only what is new.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.backends.base import ChatMessage, GenerationRequest, Sampling
from bot.cards.model import Character
from bot.errors import BotError
from bot.prompt import StopScanner
from bot.prompt.formats import PromptTemplate
from bot.prompt.transcript import sanitize_name, sanitize_text
from bot.prompt.types import Turn

if TYPE_CHECKING:
    from bot.chat import ChatService

__all__ = ["Summaries", "summary_request", "clean_summary", "OPENING"]

log = logging.getLogger(__name__)

_SAMPLING = Sampling(temperature=0.3, top_k=40, top_p=0.9, min_p=0.05, repeat_penalty=1.15)
_TURN_LINE = re.compile(r"^\s*\[[^\]\n]{1,80}\]:")
_MAX_PREVIOUS_CHARS = 2000
#: the summary's first words, written for the model: it continues a sentence, not a chat
OPENING = "In this chat,"


def summary_request(
    template: PromptTemplate, character: str, previous: str, dropped: Sequence[Turn], *, words: int
) -> tuple[str, tuple[ChatMessage, ...], tuple[str, ...]]:
    """The summarisation prompt (text and chat form) and its stops."""
    instruction = (
        f"You keep the memory of a chat with {character}. Write an updated summary of it in at most "
        f"{words} words: plain sentences in the third person, the names, facts, plans and feelings "
        "that matter later. Never write chat lines."
    )
    lines = " ".join(f'{sanitize_name(turn.speaker)} said: "{sanitize_text(turn.text)}"' for turn in dropped)
    earlier = ""
    if previous.strip():
        earlier = f"Summary so far: {sanitize_text(previous, limit=_MAX_PREVIOUS_CHARS)}\n"
    body = f"{earlier}What was said next: {lines}\nUpdated summary:"
    text = "".join((template.wrap("system", instruction), template.wrap("user", body),
                    template.open_assistant(OPENING)))
    stops = tuple(dict.fromkeys(("\n[", "\n\n", *template.stops)))
    return text, (ChatMessage("system", instruction), ChatMessage("user", body)), stops


def clean_summary(text: str) -> str:
    """The summary without any ``[Name]:`` line, on one paragraph, ending at a sentence if cut."""
    kept = " ".join(line.strip() for line in text.splitlines() if line.strip() and not _TURN_LINE.match(line))
    kept = re.sub(r"\s+", " ", kept).strip().removeprefix("Updated summary:").strip()
    end = max(kept.rfind("."), kept.rfind("!"), kept.rfind("?"))
    kept = kept[: end + 1] if end > len(kept) // 2 else kept
    return "" if kept == OPENING else kept


@dataclass
class _Slide:
    character: Character
    dropped: list[Turn]
    turns: list[Turn]
    cast: tuple[Character, ...] = ()


class Summaries:
    """Pending folds per conversation, and the work of folding them in while idle."""

    def __init__(self, service: ChatService) -> None:
        self._service = service
        self._pending: dict[str, _Slide] = {}
        self.tokens_generated = 0  # summary tokens written so far (for the benchmarks)

    def slid(self, conversation: str, character: Character, dropped: Sequence[Turn], turns: Sequence[Turn],
             cast: Sequence[Character] = ()) -> None:
        """The conversation's window dropped ``dropped`` (its turns were ``turns``; ``cast``: a
        scene's members): fold them in soon."""
        pending = self._pending.get(conversation)
        earlier = pending.dropped if pending is not None else []
        self._pending[conversation] = _Slide(character, [*earlier, *dropped], list(turns), tuple(cast))

    def discard(self, conversation: str) -> None:
        """Forget the turns waiting to be folded into the conversation's summary."""
        self._pending.pop(conversation, None)

    def pending(self, conversation: str) -> bool:
        """Whether dropped turns wait to be folded into the conversation's summary."""
        return conversation in self._pending

    async def fold(self, conversation: str) -> int:
        """Fold the dropped turns into the summary, then read the new prefix into the backend's
        state for the conversation. Returns the tokens read ahead (0 if nothing was pending,
        or the backend keeps no state). Failures cost only the summary update."""
        slide = self._pending.pop(conversation, None)
        if slide is None:
            return 0
        service = self._service
        state = await service.conversations.get(conversation)
        try:
            summary = await self._write(conversation, slide, state.summary or "")
            if summary:
                await service.conversations.set_summary(conversation, summary)
            return await service.read_ahead(slide.character, slide.turns, conversation=conversation,
                                            cast=slide.cast)
        except BotError as exc:
            log.warning("Summary of %s not updated: %s", conversation, exc)
            return 0

    async def _write(self, conversation: str, slide: _Slide, previous: str) -> str:
        service = self._service
        limit = service.config.memory.summary_tokens
        if limit <= 0:
            return ""
        template = await service.formats.template(conversation, service.config.prompt)
        text, messages, stops = summary_request(
            template, slide.character.display_name, previous, slide.dropped, words=max(10, limit * 2 // 3)
        )
        request = GenerationRequest(
            prompt=text, max_tokens=limit, stops=stops, sampling=_SAMPLING, conversation=None,
            messages=messages, special_tokens=template.special_tokens,
        )
        scanner = StopScanner(stops)
        written = ""
        stream = service.backend.stream(request)
        try:
            async for chunk in stream:
                if chunk.done:
                    if chunk.timings is not None:
                        self.tokens_generated += chunk.timings.generated_tokens
                    break
                written += scanner.feed(chunk.text)
                if scanner.stopped:
                    break
        finally:
            await stream.aclose()  # type: ignore[attr-defined]
        summary = clean_summary(f"{OPENING} {(written + scanner.finish()).strip()}")
        log.info("Summary updated (%d characters from %d dropped turns)", len(summary), len(slide.dropped))
        return summary
