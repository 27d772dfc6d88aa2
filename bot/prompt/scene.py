"""The shared head of a scene's prompt: several characters, one prompt for all of them.

A scene's prompt must not depend on who speaks next, so the backend's KV cache
serves every speaker: only the open ``[Speaker]:`` at the very end differs. The
head here is, separated by blank lines: the group system prompt (``{{char}}`` is
the cast's names, ``prompt.group_system_prompt``), then each member's card in the
cast's order (a ``Character: Name`` line, its constant lore placed before it, its
description, personality and scenario, its constant lore placed after it; each
card's own ``{{char}}`` is its own name), then every member's example chats. Cards'
own system prompts and post-history instructions name one speaker, so a scene
uses the config's instead. Lorebook entries come from every member's book (one
budget for all); keyed ones go in the tail like a single character's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bot.cards.model import Character, LoreEntry, Lorebook
from bot.config import PromptConfig
from bot.prompt.head import CardText, card_text, expand_block
from bot.prompt.lorebook import DEFAULT_LORE_BUDGET, LoreSelection, select_lore
from bot.prompt.macros import expand_macros
from bot.prompt.transcript import SYSTEM_SPEAKER, same_name, sanitize_name
from bot.prompt.types import Turn

__all__ = ["SceneText", "scene_text", "scene_label", "joined_names"]


class SceneText:
    """The scene's card text (as one :class:`CardText`) and the lore chosen for it."""

    def __init__(self, card: CardText, lore: LoreSelection) -> None:
        self.card = card
        self.lore = lore


def joined_names(names: Sequence[str]) -> str:
    """``A``, ``A and B``, ``A, B and C``."""
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"


def _merged_book(cast: Sequence[Character], names: Sequence[str], user: str) -> tuple[Lorebook | None, dict[int, int]]:
    """Every member's lorebook in one, each entry's macros expanded for its own member;
    and which member (index) each merged entry came from (by object id)."""
    entries: list[LoreEntry] = []
    owner: dict[int, int] = {}
    budgets: list[int] = []
    depths: list[int] = []
    recursive = False
    for index, (member, name) in enumerate(zip(cast, names)):
        book = member.lorebook
        if book is None:
            continue
        budgets.append(book.token_budget or DEFAULT_LORE_BUDGET)
        if book.scan_depth is not None:
            depths.append(book.scan_depth)
        recursive = recursive or book.recursive_scanning
        for entry in book.entries:
            own = entry.model_copy(update={"content": expand_macros(entry.content, char=name, user=user)})
            entries.append(own)
            owner[id(own)] = index
    if not entries:
        return None, owner
    merged = Lorebook(
        entries=entries, token_budget=max(budgets), scan_depth=max(depths) if depths else None,
        recursive_scanning=recursive,
    )
    return merged, owner


def scene_text(
    cast: Sequence[Character], recent: Sequence[Turn], config: PromptConfig, *, user: str,
    count_tokens: Callable[[str], int], budget: int,
) -> SceneText:
    """The scene's head text and lore, for the sanitised ``user`` name, within ``budget``."""
    names = [sanitize_name(member.display_name) for member in cast]
    book, owner = _merged_book(cast, names, user)
    lore_budget = max(0, min(book.token_budget or DEFAULT_LORE_BUDGET, budget // 4)) if book else 0
    lore = select_lore(book, recent, count_tokens=count_tokens, token_budget=lore_budget)
    sections = [expand_block(config.group_system_prompt, char=joined_names(names), user=user)]
    examples: list[str] = []
    for index, (member, name) in enumerate(zip(cast, names)):
        card = card_text(
            member, config, char=name, user=user, with_system_prompt=False,
            lore_before=tuple(e for e in lore.before if e.constant and owner.get(id(e)) == index),
            lore_after=tuple(e for e in lore.after if e.constant and owner.get(id(e)) == index),
        )
        sections.append("\n".join((f"Character: {name}", *card.sections)))
        examples.extend(card.examples)
    post_history = expand_block(config.post_history_instructions, char=joined_names(names), user=user)
    text = CardText(sections=tuple(s for s in sections if s), examples=tuple(examples), post_history=post_history)
    return SceneText(text, lore)


def scene_label(speaker: str, role: str, members: Sequence[str]) -> str:
    """The name shown in brackets for a turn of a scene: a character's turn carries its own
    name (whoever of the cast, or a former member); a person whose name is a member's or
    ``System`` is ``Name (user)``."""
    name = sanitize_name(speaker)
    if role == "character":
        return name
    if role == "system":
        return SYSTEM_SPEAKER
    if same_name(name, SYSTEM_SPEAKER) or any(same_name(name, sanitize_name(m)) for m in members):
        return f"{name} (user)"
    return name
