"""The Discord I/O module: gateway messages in (routing facts, channel history as turns),
characters' replies out (webhooks, throttled edits, no pings). With ``bot/app.py`` and
``bot/cogs/``, the only code that imports discord."""

from bot.discord_io.history import ChannelHistory
from bot.discord_io.incoming import incoming, place_of
from bot.discord_io.mirror import HistoryMirror
from bot.discord_io.replies import (
    CUT_NOTE,
    NO_PINGS,
    REASONING_FILE,
    REASONING_MARK,
    WEBHOOK_NAME,
    ReplyWriter,
    Speaker,
    Webhooks,
    member_names,
    reasoning_spoiler,
    show_typing,
    turn_from_message,
)
from bot.discord_io.responder import Responder, Speakers
from bot.discord_io.scene_play import ScenePlay

__all__ = [
    "ChannelHistory",
    "HistoryMirror",
    "Responder",
    "ScenePlay",
    "Speakers",
    "incoming",
    "place_of",
    "CUT_NOTE",
    "NO_PINGS",
    "REASONING_FILE",
    "REASONING_MARK",
    "WEBHOOK_NAME",
    "ReplyWriter",
    "Speaker",
    "Webhooks",
    "member_names",
    "reasoning_spoiler",
    "show_typing",
    "turn_from_message",
]
