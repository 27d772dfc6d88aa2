"""A scripted backend whose model has a chat template (for ``prompt.format: auto``).

It declares the optional :class:`bot.backends.base.ChatTemplateSource` ability the
way a real backend does, and counts how often the template was asked for.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bot.backends.base import ChatTemplate
from bot.testing import Script, ScriptedBackend

__all__ = ["TemplatedBackend", "real_template"]

_DATA = Path(__file__).resolve().parent.parent / "data" / "chat_templates"


def real_template(name: str) -> ChatTemplate:
    """One of the real templates in tests/data/chat_templates, with its BOS/EOS texts."""
    entry: dict[str, Any] = json.loads((_DATA / "templates.json").read_text(encoding="utf-8"))[name]
    return ChatTemplate((_DATA / name).read_text(encoding="utf-8"), entry["bos_token"], entry["eos_token"])


class TemplatedBackend(ScriptedBackend):
    """:class:`ScriptedBackend` with a model whose chat template is ``template`` (None: it has none)."""

    def __init__(self, template: ChatTemplate | None, replies: Iterable[Script] = (), **kwargs: Any) -> None:
        super().__init__(replies, **kwargs)
        self.template = template
        self.template_reads = 0

    async def chat_template(self) -> ChatTemplate | None:
        """The model's template."""
        self.template_reads += 1
        return self.template
