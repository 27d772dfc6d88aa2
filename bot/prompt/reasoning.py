"""Separating a reasoning model's thinking from its answer, as the reply streams.

Reasoning models write their thinking before the answer: DeepSeek-R1 distills,
Qwen3 and QwQ in ``<think>…</think>`` (a template may open ``<think>`` in the prompt
itself, so only ``</think>`` shows), gpt-oss in channels
(``<|channel|>analysis<|message|>…<|end|><|start|>assistant<|channel|>final<|message|>…``).
:class:`ReasoningFilter` is fed the raw stream chunk by chunk and returns only the
visible answer; the thinking collects in :attr:`ReasoningFilter.reasoning`. A tail
that could be the start of a marker is held back until the next chunk decides it,
so a marker split across chunks never leaks. Servers that send the thinking
separately (``reasoning_content``) hand it to :meth:`ReasoningFilter.add_reasoning`.

:func:`strip_reasoning` does the same to a whole text (a past reply, before it goes
back into a prompt). Pure: no I/O.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["ReasoningFilter", "strip_reasoning", "prompt_opens_thinking"]

_OPEN = ("<think>", "<thinking>")
_CLOSE = ("</think>", "</thinking>")
_CHANNEL = "<|channel|>"
_MESSAGE = "<|message|>"
_CHANNEL_END = ("<|end|>", "<|return|>", "<|call|>")
_CHANNEL_START = "<|start|>"
_MARKERS = (*_OPEN, *_CLOSE, _CHANNEL, _MESSAGE, *_CHANNEL_END, _CHANNEL_START)
_PREFIXES = frozenset(m[:i] for m in _MARKERS for i in range(1, len(m)))
_LONGEST = max(len(m) for m in _MARKERS)

_State = Literal["visible", "thinking", "header", "between"]


def prompt_opens_thinking(prompt: str) -> bool:
    """Whether ``prompt`` ends by opening a ``<think>`` block for the model (DeepSeek-R1's and
    QwQ's templates do). Only the very end counts: a ``<think>`` someone typed never does."""
    return prompt.rstrip().endswith(_OPEN)


class ReasoningFilter:
    """Split a streamed reply into the visible answer and the thinking (see the module docstring).

    ``thinking=True`` starts inside a thinking block (the prompt opened it).
    """

    def __init__(self, *, thinking: bool = False) -> None:
        self._state: _State = "thinking" if thinking else "visible"
        self._channels = False  # gpt-oss markers seen: <|end|> and <|start|> are markers then
        self._header = ""
        self._pending = ""
        self._thoughts: list[str] = []

    @classmethod
    def for_prompt(cls, prompt: str) -> ReasoningFilter:
        """A filter for the reply to ``prompt`` (inside a thinking block if the prompt opened one)."""
        return cls(thinking=prompt_opens_thinking(prompt))

    @property
    def reasoning(self) -> str:
        """The thinking seen so far, without surrounding whitespace."""
        return "".join(self._thoughts).strip()

    @property
    def thinking(self) -> bool:
        """Whether the model is thinking (not writing its answer) right now."""
        return self._state != "visible"

    def add_reasoning(self, text: str) -> None:
        """Thinking a server sent apart from the answer (``reasoning_content``)."""
        self._thoughts.append(text)

    def feed(self, text: str) -> str:
        """Take the next raw chunk; return the visible text that is safe to show now."""
        window = self._pending + text
        self._pending = ""
        out: list[str] = []
        at = 0
        while at < len(window):
            found = window.find("<", at)
            if found < 0:
                self._take(window[at:], out)
                break
            self._take(window[at:found], out)
            marker = next((m for m in _MARKERS if window.startswith(m, found)), None)
            if marker is not None:
                self._marker(marker, out)
                at = found + len(marker)
                continue
            rest = window[found:]
            if len(rest) < _LONGEST and rest in _PREFIXES:
                self._pending = rest  # may be the start of a marker: the next chunk decides
                break
            self._take("<", out)
            at = found + 1
        return "".join(out)

    def finish(self) -> str:
        """The end of the stream: what was held back, if it turned out to be plain text."""
        pending, self._pending = self._pending, ""
        out: list[str] = []
        self._take(pending, out)
        return "".join(out)

    def _take(self, text: str, out: list[str]) -> None:
        if not text:
            return
        if self._state == "visible":
            out.append(text)
        elif self._state == "thinking":
            self._thoughts.append(text)
        elif self._state == "header":
            self._header += text
        # "between" gpt-oss messages: role headers, dropped

    def _marker(self, marker: str, out: list[str]) -> None:
        if marker in _OPEN:
            self._state = "thinking"
        elif marker in _CLOSE:
            if self._state == "thinking":
                self._thoughts.append("\n")
            self._state = "visible"
        elif marker == _CHANNEL:
            self._channels = True
            self._state, self._header = "header", ""
        elif marker == _MESSAGE and self._state == "header":
            self._state = "visible" if self._header.strip().startswith("final") else "thinking"
        elif self._channels and (marker in _CHANNEL_END or marker == _CHANNEL_START):
            if self._state == "thinking":
                self._thoughts.append("\n")
            self._state = "between"
        else:
            self._take(marker, out)  # not a marker in this context: plain text


def strip_reasoning(text: str) -> str:
    """``text`` without any thinking in it (for a past reply going back into a prompt).

    A ``</think>`` with no opening (the prompt had opened it) ends thinking that
    began at the start of the text.
    """
    if "<" not in text:
        return text  # nothing that could be a marker (most replies)
    cut = False
    if "</think" in text and not any(tag in text for tag in _OPEN):
        closing = max(text.rfind(tag) for tag in _CLOSE)
        if closing >= 0:
            text, cut = text[text.find(">", closing) + 1:], True
    reply = ReasoningFilter()
    visible = reply.feed(text) + reply.finish()
    return visible.strip() if cut or visible != text else text
