"""How relevant a found message must be to be recalled. Pure: no I/O.

A message is recalled only if it holds enough of the asking message's terms: the one term
of a one-term question, else at least two. The store applies this in its search (a
message must hold some pair of the terms), so what it returns already passes.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["needed"]


def needed(terms: Sequence[str]) -> int:
    """The relevance threshold: how many of ``terms`` a found message must hold."""
    return 1 if len(terms) <= 1 else 2
