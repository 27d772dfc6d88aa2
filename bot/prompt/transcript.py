"""Sanitising names and messages, and rendering turns as ``[Name]: text`` lines.

The invariant this module guarantees: in a rendered history, every line matching
:data:`TURN_START` (``^\\s*\\[[^\\]\\n]*\\]\\s*:``) is the start of a real turn. No
participant name and no message text can forge another speaker's line:

* every line break Unicode knows (``\\r``, ``\\v``, ``\\f``, U+0085, U+2028, U+2029,
  the ``\\x1c``-``\\x1e`` separators) becomes ``\\n`` in text and a space in names;
* control characters, lone surrogates, zero-width and bidi-override characters are
  removed (a zero-width joiner survives only between two visible characters, where
  emoji sequences need it; never in names);
* a message line that would look like ``[Name]:`` gets round brackets ``(Name):``;
  names cannot contain square brackets (they become round ones);
* a user whose name is the character's or ``System`` is shown as ``Name (user)``;
* chat-template tokens (``<|im_end|>``, ``<end_of_turn>``, ``[INST]``, ``</s>``,
  ``### Instruction:`` ...) get a space inserted so a tokenizer cannot read them as
  special tokens and they never equal a format's stop string;
* names are capped at :data:`MAX_NAME_CHARS`, texts at :data:`MAX_TEXT_CHARS` with
  a visible ``[…]`` where they were cut; an empty name becomes ``Someone``.

Sanitising is idempotent: sanitising sanitised text changes nothing.
"""

from __future__ import annotations

import functools

import re
import unicodedata

from bot.prompt.types import Turn

__all__ = [
    "TURN_START",
    "MAX_NAME_CHARS",
    "MAX_TEXT_CHARS",
    "CUT_MARK",
    "SYSTEM_SPEAKER",
    "UNKNOWN_SPEAKER",
    "defang_tokens",
    "clean_block",
    "sanitize_name",
    "sanitize_text",
    "speaker_label",
    "same_name",
    "render_line",
    "render_turn",
]

#: a line that reads as the start of somebody's turn
TURN_START = re.compile(r"^\s*\[[^\]\n]*\]\s*:")
MAX_NAME_CHARS = 48
MAX_TEXT_CHARS = 4000
#: marks where a text was shortened
CUT_MARK = "[…]"
SYSTEM_SPEAKER = "System"
UNKNOWN_SPEAKER = "Someone"

_LINE_BREAKS = re.compile("\r\n|[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
# Cc except \t and \n; lone surrogates; Hangul fillers (blank "letters"); Cf (format
# characters) except ZWNJ/ZWJ, which follow.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0e-\x1f\x7f-\x9f\ud800-\udfff"
    "\u00ad\u115f\u1160\u3164\uffa0\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e"
    "\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f]"
)
_BRAILLE_BLANK = "\u2800"  # a blank "name" on Discord; kept in text, where it draws art
_JOINER = "\u200c\u200d"
_LONE_JOINER = re.compile(rf"(?<!\S)[{_JOINER}]+|[{_JOINER}]+(?!\S)")
_ALL_JOINERS = re.compile(f"[{_JOINER}]")

_TOKEN_PATTERNS = (
    # <|im_start|>, <|eot_id|>, <|start_header_id|>, <|endoftext|>, DeepSeek's fullwidth bars
    re.compile(r"<(?=[|｜])"),
    # Gemma / SentencePiece / legacy tags
    re.compile(
        r"<(?=/?(?:s|bos|eos|pad|unk|mask|sep|cls|start|end|start_of_turn|end_of_turn"
        r"|start_of_image|end_of_image|image_soft_token)>)",
        re.IGNORECASE,
    ),
    # Llama 2 system block
    re.compile(r"<(?=</?SYS>>)", re.IGNORECASE),
)
_BRACKET_TOKENS = re.compile(
    r"\[(?=/?(?:INST|SYS|SYSTEM_PROMPT|AVAILABLE_TOOLS|TOOL_CALLS|TOOL_RESULTS)\])", re.IGNORECASE
)
_ALPACA_HEADER = re.compile(r"#(?=##[^\S\n]*(?:Instruction|Response|Input)[^\S\n]*:)", re.IGNORECASE)
_SPACES = re.compile(r"\s+")


