"""Lorebook selection: which ``character_book`` entries go into this prompt.

Rules:

* disabled entries never; ``constant`` entries always (budget permitting);
* a keyed entry when one of its ``keys`` occurs in what people wrote among the last
  ``scan_depth`` turns (see "Whose messages are scanned" below); ``selective`` entries
  with ``secondary_keys`` also need one of those;
* plain keys match whole words (SillyTavern's "match whole words"): ``cat`` matches
  "the cat," but not "catan" or "categories". Only the key's ends are checked, so a
  key with spaces or punctuation matches as written ("stay the night", "Dr."), and
  an end in a script written without spaces (Chinese, Japanese, Korean) needs no
  boundary. An entry's ``extensions.match_whole_words`` (SillyTavern's field; ``null``
  means "as the book says"), else the book's ``extensions.match_whole_words``, else the
  call's ``match_whole_words`` (true) decides; ``false`` makes plain keys substrings;
* keys compare case-insensitively unless the entry or the call says
  ``case_sensitive``; ``use_regex`` keys are regular expressions, also written
  ``/pattern/flags``, used as written (never made whole-word); an invalid or
  dangerous-looking regex is ignored, never raised;
* with ``recursive_scanning``, the content of selected entries is scanned too
  (a few rounds at most);
* within the token budget, constant entries are taken first, then by highest
  ``priority``, then lowest ``insertion_order``; an entry that does not fit is
  skipped and smaller ones may still fit;
* the result is ordered by ``insertion_order`` and split by ``position``.

Where the builder puts lore (a choice made for the KV cache): constant entries go in
the stable head, before or after the card's description by ``position``, because
they never change between replies. Keyed entries come and go with the conversation,
so they go after the history, in the volatile tail with the post-history
instructions, which is re-read on every reply anyway; placing them before the
history would make the backend re-read the whole history each time they change.
Constant entries are chosen before keyed ones so the head does not depend on the
turns.

Whose messages are scanned: only people's (and out-of-character notes), never the
character's own replies. Once an entry is in the prompt, the model tends to mention
what it says ("I have two cats."), so a reply that could trigger the entry would keep
it in every following prompt by itself; scanning the replies at a smaller depth only
shortens each loop, it does not end it, because the next reply is written with the
note in view again. Scanning people's words breaks the loop for good: an entry stays
while someone keeps talking about its subject and leaves ``scan_depth`` turns after
they stop. What is lost, a topic the character raises that nobody picks up, is
cheap: a person's answer that names it brings the entry in.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from bot.cards.model import LoreEntry, Lorebook
from bot.prompt.types import Turn

__all__ = [
    "DEFAULT_SCAN_DEPTH",
    "DEFAULT_LORE_BUDGET",
    "LoreSelection",
    "entry_text",
    "entry_label",
    "scanned_text",
    "select_lore",
]

log = logging.getLogger(__name__)

DEFAULT_SCAN_DEPTH = 4
DEFAULT_LORE_BUDGET = 512
_RECURSION_ROUNDS = 3
_REGEX_LITERAL = re.compile(r"^/(.+)/([imsx]*)$", re.DOTALL)
# a quantified group that itself contains a quantifier: (a+)+, (a|a*)*, (.*){2,}
_NESTED_QUANTIFIER = re.compile(r"\((?:[^()\\]|\\.)*[+*}](?:[^()\\]|\\.)*\)[+*{]")
_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}


@dataclass(frozen=True)
class LoreSelection:
    """The chosen entries by position, each tuple ordered by ``insertion_order``."""

    before: tuple[LoreEntry, ...] = ()
    after: tuple[LoreEntry, ...] = ()
    tokens: int = 0

    @property
    def entries(self) -> tuple[LoreEntry, ...]:
        """All chosen entries, ``before`` ones first."""
        return self.before + self.after


def entry_text(entry: LoreEntry) -> str:
    """The entry's prompt text: its content without leading ``@@decorator`` lines."""
    lines = entry.content.replace("\r\n", "\n").split("\n")
    while lines and lines[0].lstrip().startswith("@@"):
        lines.pop(0)
    return "\n".join(lines).strip()


def entry_label(entry: LoreEntry) -> str:
    """A short name for logs and ``Prompt.lore_entries``."""
    if entry.name:
        return entry.name
    if entry.comment:
        return entry.comment
    if entry.id is not None:
        return f"entry {entry.id}"
    keys = [key for key in entry.keys if key]
    return keys[0] if keys else entry_text(entry)[:32]


@lru_cache(maxsize=512)
def _compile(key: str, case_sensitive: bool) -> re.Pattern[str] | None:
    flags = 0 if case_sensitive else re.IGNORECASE
    literal = _REGEX_LITERAL.match(key)
    if literal:
        key = literal.group(1)
        for letter in literal.group(2):
            flags |= _FLAGS[letter]
    if _NESTED_QUANTIFIER.search(key):
        log.warning("Lorebook regex %r ignored: nested quantifiers can take forever", key)
        return None
    try:
        return re.compile(key, flags)
    except re.error as exc:
        log.warning("Lorebook regex %r ignored: %s", key, exc)
        return None


