"""Which turns fit: the history window, chosen from per-turn token costs.

Without an anchor the window is the longest run of newest turns that fits (and, with
``max_turns``, at most that many). With an anchor (the oldest turn kept last time),
turns older than it are left out; when the window from the anchor no longer fits (or
holds more than ``max_turns`` turns), it slides in one move: its oldest turns are
dropped until ``drop_fraction`` of the token budget is free again (and, with
``max_turns``, ``drop_fraction`` of that many turns too).

The room left is a share of the budget in tokens, not of the window's length in
messages, so a chat of short messages and one of long messages slide after the same
number of new tokens, and each slide costs a backend that cannot shift its cache the
same re-reading. Leaving room at once keeps the window's start (and the prompt bytes
before the newest turns) the same for many replies, so the backend's KV cache is
reused. ``max_turns`` (the config's ``history_messages``) only bounds the window so
the anchor stays within what the caller fetches. The newest turn is always kept; the
caller makes sure it fits on its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable

__all__ = ["SuffixCosts", "window_start"]


class SuffixCosts:
    """Lazily summed costs of turns ``[start:]``, computed newest first, each cost once."""

    def __init__(self, count: int, cost: Callable[[int], int]) -> None:
        self._count = count
        self._cost = cost
        self._sums = [0]  # _sums[k] = cost of the newest k turns

    def total(self, start: int, *, limit: int) -> int:
        """The cost of turns ``[start:]``, or a value above ``limit`` once it exceeds it."""
        needed = self._count - start
        while len(self._sums) <= needed and self._sums[-1] <= limit:
            index = self._count - len(self._sums)
            self._sums.append(self._sums[-1] + self._cost(index))
        return self._sums[min(needed, len(self._sums) - 1)]


def window_start(
    count: int,
    cost: Callable[[int], int],
    *,
    available: int,
    anchor: int | None = None,
    drop_fraction: float = 0.33,
    max_turns: int | None = None,
) -> int:
    """Index of the oldest turn to keep out of ``count`` turns (oldest first).

    ``cost(i)`` is the token cost of turn ``i``; the kept turns cost at most
    ``available`` unless the newest alone is larger (it is kept regardless).
    ``anchor`` is the index of the previous window's first turn, if any.
    """
    if count == 0:
        return 0
    sums = SuffixCosts(count, cost)
    newest = count - 1
    most = max_turns if max_turns is not None else count
    if anchor is None or not 0 <= anchor < count:
        start = newest
        while start > 0 and count - start < most and sums.total(start - 1, limit=available) <= available:
            start -= 1
        return start
    if count - anchor <= most and sums.total(anchor, limit=available) <= available:
        return anchor
    token_goal = available - math.ceil(drop_fraction * available)
    turn_goal = most - math.ceil(drop_fraction * most) if max_turns is not None else count
    start = newest
    while (
        start > anchor
        and count - start < turn_goal
        and sums.total(start - 1, limit=token_goal) <= token_goal
    ):
        start -= 1
    return start