def defang_tokens(text: str) -> str:
    """Insert a space into chat-template tokens so they are read as plain text."""
    for pattern in _TOKEN_PATTERNS:
        text = pattern.sub("< ", text)
    text = _BRACKET_TOKENS.sub("[ ", text)
    return _ALPACA_HEADER.sub("# ", text)


def _strip_invisible(text: str, *, keep_joiners: bool) -> str:
    text = _INVISIBLE.sub("", text)
    if keep_joiners:
        return _LONE_JOINER.sub("", text)
    return _ALL_JOINERS.sub("", text)


def clean_block(text: str) -> str:
    """Card text made safe for the prompt head: line breaks, invisibles, template tokens.

    Unlike :func:`sanitize_text` it keeps ``[Name]:`` lines (cards use them on purpose)
    and does not cap the length.
    """
    text = _LINE_BREAKS.sub("\n", text)
    text = _strip_invisible(text, keep_joiners=True)
    return defang_tokens(text).strip()


def sanitize_name(name: str) -> str:
    """A participant name that fits on one line inside ``[...]`` and forges nothing."""
    name = _LINE_BREAKS.sub(" ", name)
    name = _strip_invisible(name, keep_joiners=False).replace(_BRAILLE_BLANK, "")
    name = defang_tokens(name).replace("[", "(").replace("]", ")")
    name = _SPACES.sub(" ", name).strip()
    if len(name) > MAX_NAME_CHARS:
        name = name[:MAX_NAME_CHARS].rstrip()
    return name or UNKNOWN_SPEAKER


def _defang_line_start(line: str) -> str:
    match = TURN_START.match(line)
    if match is None:
        return line
    head = match.group(0)
    opened = head.index("[")
    closed = head.rindex("]")
    head = f"{head[:opened]}({head[opened + 1:closed]}){head[closed + 1:]}"
    return head + line[match.end():]


def sanitize_text(text: str, *, limit: int = MAX_TEXT_CHARS) -> str:
    """A message body that can be put after ``[Name]: `` without forging other turns.

    Texts longer than ``limit`` characters are cut, ending in `` […]``.
    """
    text = _LINE_BREAKS.sub("\n", text)
    text = _strip_invisible(text, keep_joiners=True)
    text = defang_tokens(text).strip()
    text = "\n".join(_defang_line_start(line.rstrip()) for line in text.split("\n"))
    if len(text) > limit:
        kept = text[: max(0, limit - len(CUT_MARK) - 1)].rstrip()
        text = f"{kept} {CUT_MARK}" if kept else CUT_MARK
    return text


def same_name(a: str, b: str) -> bool:
    """Whether two names are the same to a reader (Unicode-normalised, case-folded)."""
    return unicodedata.normalize("NFKC", a).casefold() == unicodedata.normalize("NFKC", b).casefold()


@functools.lru_cache(maxsize=4096)  # pure, and called for every turn of every prompt
def speaker_label(speaker: str, role: str, character_name: str) -> str:
    """The name shown in brackets for a turn.

    The character's own turns carry its name; system notes are ``System``; a user
    whose (sanitised) name equals the character's or ``System`` is ``Name (user)``.
    """
    character = sanitize_name(character_name)
    if role == "character":
        return character
    if role == "system":
        return SYSTEM_SPEAKER
    name = sanitize_name(speaker)
    if same_name(name, character) or same_name(name, SYSTEM_SPEAKER):
        return f"{name} (user)"
    return name


def render_line(label: str, text: str) -> str:
    """``[label]: text`` from an already sanitised label and text."""
    return f"[{label}]: {text}" if text else f"[{label}]:"


def render_turn(turn: Turn, *, character_name: str, limit: int = MAX_TEXT_CHARS) -> str:
    """One turn as ``[Name]: text`` (continuation lines follow on their own lines)."""
    label = speaker_label(turn.speaker, turn.role, character_name)
    return render_line(label, sanitize_text(turn.text, limit=limit))