def _needs_boundary(char: str) -> bool:
    """Whether a key ending in ``char`` must not run on into a longer word.

    Letters and digits of scripts written with spaces between words do; punctuation,
    spaces and wide (CJK) characters do not."""
    return (char.isalnum() or char == "_") and unicodedata.east_asian_width(char) not in ("W", "F")


@lru_cache(maxsize=1024)
def _word_pattern(key: str) -> re.Pattern[str]:
    """``key`` as a whole word (already case-folded by the caller where needed)."""
    before = r"(?<!\w)" if _needs_boundary(key[0]) else ""
    after = r"(?!\w)" if _needs_boundary(key[-1]) else ""
    return re.compile(before + re.escape(key) + after)


def _matches(keys: Iterable[str], text: str, *, regex: bool, case_sensitive: bool, whole_words: bool) -> bool:
    folded = text if case_sensitive else text.casefold()
    for key in keys:
        if not key:
            continue
        if regex:
            pattern = _compile(key, case_sensitive)
            if pattern is not None and pattern.search(text):
                return True
            continue
        plain = key if case_sensitive else key.casefold()
        if plain not in folded:
            continue
        if not whole_words or _word_pattern(plain).search(folded):
            return True
    return False


@dataclass(frozen=True)
class _Defaults:
    case_sensitive: bool
    whole_words: bool


def _triggered(entry: LoreEntry, text: str, defaults: _Defaults) -> bool:
    sensitive = defaults.case_sensitive if entry.case_sensitive is None else entry.case_sensitive
    whole = defaults.whole_words if entry.match_whole_words is None else entry.match_whole_words
    options = {"regex": entry.use_regex, "case_sensitive": sensitive, "whole_words": whole}
    if not _matches(entry.keys, text, **options):
        return False
    if entry.selective and any(entry.secondary_keys):
        return _matches(entry.secondary_keys, text, **options)
    return True


def _activated(book: Lorebook, scanned: str, defaults: _Defaults) -> list[int]:
    active = {i for i, e in enumerate(book.entries) if e.enabled and e.constant}
    text = scanned
    rounds = _RECURSION_ROUNDS if book.recursive_scanning else 1
    for _ in range(rounds):
        found = {
            i
            for i, e in enumerate(book.entries)
            if e.enabled and i not in active and _triggered(e, text, defaults)
        }
        if not found:
            break
        active |= found
        text = "\n".join([scanned, *(entry_text(book.entries[i]) for i in sorted(found))])
    return sorted(active)


def scanned_text(recent: Sequence[Turn], depth: int) -> str:
    """What keys are looked for in: people's messages among the last ``depth`` turns.

    The character's own replies are left out, so an entry cannot keep itself in the
    prompt (see the module's docstring)."""
    if depth <= 0:
        return ""
    return "\n".join(turn.text for turn in recent[-depth:] if turn.role != "character")


def select_lore(
    book: Lorebook | None,
    recent: Sequence[Turn],
    *,
    count_tokens: Callable[[str], int],
    scan_depth: int | None = None,
    token_budget: int | None = None,
    case_sensitive: bool = False,
    match_whole_words: bool = True,
) -> LoreSelection:
    """Choose the lorebook entries for a prompt.

    ``recent`` is the conversation, oldest first; people's messages among the last
    ``scan_depth`` turns (the argument, else the book's, else 4) are scanned.
    ``token_budget`` (else the book's, else 512) caps the entries' total tokens.
    ``case_sensitive`` and ``match_whole_words`` apply where the entry and the book
    say nothing.
    """
    if book is None or not book.entries:
        return LoreSelection()
    depth = scan_depth if scan_depth is not None else (book.scan_depth or DEFAULT_SCAN_DEPTH)
    budget = token_budget if token_budget is not None else (book.token_budget or DEFAULT_LORE_BUDGET)
    whole = match_whole_words if book.match_whole_words is None else book.match_whole_words
    defaults = _Defaults(case_sensitive=case_sensitive, whole_words=whole)
    scanned = scanned_text(recent, depth)
    candidates = [i for i in _activated(book, scanned, defaults) if entry_text(book.entries[i])]
    def rank(i: int) -> tuple[bool, int, int, int]:
        entry = book.entries[i]
        return (not entry.constant, -entry.priority, entry.insertion_order, i)

    ranked = sorted(candidates, key=rank)
    chosen: list[int] = []
    used = 0
    for i in ranked:
        cost = count_tokens(entry_text(book.entries[i]))
        if used + cost <= budget:
            chosen.append(i)
            used += cost
    chosen.sort(key=lambda i: (book.entries[i].insertion_order, i))
    entries = [book.entries[i] for i in chosen]
    return LoreSelection(
        before=tuple(e for e in entries if e.position == "before_char"),
        after=tuple(e for e in entries if e.position == "after_char"),
        tokens=used,
    )
