"""The card's text for a prompt: the stable head and the post-history notes.

The head is, in order and separated by blank lines: the system prompt (the card's
replaces the config's; ``{{original}}`` in it is the config's), constant lore placed
``before_char``, the description, ``{{char}}'s personality: ...``, ``Scenario: ...``,
constant lore placed ``after_char``, the example chats, and the chat-start separator.
Metadata (creator notes, tags, creator, version) never reaches the prompt. Macros
are expanded everywhere, then the text is cleaned of template tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.cards.model import Character, LoreEntry
from bot.config import PromptConfig
from bot.prompt.examples import render_example, split_examples
from bot.prompt.lorebook import entry_text
from bot.prompt.macros import expand_macros
from bot.prompt.transcript import clean_block

__all__ = ["CHAT_START", "CardText", "card_text", "expand_block", "head_content", "lore_block"]

CHAT_START = "[Start a new chat]"


@dataclass(frozen=True)
class CardText:
    """Expanded, cleaned card text; ``examples`` are rendered example chats."""

    sections: tuple[str, ...]
    examples: tuple[str, ...]
    post_history: str


def _expand(text: str, *, char: str, user: str, original: str | None = None) -> str:
    return clean_block(expand_macros(text, char=char, user=user, original=original))


def expand_block(text: str, *, char: str, user: str) -> str:
    """Config or card text for the head: macros expanded, then cleaned of template tokens."""
    return _expand(text, char=char, user=user)


def _replacing(own: str, default: str, *, char: str, user: str) -> str:
    """A card field that replaces a global one; ``{{original}}`` is the global one."""
    original = _expand(default, char=char, user=user)
    if not own.strip():
        return original
    return _expand(own, char=char, user=user, original=original)


def lore_block(entries: tuple[LoreEntry, ...], *, char: str, user: str) -> str:
    """The entries' texts, one paragraph each, macros expanded."""
    texts = (_expand(entry_text(e), char=char, user=user) for e in entries)
    return "\n".join(t for t in texts if t)


def card_text(
    character: Character,
    config: PromptConfig,
    *,
    char: str,
    user: str,
    lore_before: tuple[LoreEntry, ...] = (),
    lore_after: tuple[LoreEntry, ...] = (),
    with_system_prompt: bool = True,
) -> CardText:
    """The card's prompt text for the sanitised names ``char`` and ``user`` (without the
    system prompt for a scene's member, see :mod:`bot.prompt.scene`)."""
    personality = _expand(character.personality, char=char, user=user)
    scenario = _expand(character.scenario, char=char, user=user)
    sections = (
        _replacing(character.system_prompt, config.system_prompt, char=char, user=user)
        if with_system_prompt else "",
        lore_block(lore_before, char=char, user=user),
        _expand(character.description, char=char, user=user),
        f"{char}'s personality: {personality}" if personality else "",
        f"Scenario: {scenario}" if scenario else "",
        lore_block(lore_after, char=char, user=user),
    )
    examples: tuple[str, ...] = ()
    if config.include_examples:
        blocks = (render_example(b, char=char, user=user) for b in split_examples(character.mes_example))
        examples = tuple(b for b in blocks if b.count("\n"))
    post_history = _replacing(
        character.post_history_instructions, config.post_history_instructions, char=char, user=user
    )
    return CardText(
        sections=tuple(s for s in sections if s),
        examples=examples,
        post_history=post_history,
    )


def head_content(card: CardText, examples_kept: int) -> str:
    """The head's text with the first ``examples_kept`` example chats, ending in the separator."""
    parts = [*card.sections, *card.examples[:examples_kept], CHAT_START]
    return "\n\n".join(parts)
