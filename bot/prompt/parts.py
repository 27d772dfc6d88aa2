"""A built prompt shown with its parts marked (``/context``, ``python -m bot prompt``)."""

from __future__ import annotations

from bot.prompt.types import Prompt

__all__ = ["marked"]


def marked(prompt: Prompt) -> str:
    """The prompt's text, each part (card, summary, history, recalled, note) under a
    ``===== name =====`` line; the text itself is unchanged between the marks."""
    if not prompt.parts:
        return f"===== prompt =====\n{prompt.text}"
    blocks = []
    for name, start, end in prompt.parts:
        body = prompt.text[start:end]
        blocks.append(f"===== {name} =====\n{body}{'' if body.endswith(chr(10)) else chr(10)}")
    return "".join(blocks)
