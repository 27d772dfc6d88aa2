"""Pure text helpers for front ends: splitting long replies, neutralising pings."""

from __future__ import annotations

import re

__all__ = ["split_message", "split_point", "defuse_mentions", "estimate_tokens", "DISCORD_LIMIT", "CHARS_PER_TOKEN"]

DISCORD_LIMIT = 2000
#: characters per token in the one estimate used where no tokenizer can count
CHARS_PER_TOKEN = 3.5

_SENTENCE_END = re.compile(r"[.!?…]['\")\]]*\s")
_MASS_MENTION = re.compile(r"@(everyone|here)")


def estimate_tokens(text: str) -> int:
    """A rough token count where no tokenizer is available: characters / 3.5, rounded up."""
    if not text:
        return 0
    return int(len(text) / CHARS_PER_TOKEN + 0.999)


def split_point(text: str, limit: int = DISCORD_LIMIT) -> int:
    """Where to cut ``text`` (longer than ``limit``): a paragraph, line, sentence or word
    boundary in the last part of the allowed window, else a hard cut at ``limit``."""
    if len(text) <= limit:
        return len(text)
    window = text[:limit]
    floor = limit // 2  # never leave a uselessly short first message
    for boundary in ("\n\n", "\n"):
        at = window.rfind(boundary)
        if at >= floor:
            return at + len(boundary)
    sentence_ends = [m.end() for m in _SENTENCE_END.finditer(window) if m.end() >= floor]
    if sentence_ends:
        return sentence_ends[-1]
    at = window.rfind(" ")
    if at >= floor:
        return at + 1
    return limit


def split_message(text: str, limit: int = DISCORD_LIMIT) -> list[str]:
    """Split ``text`` into parts of at most ``limit`` characters at natural boundaries."""
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = split_point(rest, limit)
        head, rest = rest[:cut].rstrip(), rest[cut:].lstrip("\n")
        if head:
            parts.append(head)
    if rest.strip():
        parts.append(rest.rstrip())
    return parts


def defuse_mentions(text: str) -> str:
    """Break ``@everyone``/``@here`` with a zero-width space so they read the same but never ping.

    Belt and braces: allowed_mentions already forbids pings; this also keeps other
    bots and clients that render text from treating them as mentions.
    """
    return _MASS_MENTION.sub("@\u200b\\1", text)
