"""Who speaks next in a scene: pure decisions, seeded, so tests and replays repeat.

``natural`` (SillyTavern's natural order): the members a message names answer first;
otherwise a draw weighted by each card's ``talkativeness`` (its V2/V3 extension,
0.5 when absent), never the member who just spoke while another can. ``list``:
members in turn, after the one who spoke last.

After a character speaks, :func:`next_in_chain` says whether another member
replies: always a member the reply names; otherwise in ``list`` order the next
member, in ``natural`` order a weighted draw that speaks only if a second draw
falls under its talkativeness. The caller bounds the chain (``scene.max_chain``).

Ambient replies (:func:`ambient_speaker`): a message addressed to nobody may get a
reply, with a chance of ``ambient × talkativeness`` (of a member drawn as in
``natural``), damped by the time since a character last spoke (full for
:data:`AMBIENT_FRESH` seconds, then halving every :data:`AMBIENT_HALF_LIFE`; never
when no character spoke yet). The caller keeps the per-channel cooldown.

Every draw is seeded from the message that started it (and the step in the
chain), never from a clock: the same message gives the same speakers.

``model``: the language model reads the shared transcript and continues it with
``[`` and a name (:meth:`bot.chat.ChatService.pick_speaker`, greedy, so it repeats
too). Where the backend can (:class:`bot.backends.base.ChoiceBackend`: the embedded
model and llama.cpp's server, through a grammar) the name is constrained to the
cast's. Elsewhere the model writes freely and :func:`member_named` turns what it
wrote into a member; a name that is no member's (a person's, say) means nobody of
the cast: the first answer then falls back to ``natural``, and a chain ends.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from bot.cards.model import Character

__all__ = [
    "Member", "DEFAULT_TALKATIVENESS", "AMBIENT_FRESH", "AMBIENT_HALF_LIFE", "member_of", "talkativeness",
    "first_speaker", "next_in_chain", "member_named", "ambient_speaker",
]

DEFAULT_TALKATIVENESS = 0.5
Mode = Literal["natural", "list", "model"]
AMBIENT_FRESH = 60.0  # seconds after a character spoke during which ambient replies are not damped
AMBIENT_HALF_LIFE = 300.0  # then their chance halves every this many seconds
_SHORTEST_PREFIX = 3  # characters of a cut-off name that may still identify a member


@dataclass(frozen=True)
class Member:
    """A cast member as the director sees it: its card name and how talkative it is."""

    name: str
    talkativeness: float = DEFAULT_TALKATIVENESS


def talkativeness(character: Character) -> float:
    """The card's ``talkativeness`` extension (SillyTavern writes it as a string), 0..1."""
    raw = character.extensions.get("talkativeness")
    try:
        value = float(raw) if raw is not None else DEFAULT_TALKATIVENESS
    except (TypeError, ValueError):
        return DEFAULT_TALKATIVENESS
    return min(1.0, max(0.0, value)) if value == value else DEFAULT_TALKATIVENESS  # NaN: the default


def member_of(character: Character) -> Member:
    """The director's view of a character."""
    return Member(character.name, talkativeness(character))


def _rng(seed: int | str, step: int) -> random.Random:
    return random.Random(f"{seed}:{step}")  # str seeds hash with SHA-512: the same in every run


def _weighted(members: Sequence[Member], rng: random.Random) -> Member:
    weights = [m.talkativeness for m in members]
    if sum(weights) <= 0:
        return members[rng.randrange(len(members))]
    return rng.choices(list(members), weights=weights)[0]


def _after(members: Sequence[Member], last: str | None) -> Member:
    names = [m.name for m in members]
    if last not in names:
        return members[0]
    return members[(names.index(last) + 1) % len(members)]


def first_speaker(
    members: Sequence[Member], *, mode: Mode, named: Sequence[str] = (), last: str | None = None,
    seed: int | str = 0,
) -> str:
    """Who answers a message: the first member it names, else the director's choice
    (``last``: who spoke last; ``seed``: the message's id)."""
    if not members:
        raise ValueError("a scene needs at least one member")
    names = {m.name for m in members}
    for name in named:
        if name in names:
            return name
    if mode == "list":
        return _after(members, last).name
    others = [m for m in members if m.name != last] or list(members)  # natural (and model's fallback)
    return _weighted(others, _rng(seed, 0)).name


def next_in_chain(
    members: Sequence[Member], *, mode: Mode, speaker: str, named: Sequence[str] = (), seed: int | str = 0,
    step: int = 1,
) -> str | None:
    """Who (if anyone) replies to ``speaker``'s turn: ``named`` are the members that turn
    names, ``step`` its place in the chain (1 for the first character reply after a person)."""
    others = [m for m in members if m.name != speaker]
    if not others:
        return None
    for name in named:
        if name != speaker and any(m.name == name for m in others):
            return name
    if mode == "list":
        return _after(members, speaker).name
    rng = _rng(seed, step)
    chosen = _weighted(others, rng)
    return chosen.name if rng.random() < chosen.talkativeness else None


def member_named(written: str, cast: Sequence[tuple[str, str]]) -> str | None:
    """The member (card name) whose shown name the model wrote after ``[``: the text up to
    ``]``, compared case-insensitively with each ``(card name, shown name)``; a name cut off
    before its ``]`` counts when it starts exactly one member's name. None: nobody of the cast."""
    said = written.split("\n", 1)[0]
    closed = "]" in said
    said = said.split("]", 1)[0].strip().casefold()
    if not said:
        return None
    for name, shown in cast:
        if said in (shown.casefold(), name.casefold()):
            return name
    if closed or len(said) < _SHORTEST_PREFIX:
        return None
    starting = [name for name, shown in cast if shown.casefold().startswith(said)]
    return starting[0] if len(starting) == 1 else None


def ambient_speaker(
    members: Sequence[Member], *, ambient: float, since_spoke: float | None, last: str | None = None,
    seed: int | str = 0,
) -> str | None:
    """Who (if anyone) joins in on a message addressed to nobody: ``ambient`` is the
    config's 0..1 chance, ``since_spoke`` the seconds since a character last spoke here
    (None: not since the start)."""
    if not members or ambient <= 0 or since_spoke is None:
        return None
    damping = 0.5 ** (max(0.0, since_spoke - AMBIENT_FRESH) / AMBIENT_HALF_LIFE)
    rng = _rng(seed, -1)
    others = [m for m in members if m.name != last] or list(members)
    chosen = _weighted(others, rng)
    return chosen.name if rng.random() < ambient * chosen.talkativeness * damping else None
