"""A llama.cpp grammar (GBNF) that allows exactly one of a few strings, for a constrained
choice (:class:`bot.backends.base.ChoiceBackend`). Pure text, no I/O."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["choice_grammar"]

_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _literal(text: str) -> str:
    escaped = "".join(_ESCAPES.get(ch, ch if ch.isprintable() else f"\\u{ord(ch):04x}") for ch in text)
    return f'"{escaped}"'


def choice_grammar(choices: Sequence[str]) -> str:
    """``root ::= "Aria]" | "Captain Brass]"``: a GBNF grammar whose only sentences are ``choices``."""
    unique = list(dict.fromkeys(c for c in choices if c))
    if not unique:
        raise ValueError("a choice needs at least one non-empty string")
    return "root ::= " + " | ".join(_literal(c) for c in unique)

