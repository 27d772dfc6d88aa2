"""Is a message for the bot, and for which character? Pure decisions on plain facts.

The Discord adapter turns a gateway message into an :class:`Incoming` (who wrote
it, where, whether it mentions the bot or replies to one of its characters) and
asks :func:`decide` (or :func:`route` for one character); this module never sees
Discord objects, so every rule is tested without a connection.

In a scene, :class:`Decision.addressed` names who was addressed: the member whose
message it replies to, else the members it names (display name, nickname, wake
words; whole words) in the order they are first named. Empty: the director picks.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.access import Place, is_allowed
from bot.config import AccessLists

__all__ = [
    "Incoming", "RouteSettings", "Route", "CastMember", "Decision", "route", "decide", "named_members",
    "out_of_character", "says_any", "allowed_here",
]

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
    replied_character: str | None = None  # the name that character's message was posted under


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


@dataclass(frozen=True)
class CastMember:
    """A member of the channel's cast: its card name and the words that call it (display
    name first, then its other names and wake words)."""

    name: str
    words: tuple[str, ...]


@dataclass(frozen=True)
class Decision:
    """What to do with a message, and who it addresses (card names, in order)."""

    route: Route
    addressed: tuple[str, ...] = ()


def route(message: Incoming, settings: RouteSettings, names: Sequence[str]) -> Route:
    """Whether (and how) the bot takes part: ``names`` are the words that call the character."""
    return decide(message, settings, [CastMember("", tuple(names))]).route


def decide(message: Incoming, settings: RouteSettings, cast: Sequence[CastMember]) -> Decision:
    """Whether the bot takes part, and which members of ``cast`` the message addresses."""
    if message.from_our_webhook or not message.ordinary:
        return Decision(Route.IGNORE)
    if message.from_bot and not settings.respond_to_bots:
        return Decision(Route.IGNORE)
    if out_of_character(message.content, settings.ooc_prefixes):
        return Decision(Route.IGNORE)
    replied = _replied_member(message, cast)
    named = named_members(message.content, cast)
    addressed = (replied,) if replied else named
    if not _addressed(message, settings, bool(named)):
        return Decision(Route.LISTEN)
    if settings.access is not None and not is_allowed(settings.access, message.place):
        return Decision(Route.REFUSED)
    return Decision(Route.ANSWER, addressed)


def allowed_here(message: Incoming, settings: RouteSettings) -> bool:
    """Whether the access rules let the bot speak where ``message`` was written (for replies
    nobody asked for: ambient ones)."""
    return settings.access is None or is_allowed(settings.access, message.place)


def _addressed(message: Incoming, settings: RouteSettings, named: bool) -> bool:
    if message.direct:
        return settings.allow_dms
    if message.mentions_us or message.replies_to_us:
        return True
    return settings.wake_words and named


def _replied_member(message: Incoming, cast: Sequence[CastMember]) -> str | None:
    if not message.replies_to_us or not message.replied_character:
        return None
    wanted = message.replied_character.casefold()
    for member in cast:
        if wanted in (member.name.casefold(), *(w.casefold() for w in member.words[:1])):
            return member.name
    return None


def named_members(text: str, cast: Sequence[CastMember]) -> tuple[str, ...]:
    """The members ``text`` names (any of their words, whole words, case-insensitive),
    in the order each is first named."""
    found: list[tuple[int, int, str]] = []
    for index, member in enumerate(cast):
        first = _first_position(text, member.words)
        if first is not None:
            found.append((first, index, member.name))
    return tuple(name for _, _, name in sorted(found))


def _first_position(text: str, words: Iterable[str]) -> int | None:
    positions = [
        match.start() for word in words if word.strip()
        if (match := re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text, re.IGNORECASE))
    ]
    return min(positions) if positions else None


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
