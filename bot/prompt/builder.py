"""Build the prompt for a character's next reply, fitted to a token budget.

Layout (see :mod:`bot.prompt.head` for the head's parts)::

    head (system prompt, card, constant lore, example chats, "[Start a new chat]")
    the conversation's running summary, if any (memory; changes only when the window slides)
    one message per history turn, oldest first: "[Name]: text"
      (recalled older lines, if any, go just before the newest turn)
    a note: keyed lore, post-history instructions and the channel's note (volatile, so
        last; in the transcript format "(Note: …)", never a "[Name]:"-like line)
    the open reply: "[Character]:" (+ " " + prefill)

``Prompt.prefix`` is the wrapped head. It depends only on the character, the config,
the user name, the budget and the counting function, never on the turns (except
when example chats had to be dropped to make room), and each turn's rendering never
depends on its neighbours, so adding a turn only appends bytes before the tail. What people wrote is shown as
written: history text is sanitised (see :mod:`bot.prompt.transcript`) but never
macro-expanded.

Token accounting counts pieces and sums them: the head once, each turn's message
once, the tail once. ``count_tokens`` is called a bounded number of times: once per
turn looked at, a few times for the head, about a dozen times to cut an oversized
newest turn.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.backends.base import ChatMessage
from bot.cards.model import Character, LoreEntry, Lorebook
from bot.config import PromptConfig
from bot.errors import PromptError
from bot.prompt.formats import AUTO, MessageRole, PromptTemplate, get_template
from bot.prompt.head import CardText, card_text, head_content, lore_block
from bot.prompt.lorebook import DEFAULT_LORE_BUDGET, LoreSelection, entry_label, select_lore
from bot.prompt.macros import expand_macros
from bot.prompt.reasoning import strip_reasoning
from bot.prompt.scene import scene_label, scene_text
from bot.prompt.transcript import (
    CUT_MARK,
    MAX_TEXT_CHARS,
    render_line,
    sanitize_name,
    sanitize_text,
    speaker_label,
)
from bot.prompt.types import Prompt, Turn
from bot.prompt.window import window_start

__all__ = [
    "GENERIC_STOP", "MAX_NOTE_CHARS", "MAX_RECALLED_CHARS", "RECALL_HEADING", "SUMMARY_HEADING",
    "build_prompt",
]

log = logging.getLogger(__name__)

#: stops any new "[Name]:" line, whoever it claims to be
GENERIC_STOP = "\n["
#: the longest channel note (author's note) kept; longer ones are cut
MAX_NOTE_CHARS = 1000
#: the longest recalled message kept (longer ones are cut)
MAX_RECALLED_CHARS = 300
#: what introduces recalled lines and the summary to the model
RECALL_HEADING = "Earlier in this chat:"
SUMMARY_HEADING = "Summary of the conversation so far:"
#: examples must fit alongside this many newest turns, or they are dropped (last first)
_EXAMPLE_GUARD_TURNS = 4


@dataclass
class _Turns:
    """The turns' rendered lines and messages, each rendered and counted at most once."""

    turns: Sequence[Turn]
    labels: list[str]
    template: PromptTemplate
    count_tokens: Callable[[str], int]

    def __post_init__(self) -> None:
        self.lines: list[str | None] = [None] * len(self.turns)
        self._costs: dict[int, int] = {}

    def role(self, index: int) -> MessageRole:
        return "assistant" if self.turns[index].role == "character" else "user"

    def text(self, index: int) -> str:
        """A turn's text; the character's own without any thinking it wrote."""
        turn = self.turns[index]
        return strip_reasoning(turn.text) if turn.role == "character" else turn.text

    def render(self, index: int, text: str) -> str:
        return self.template.defang(render_line(self.labels[index], text))

    def line(self, index: int) -> str:
        line = self.lines[index]
        if line is None:
            line = self.render(index, sanitize_text(self.text(index)))
            self.lines[index] = line
        return line

    def piece(self, index: int) -> str:
        return self.template.wrap(self.role(index), self.line(index))

    def cost(self, index: int) -> int:
        if index not in self._costs:
            self._costs[index] = self.count_tokens(self.piece(index))
        return self._costs[index]

    def replace_line(self, index: int, line: str, cost: int) -> None:
        self.lines[index] = line
        self._costs[index] = cost


