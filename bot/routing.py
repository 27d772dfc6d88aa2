"""Is a message for the bot? Pure decisions on plain facts about a message.

The Discord adapter turns a gateway message into an :class:`Incoming` (who wrote
it, where, whether it mentions the bot or replies to one of its characters) and
asks :func:`route`; this module never sees Discord objects, so every rule is
tested without a connection.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.access import Place, is_allowed
from bot.config import AccessLists

__all__ = ["Incoming", "RouteSettings", "Route", "route", "out_of_character", "says_any"]

_LEADING_MENTIONS = re.compile(r"^(?:\s*<@[!&]?\d+>)+")


@dataclass(frozen=True)
class Incoming:
    """What routing needs to know about one message."""

    content: str
    place: Place  # author, server, channel (and its parents), roles: for the access rules
    from_bot: bool = False  # written by a bot account (not us)
    from_our_webhook: bool = False  # one of our own characters' webhook messages
    ordinary: bool = True  # a default message or a reply (not a join, pin, ...)
    direct: bool = False  # a DM
    mentions_us: bool = False
    replies_to_us: bool = False  # replies to the bot or one of its characters


@dataclass(frozen=True)
class RouteSettings:
    """The config (and the channel's switches) that routing follows."""

    respond_to_bots: bool = False
    allow_dms: bool = True
    ooc_prefixes: tuple[str, ...] = ("//", "((")
    wake_words: bool = True  # in effect in this channel
    access: AccessLists | None = None


class Route(enum.Enum):
    """What to do with a message."""

    IGNORE = "ignore"  # not part of any conversation (our own, another bot's, a system message, OOC)
    LISTEN = "listen"  # part of the conversation, not asking for a reply
    REFUSED = "refused"  # asks for a reply where the access rules forbid one
    ANSWER = "answer"


def route(message: Incoming, settings: RouteSettings, names: Sequence[str]) -> Route:
    """Whether (and how) the bot takes part: ``names`` are the words that call the character."""
    if message.from_our_webhook or not message.ordinary:
        return Route.IGNORE
    if message.from_bot and not settings.respond_to_bots:
        return Route.IGNORE
    if out_of_character(message.content, settings.ooc_prefixes):
        return Route.IGNORE
    if not _addressed(message, settings, names):
        return Route.LISTEN
    if settings.access is not None and not is_allowed(settings.access, message.place):
        return Route.REFUSED
    return Route.ANSWER


def _addressed(message: Incoming, settings: RouteSettings, names: Sequence[str]) -> bool:
    if message.direct:
        return settings.allow_dms
    if message.mentions_us or message.replies_to_us:
        return True
    return settings.wake_words and says_any(message.content, names)


def out_of_character(text: str, prefixes: Iterable[str]) -> bool:
    """Whether a message is marked out of character (``// ...``, ``(( ... ))``, also after
    leading mentions): people talking among themselves, not to the character nor in the story."""
    text = _LEADING_MENTIONS.sub("", text).lstrip()
    return any(prefix and text.startswith(prefix) for prefix in prefixes)


def says_any(text: str, words: Iterable[str]) -> bool:
    """Whether ``text`` contains one of ``words`` as a whole word (case-insensitive)."""
    return any(
        re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text, re.IGNORECASE) for word in words if word.strip()
    )
