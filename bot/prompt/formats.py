"""Prompt formats: how the head, the turns and the open reply are wrapped.

``transcript`` (the default) is plain ``[Name]: text`` lines, for base models. The
instruct formats put the card in the system part, other speakers' turns in user
messages and the character's turns in assistant messages; every message's content is
still ``[Name]: text``, and the prompt ends with an open assistant message starting
``[Character]:``.

Each turn is its own message, so appending a turn only appends bytes (a merged
message would move its closing token). No format writes a BOS token: backends add
it when they tokenize. Formats without a system role (Gemma, Mistral) wrap the
system part as a user message.

``auto`` is not in this table: it is the model's own chat template, turned into a
:class:`PromptTemplate` by :mod:`bot.prompt.chat_template` (or ``transcript`` for a
model without one).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from bot.errors import PromptError

__all__ = ["AUTO", "MessageRole", "PromptTemplate", "ReasoningStyle", "TEMPLATES", "get_template"]

MessageRole = Literal["system", "user", "assistant"]
#: how a format's model thinks before it answers: not at all (as far as the format
#: knows), in ``<think>…</think>``, or in gpt-oss's analysis channel
ReasoningStyle = Literal["", "think", "channels"]
#: the ``prompt.format`` that means "the model's own chat template"
AUTO = "auto"


@dataclass(frozen=True)
class PromptTemplate:
    """The wrapping strings of one prompt format.

    Each of ``system``, ``user`` and ``assistant`` is ``(before, after)`` the content.
    ``note`` wraps a note to the model after the history (lorebook, post-history
    instructions) inside the system wrapping. ``stops`` are the format's turn-end
    tokens. ``special_tokens`` are the control tokens the wrapping uses: the only
    strings a backend may parse as special tokens (never any in users' text).

    Formats made from a model's chat template may also set ``note_message`` (how a
    note is wrapped when it differs from the head's system message, e.g. without
    Llama 3.1's dated preamble), ``reply_open`` (how the reply opens when it differs
    from a past assistant message's opening, e.g. DeepSeek-R1's ``<think>``),
    ``reasoning`` (the model may think before it answers: the reply then opens with
    no ``[Name]:`` so it can, and only turn-end stops go to the backend, since
    thinking may contain anything) and ``source`` (where the format came from).
    """

    name: str
    system: tuple[str, str]
    user: tuple[str, str]
    assistant: tuple[str, str]
    stops: tuple[str, ...] = ()
    note: tuple[str, str] = ("", "")
    special_tokens: tuple[str, ...] = ()
    note_message: tuple[str, str] | None = None
    reply_open: str | None = None
    reasoning: ReasoningStyle = ""
    source: str = ""

    def wrap(self, role: MessageRole, content: str) -> str:
        """``content`` as a complete message of ``role``."""
        before, after = getattr(self, role)
        return f"{before}{content}{after}"

    def wrap_note(self, content: str) -> str:
        """A note to the model placed after the history."""
        before, after = self.note
        outer = self.note_message or self.system
        return f"{outer[0]}{before}{content}{after}{outer[1]}"

    def open_assistant(self, content: str) -> str:
        """An assistant message left open so the model continues ``content``."""
        opening = self.assistant[0] if self.reply_open is None else self.reply_open
        return f"{opening}{content}"

    def open_reply(self, label: str, prefill: str = "") -> str:
        """The open reply of the character shown as ``[label]:``, continuing ``prefill``.

        A reasoning model's reply opens empty (it thinks first, then writes
        ``[label]:`` itself, which the stop scanner trims), unless the template closed
        the thinking already (DeepSeek-V3.1); with a prefill, any thinking the opening
        started is closed so the prefill is the answer.
        """
        line = f"[{label}]:" + (f" {prefill}" if prefill else "")
        if not self.reasoning:
            return self.open_assistant(line)
        opening = self.assistant[0] if self.reply_open is None else self.reply_open
        if opening.rstrip().endswith("</think>"):
            return opening + line  # the template closed the thinking: the model answers at once
        if not prefill:
            return opening
        if self.reasoning == "channels":
            opening += "<|channel|>final<|message|>"
        elif opening.rfind("<think>") > opening.rfind("</think>"):
            opening += "\n</think>\n\n"
        return opening + line

    def backend_stops(self, stops: Sequence[str]) -> tuple[str, ...]:
        """The stops worth sending to the backend: all of them, except for a reasoning model,
        whose thinking may contain anything (names, brackets, even gpt-oss's turn ends):
        it gets only the stops that cannot occur before its answer."""
        if not self.reasoning:
            return tuple(stops)
        own = [stop for stop in self.stops if stop in stops]
        if self.reasoning == "channels":
            own = [stop for stop in own if not _CHANNEL_MARK.search(stop)]
        return tuple(own)

    def defang(self, text: str) -> str:
        """``text`` with a space put into any of this format's own control tokens in it."""
        for token in self.special_tokens:
            if token in text:
                text = text.replace(token, f"{token[0]} {token[1:]}")
        return text


#: gpt-oss's markers that occur between its analysis and its answer, not only at the end
_CHANNEL_MARK = re.compile(r"<\|(?:end|start|channel|message)\|>")


TEMPLATES: dict[str, PromptTemplate] = {
    "transcript": PromptTemplate(
        name="transcript",
        system=("", "\n"),
        user=("", "\n"),
        assistant=("", "\n"),
        # not "[System note: …]": a bracketed line before "[Character]:" reads as one more
        # turn header, and the model went on with "[S]: …" (an empty reply) about 1 time in 60
        note=("(Note: ", ")"),
    ),
    "chatml": PromptTemplate(
        name="chatml",
        system=("<|im_start|>system\n", "<|im_end|>\n"),
        user=("<|im_start|>user\n", "<|im_end|>\n"),
        assistant=("<|im_start|>assistant\n", "<|im_end|>\n"),
        stops=("<|im_end|>", "<|im_start|>", "<|endoftext|>"),
        special_tokens=("<|im_start|>", "<|im_end|>"),
    ),
    "llama3": PromptTemplate(
        name="llama3",
        system=("<|start_header_id|>system<|end_header_id|>\n\n", "<|eot_id|>"),
        user=("<|start_header_id|>user<|end_header_id|>\n\n", "<|eot_id|>"),
        assistant=("<|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>"),
        stops=("<|eot_id|>", "<|start_header_id|>", "<|end_of_text|>"),
        special_tokens=("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
    ),
    "gemma": PromptTemplate(
        name="gemma",
        system=("<start_of_turn>user\n", "<end_of_turn>\n"),
        user=("<start_of_turn>user\n", "<end_of_turn>\n"),
        assistant=("<start_of_turn>model\n", "<end_of_turn>\n"),
        stops=("<end_of_turn>", "<start_of_turn>"),
        special_tokens=("<start_of_turn>", "<end_of_turn>"),
    ),
    "mistral": PromptTemplate(
        name="mistral",
        system=("[INST] ", " [/INST]"),
        user=("[INST] ", " [/INST]"),
        assistant=(" ", "</s>"),
        stops=("</s>", "[INST]"),
        special_tokens=("[INST]", "[/INST]", "</s>"),
    ),
    "alpaca": PromptTemplate(
        name="alpaca",
        system=("", "\n\n"),
        user=("### Instruction:\n", "\n\n"),
        assistant=("### Response:\n", "\n\n"),
        stops=("### Instruction:", "### Response:", "### Input:"),
    ),
}


def get_template(name: str) -> PromptTemplate:
    """The template for a named ``PromptConfig.format`` value (``auto`` is resolved per
    model: see :mod:`bot.prompt.chat_template`)."""
    try:
        return TEMPLATES[name]
    except KeyError as exc:
        known = ", ".join(TEMPLATES)
        raise PromptError(f"unknown prompt format {name!r} (known: {known})") from exc