def _lore_budget(book: Lorebook | None, budget: int) -> int:
    own = book.token_budget if book is not None and book.token_budget else DEFAULT_LORE_BUDGET
    return max(0, min(own, budget // 4))


def _tail(template: PromptTemplate, notes: str, char: str, prefill: str) -> str:
    return (template.wrap_note(notes) if notes else "") + template.open_reply(char, prefill)


def _examples_kept(
    card: CardText, head_cost: Callable[[int], int], fixed: int, budget: int, config: PromptConfig
) -> int:
    kept = len(card.examples)
    if config.pin_examples:
        return kept
    while kept > 0 and head_cost(kept) + fixed > budget:
        kept -= 1
    return kept


def _cut_newest(turns: _Turns, index: int, available: int, budget: int) -> None:
    """Shorten the newest turn from its start until its message costs ``available`` at most.

    The end of the message is what is being answered, so it is kept; the kept part
    is still capped at ``MAX_TEXT_CHARS``.
    """
    text = sanitize_text(turns.text(index), limit=sys.maxsize)
    role = turns.role(index)

    def line(kept: int) -> str:
        rest = text[len(text) - kept:].lstrip() if kept else ""
        return turns.render(index, f"{CUT_MARK} {rest}" if rest else CUT_MARK)

    def cost(kept: int) -> int:
        return turns.count_tokens(turns.template.wrap(role, line(kept)))

    if cost(0) > available:
        raise PromptError(
            f"the prompt does not fit the {budget}-token budget: the card, the notes and the "
            f"newest message leave {available} tokens for it"
        )
    low, high = 0, min(len(text), MAX_TEXT_CHARS)  # cost(low) fits; find the most characters that still fit
    while low < high:
        middle = (low + high + 1) // 2
        if cost(middle) <= available:
            low = middle
        else:
            high = middle - 1
    turns.replace_line(index, line(low), cost(low))
    log.debug("Newest message cut to its last %d characters to fit the prompt budget", low)


def _stops(
    character: Character, turns: _Turns, start: int, *, char: str, user: str, others: Sequence[str] = ()
) -> tuple[str, ...]:
    """Every person's ``\n[Name]:`` (and in a scene every other member's and former member's),
    the generic ``\n[``, the card's own stops and the format's end tokens."""
    names = [user, *others]
    for index in range(len(turns.turns) - 1, start - 1, -1):
        if turns.turns[index].role != "character" or others:
            names.append(turns.labels[index])
    stops = [f"\n[{name}]:" for name in names if name != char]
    stops.append(GENERIC_STOP)
    stops.extend(expand_macros(s, char=char, user=user) for s in character.stop_strings)
    stops.extend(turns.template.stops)
    return tuple(dict.fromkeys(s for s in stops if s))


def _recall_block(recalled: Sequence[Turn], room: int, template: PromptTemplate,
                  count_tokens: Callable[[str], int]) -> tuple[str, str]:
    """The recalled lines that fit ``room`` tokens, as (note text, wrapped piece); empty if none fit."""
    lines: list[str] = []
    content = piece = ""
    for turn in recalled:
        text = sanitize_text(turn.text, limit=MAX_RECALLED_CHARS)
        line = f"- {sanitize_name(turn.speaker)}: {text}"
        candidate = template.defang("\n".join([RECALL_HEADING, *lines, line]))
        wrapped = template.wrap_note(candidate)
        if count_tokens(wrapped) > room:
            break
        lines.append(line)
        content, piece = candidate, wrapped
    return content, piece


def _messages(head: str, turns: _Turns, start: int, notes: str, summary: str = "",
              recall: str = "") -> tuple[ChatMessage, ...]:
    messages = [ChatMessage("system", head)]
    if summary:
        messages.append(ChatMessage("system", summary))
    for index in range(start, len(turns.turns)):
        if recall and index == len(turns.turns) - 1:
            messages.append(ChatMessage("system", recall))
        role = turns.role(index)
        line = turns.line(index)
        if messages[-1].role == role:
            messages[-1] = ChatMessage(role, f"{messages[-1].content}\n{line}")
        else:
            messages.append(ChatMessage(role, line))
    if notes:
        messages.append(ChatMessage("system", notes))
    return tuple(messages)


def _anchor_index(turns: Sequence[Turn], anchor: str | None) -> int | None:
    if anchor is None:
        return None
    return next((i for i, turn in enumerate(turns) if turn.id == anchor), None)


_Entries = tuple[LoreEntry, ...]


def _split_lore(lore: LoreSelection) -> tuple[_Entries, _Entries, _Entries]:
    """Constant entries before and after the card (for the head), and keyed ones (for the tail)."""
    before = tuple(e for e in lore.before if e.constant)
    after = tuple(e for e in lore.after if e.constant)
    keyed = tuple(e for e in lore.entries if not e.constant)
    return before, after, keyed


def build_prompt(
    character: Character,
    turns: Sequence[Turn],
    *,
    config: PromptConfig,
    count_tokens: Callable[[str], int],
    budget: int,
    user_name: str | None = None,
    prefill: str = "",
    anchor: str | None = None,
    note: str = "",
    template: PromptTemplate | None = None,
    cast: Sequence[Character] = (),
    summary: str = "",
    recalled: Sequence[Turn] = (),
    recall_room: int = 0,
) -> Prompt:
    """The prompt for ``character``'s next reply to ``turns`` (oldest first), within ``budget`` tokens.

    ``cast`` is a scene's members in their stable order (``character`` among them): with
    two or more, the head is the scene's (:mod:`bot.prompt.scene`), the same whoever
    speaks, and only the closing ``[Character]:`` names the speaker. A cast of one is
    the character's own prompt.

    ``note`` is the channel's author's note: it goes with the card's post-history
    instructions after the history, where a change costs only the prompt's tail.

    ``user_name`` (default ``config.user_name``) is what ``{{user}}`` means, in the
    head too: keep it the same across replies of one conversation (e.g. ``None`` in a
    multi-user channel) or the prefix changes. ``anchor`` is the previous prompt's
    ``first_turn_id``. ``template`` is the format to use when ``config.format`` is
    ``auto`` (the model's own, resolved by the caller; without it ``auto`` means
    ``transcript``). Raises :class:`PromptError` if even the head, the notes and a
    shortened newest turn cannot fit.

    Memory: ``summary`` (the conversation's running summary) goes after the head and
    before the history. ``recall_room`` tokens are kept free for ``recalled`` lines
    (older messages found for the newest one), so the window is the same with or
    without them; those that fit go just before the newest turn, so the bytes before
    it are what the backend already read.
    """
    if template is None:
        template = get_template("transcript" if config.format == AUTO else config.format)
    char = sanitize_name(character.display_name)
    members = [sanitize_name(m.display_name) for m in cast] if len(cast) > 1 else []
    if members:  # a scene: one head for every speaker (see bot.prompt.scene)
        user = scene_label(user_name or config.user_name, "user", members)
        scene = scene_text(cast, turns, config, user=user, count_tokens=count_tokens,
                           budget=budget)
        card, lore = scene.card, scene.lore
        keyed = tuple(e for e in lore.entries if not e.constant)
        labels = [scene_label(t.speaker, t.role, members) for t in turns]
    else:
        user = speaker_label(user_name or config.user_name, "user", char)
        lore = select_lore(
            character.lorebook,
            turns,
            count_tokens=count_tokens,
            token_budget=_lore_budget(character.lorebook, budget),
        )
        constant_before, constant_after, keyed = _split_lore(lore)
        card = card_text(
            character, config, char=char, user=user, lore_before=constant_before, lore_after=constant_after
        )
        labels = [speaker_label(t.speaker, t.role, char) for t in turns]
    channel_note = sanitize_text(note, limit=MAX_NOTE_CHARS) if note.strip() else ""
    notes = "\n\n".join(p for p in (lore_block(keyed, char=char, user=user), card.post_history, channel_note) if p)
    notes = template.defang(notes)
    tail = _tail(template, notes, char, prefill)
    tail_cost = count_tokens(tail)
    rendered = _Turns(turns, labels, template, count_tokens)
    count = len(turns)

    head_costs: dict[int, int] = {}

    def head_cost(kept: int) -> int:
        if kept not in head_costs:
            head_costs[kept] = count_tokens(template.wrap("system", template.defang(head_content(card, kept))))
        return head_costs[kept]

    summary_text = template.defang(f"{SUMMARY_HEADING} {sanitize_text(summary)}") if summary.strip() else ""
    summary_piece = template.wrap("system", summary_text) if summary_text else ""
    summary_cost = count_tokens(summary_piece) if summary_piece else 0
    reserved = tail_cost + summary_cost + recall_room
    guard = sum(rendered.cost(i) for i in range(max(0, count - _EXAMPLE_GUARD_TURNS), count))
    examples = _examples_kept(card, head_cost, reserved + guard, budget, config)
    available = budget - head_cost(examples) - reserved
    if count and rendered.cost(count - 1) > available:
        _cut_newest(rendered, count - 1, available, budget)
    elif available < 0:
        raise PromptError(
            f"the prompt does not fit the {budget}-token budget: the card and notes alone "
            f"take {budget - available} tokens"
        )
    start = window_start(
        count,
        rendered.cost,
        available=available,
        anchor=_anchor_index(turns, anchor),
        drop_fraction=config.drop_fraction,
        max_turns=config.history_messages,
    )
    head = template.defang(head_content(card, examples))
    prefix = template.wrap("system", head)
    recall_text, recall_piece = ("", "")
    if count:
        recall_text, recall_piece = _recall_block(recalled, recall_room, template, count_tokens)
    recall_cost = count_tokens(recall_piece) if recall_piece else 0
    history_cost = summary_cost + recall_cost + sum(rendered.cost(i) for i in range(start, count))
    older = prefix + summary_piece + "".join(rendered.piece(i) for i in range(start, count - 1))
    newest = rendered.piece(count - 1) if count else ""
    history = older + recall_piece + newest
    text = history + tail
    parts = tuple((name, begin, end) for name, begin, end in (
        ("card", 0, len(prefix)),
        ("summary", len(prefix), len(prefix) + len(summary_piece)),
        ("history", len(prefix) + len(summary_piece), len(older)),
        ("recalled", len(older), len(older) + len(recall_piece)),
        ("history", len(older) + len(recall_piece), len(history)),
        ("note", len(history), len(text)),
    ) if end > begin)
    log.debug(
        "Prompt: %d/%d turns, %d/%d examples, %d tokens of %d",
        count - start, count, examples, len(card.examples),
        head_cost(examples) + history_cost + tail_cost, budget,
    )
    stops = _stops(character, rendered, start, char=char, user=user, others=members)
    return Prompt(
        text=text,
        stops=stops,
        prefix=prefix,
        token_count=head_cost(examples) + history_cost + tail_cost,
        prefix_tokens=head_cost(examples),
        turns_kept=count - start,
        turns_dropped=start,
        examples_kept=examples,
        examples_dropped=len(card.examples) - examples,
        first_turn_id=turns[start].id if count else None,
        lore_entries=tuple(entry_label(e) for e in lore.entries),
        messages=_messages(head, rendered, start, notes, summary_text, recall_text),
        history_end=len(history),
        special_tokens=template.special_tokens,
        backend_stops=template.backend_stops(stops),
        recalled=recall_text,
        parts=parts,
    )
