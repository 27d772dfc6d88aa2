"""Which prompt format a backend's prompts use: ``prompt.format``, or for ``auto`` the
model's own chat template (``transcript`` when it has none).

The backend supplies the template through the optional
:class:`~bot.backends.base.ChatTemplateSource` ability; it is read once per model and
turned into a format by :func:`bot.prompt.chat_template.template_format` in a worker
thread. A template that reads the clock (Llama 3.1's ``Today Date``) is pinned per
conversation to the day the conversation's prompt was first built, so the prefix a
backend has cached stays the same across midnight (a restart starts a new day).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from bot.backends.base import Backend, ChatTemplate, ChatTemplateSource
from bot.config import PromptConfig
from bot.prompt.chat_template import ChatTemplateError, is_llama_cpp_default, template_format
from bot.prompt.formats import AUTO, PromptTemplate, get_template

__all__ = ["FormatChoice", "PromptFormats", "choose_format"]

log = logging.getLogger(__name__)

_PINNED_CONVERSATIONS = 10_000  # days remembered; the oldest conversations are forgotten first


@dataclass(frozen=True)
class FormatChoice:
    """The format a backend's prompts use, and how it was chosen.

    ``template`` is the model's chat template when ``auto`` found a usable one;
    ``fallback`` says why ``auto`` fell back to ``transcript``.
    """

    configured: str
    template: ChatTemplate | None = None
    fallback: str | None = None

    @property
    def name(self) -> str:
        """The format in use: a named one, or ``auto`` for the model's own template."""
        if self.configured != AUTO:
            return self.configured
        return AUTO if self.template is not None else "transcript"

    def describe(self, fmt: PromptTemplate | None = None) -> str:
        """One line for ``check`` and ``/stats``."""
        if self.configured != AUTO:
            return self.configured
        if self.template is None:
            return f"transcript (auto: {self.fallback})"
        ends = f", turns end with {fmt.stops[0]}" if fmt is not None and fmt.stops else ""
        thinks = ", reasoning model" if fmt is not None and fmt.reasoning else ""
        return f"auto (the model's own chat template{ends}{thinks})"


async def _read_template(backend: Backend) -> tuple[ChatTemplate | None, str | None]:
    if not isinstance(backend, ChatTemplateSource):
        return None, f"{backend.name} does not tell the model's chat template"
    template = await backend.chat_template()  # a BackendError is not remembered: asked again next time
    if template is None or not template.source.strip():
        return None, "the model has no chat template"
    if is_llama_cpp_default(template.source):
        return None, "the model has no chat template (the server shows its stand-in ChatML)"
    return template, None


def _derive(template: ChatTemplate, day: date) -> PromptTemplate:
    return template_format(
        template.source,
        bos_token=template.bos_token,
        eos_token=template.eos_token,
        now=datetime(day.year, day.month, day.day, 12, 0),
    )


async def choose_format(
    backend: Backend, config: PromptConfig, *, today: date | None = None
) -> tuple[FormatChoice, PromptTemplate]:
    """The format ``backend``'s prompts use under ``config`` (see the module docstring)."""
    if config.format != AUTO:
        return FormatChoice(config.format), get_template(config.format)
    template, reason = await _read_template(backend)
    if template is None:
        return FormatChoice(AUTO, fallback=reason), get_template("transcript")
    try:
        fmt = await asyncio.to_thread(_derive, template, today or date.today())
    except ChatTemplateError as exc:
        log.warning("%s: the model's chat template cannot be used (%s); using transcript", backend.name, exc)
        reason = f"the model's chat template cannot be used: {exc}"
        return FormatChoice(AUTO, fallback=reason), get_template("transcript")
    return FormatChoice(AUTO, template=template), fmt


class PromptFormats:
    """The prompt format of one backend's conversations, resolved once per model."""

    def __init__(
        self, backend: Backend, config: PromptConfig, *, clock: Callable[[], date] = date.today
    ) -> None:
        self.backend = backend
        self.config = config
        self._clock = clock
        self._choice: FormatChoice | None = None
        self._formats: dict[date, PromptTemplate] = {}
        self._days: OrderedDict[str, date] = OrderedDict()
        self._lock = asyncio.Lock()

    def forget(self) -> None:
        """Read the template again (after a model switch or a config reload)."""
        self._choice = None
        self._formats.clear()
        self._days.clear()

    async def choice(self) -> FormatChoice:
        """How the format was chosen (asks the backend the first time)."""
        await self.template(None)
        assert self._choice is not None
        return self._choice

    async def describe(self, conversation: str | None = None) -> str:
        """The format in use, in one line (for ``/stats``)."""
        fmt = await self.template(conversation)
        return (await self.choice()).describe(fmt)

    async def template(self, conversation: str | None, config: PromptConfig | None = None) -> PromptTemplate:
        """The format for ``conversation``'s prompts (dated templates pinned to its first day).

        ``config`` is the current prompt config: a reloaded one with another format is
        taken from here on."""
        if config is not None and config.format != self.config.format:
            self.config = config
            self.forget()
        day = self._day(conversation)
        async with self._lock:
            if self._choice is None:
                self._choice, fmt = await choose_format(self.backend, self.config, today=day)
                self._formats = {day: fmt}
            cached = self._formats.get(day)
            if cached is not None:
                return cached
            if self._choice.template is None or "strftime_now" not in self._choice.template.source:
                return next(iter(self._formats.values()))
            fmt = await asyncio.to_thread(_derive, self._choice.template, day)
            if len(self._formats) >= 8:
                self._formats.pop(next(iter(self._formats)))
            self._formats[day] = fmt
            return fmt

    def _day(self, conversation: str | None) -> date:
        if conversation is None:
            return self._clock()
        day = self._days.get(conversation)
        if day is None:
            day = self._days[conversation] = self._clock()
            if len(self._days) > _PINNED_CONVERSATIONS:
                self._days.popitem(last=False)
        else:
            self._days.move_to_end(conversation)
        return day
