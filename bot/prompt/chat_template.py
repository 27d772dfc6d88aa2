"""A model's own chat template (Jinja) turned into a prompt format.

The template is rendered the way Hugging Face renders chat templates: Jinja2's
``ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)`` with the
``loopcontrols`` extension, the globals ``raise_exception(msg)`` and
``strftime_now(fmt)``, and the variables ``messages``, ``bos_token``, ``eos_token``
and ``add_generation_prompt``.

Troupe's prompts follow the rules every format follows (see
:mod:`bot.prompt.formats`): each turn is its own message, wrapped on its own, so
appending a turn only appends bytes and the backend's cache is reused. So the
template is not rendered for every prompt: it is rendered once over probe
conversations with marker contents, and the text around each marker gives the
wrapping of each role (:class:`~bot.prompt.formats.PromptTemplate`). A longer probe
is then rendered and must come out byte for byte as the wrapping builds it, or the
template is refused (:class:`ChatTemplateError`; the caller falls back to
``transcript``).

What the wrapping keeps and what it leaves out of a template:

* the card goes in the system message where the template has one of its own; a
  template that refuses a system role, merges it into the first user message (Gemma)
  or moves it to the last one (Mistral Nemo) gets the card as a user message of its
  own at the start, which keeps the prefix stable as the window slides;
* past assistant turns take the form the template gives them in the middle of a
  conversation: templates that dress the newest assistant turn differently (Qwen3's
  empty ``<think></think>``, gpt-oss's ``<|return|>``) are followed for every turn
  but that one, which the prefix property could not survive anyway;
* a template that reads the clock (Llama 3.1's ``Today Date``) is rendered with the
  ``now`` given, which the caller pins per conversation;
* the BOS token a template writes first is left out: backends add it.

Stop strings are the end of an assistant turn, the opening of a user turn and the
EOS token. Pure: no I/O; the clock is an argument.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from bot.errors import PromptError
from bot.prompt.formats import PromptTemplate, ReasoningStyle

__all__ = [
    "ChatTemplateError",
    "LLAMA_CPP_DEFAULT_TEMPLATE",
    "is_llama_cpp_default",
    "reasoning_style",
    "render_chat_template",
    "template_format",
]

#: llama.cpp's server shows this ChatML template in ``/props`` when the model has none
#: of its own (``CHATML_TEMPLATE_SRC`` in llama.cpp's common/chat.cpp): not the model's
LLAMA_CPP_DEFAULT_TEMPLATE = (
    "{%- for message in messages -%}\n"
    "  {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' -}}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "  {{- '<|im_start|>assistant\n' -}}\n"
    "{%- endif -%}"
)
_SPACE = re.compile(r"\s+|\\n")

#: control tokens as chat templates spell them: <|im_start|>, <｜User｜>, <start_of_turn>,
#: </s>, [INST], [gMASK] ... (a plain string listed by mistake is harmless: a tokenizer
#: reads text that is no special token as text)
_TOKEN = re.compile(
    r"<\|[^<>|\s]{1,40}\|>|<｜[^<>｜]{1,40}｜>|</?[A-Za-z_][\w.-]{0,40}>"
    r"|<\|[A-Za-z_]{1,40}>|<[A-Za-z_]{1,40}\|>"
    r"|\[/?[A-Za-z_]{2,30}\]"
)
_MARK = "TroupeProbe{}Q"


class ChatTemplateError(PromptError):
    """A chat template that cannot be used as a prompt format (it is logged, then ``transcript`` is used)."""


def is_llama_cpp_default(source: str) -> bool:
    """Whether ``source`` is llama.cpp's stand-in ChatML template (the model has none)."""
    return _SPACE.sub("", source) == _SPACE.sub("", LLAMA_CPP_DEFAULT_TEMPLATE)


def reasoning_style(source: str) -> ReasoningStyle:
    """How the template's model thinks before answering, as far as the template shows."""
    if "<|channel|>" in source:
        return "channels"
    if "<think>" in source or "</think>" in source:
        return "think"
    return ""


def _environment(now: datetime) -> ImmutableSandboxedEnvironment:
    def raise_exception(message: str) -> None:
        raise jinja2.TemplateError(message)

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
    )
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = now.strftime
    return env


def render_chat_template(
    source: str,
    messages: Sequence[dict[str, str]],
    *,
    bos_token: str = "",
    eos_token: str = "",
    add_generation_prompt: bool = False,
    now: datetime,
) -> str:
    """Render ``source`` over ``messages`` as Hugging Face does (``now`` answers ``strftime_now``).

    Raises :class:`ChatTemplateError` for a broken template or one that refuses the messages.
    """
    try:
        template = _environment(now).from_string(source)
        return template.render(
            messages=[dict(m) for m in messages],
            bos_token=bos_token,
            eos_token=eos_token,
            add_generation_prompt=add_generation_prompt,
        )
    except (jinja2.TemplateError, TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
        raise ChatTemplateError(f"the chat template cannot render: {exc}") from exc


@dataclass(frozen=True)
class _Renderer:
    source: str
    bos_token: str
    eos_token: str
    now: datetime

    def __call__(self, messages: Sequence[tuple[str, str]], *, generation: bool = False) -> str:
        text = render_chat_template(
            self.source,
            [{"role": role, "content": content} for role, content in messages],
            bos_token=self.bos_token,
            eos_token=self.eos_token,
            add_generation_prompt=generation,
            now=self.now,
        )
        if self.bos_token and text.startswith(self.bos_token):
            text = text[len(self.bos_token):]
        return text

    def without_eos(self, messages: Sequence[tuple[str, str]]) -> str:
        """A conversation without the generation prompt, less the EOS token some templates
        (Phi-3) end such a conversation with instead."""
        text = self(messages)
        if self.eos_token and text.endswith(self.eos_token):
            if not self(messages, generation=True).startswith(text):
                text = text[: -len(self.eos_token)]
        return text


def _marks(*names: str) -> dict[str, str]:
    return {name: _MARK.format(name) for name in names}


def _between(text: str, markers: Sequence[str]) -> list[str] | None:
    """The text before, between and after ``markers``, which must each occur once, in order."""
    pieces: list[str] = []
    at = 0
    for marker in markers:
        if text.count(marker) != 1:
            return None
        found = text.find(marker)
        if found < at:
            return None
        pieces.append(text[at:found])
        at = found + len(marker)
    pieces.append(text[at:])
    return pieces


@dataclass(frozen=True)
class _Turns:
    """The wrapping of user and assistant messages, learnt from a probe with or without a system message."""

    lead: str  # what comes before the first message's own opening (with a system message: before its content)
    system: tuple[str, str] | None
    user: tuple[str, str]
    assistant: tuple[str, str]
    generation: str


def _learn(render: _Renderer, with_system: bool) -> _Turns | None:
    m = _marks("S", "U1", "A1", "U2", "A2", "U3")
    head = [("system", m["S"])] if with_system else []
    talk = [("user", m["U1"]), ("assistant", m["A1"]), ("user", m["U2"]), ("assistant", m["A2"]),
            ("user", m["U3"])]
    try:
        plain = render.without_eos([*head, *talk])
        generated = render([*head, *talk], generation=True)
        ending = render.without_eos([*head, *talk[:2]])  # ends with an assistant turn
    except ChatTemplateError:
        return None
    order = ["S", "U1", "A1", "U2", "A2", "U3"] if with_system else ["U1", "A1", "U2", "A2", "U3"]
    pieces = _between(plain, [m[name] for name in order])
    if pieces is None or not generated.startswith(plain):
        return None
    if with_system:
        lead, after_system, u_to_a, a_to_u, u_to_a2, a_to_u2, user_after = pieces
    else:
        lead, u_to_a, a_to_u, u_to_a2, a_to_u2, user_after = pieces
        after_system = ""
    if (u_to_a, a_to_u) != (u_to_a2, a_to_u2) or not u_to_a.startswith(user_after):
        return None
    assistant_before = u_to_a[len(user_after):]
    assistant_after = _assistant_after(ending, m["A1"], a_to_u, user_after)
    user_before = a_to_u[len(assistant_after):]
    if with_system:
        if not after_system.endswith(user_before):
            return None  # the system text runs into the first user message (Gemma): no system role
        system: tuple[str, str] | None = (lead, after_system[: len(after_system) - len(user_before)])
        lead = ""
    else:
        if not lead.endswith(user_before):
            return None
        lead, system = lead[: len(lead) - len(user_before)], None
    return _Turns(lead, system, (user_before, user_after), (assistant_before, assistant_after),
                  generated[len(plain):])


def _assistant_after(ending: str, marker: str, a_to_u: str, user_after: str) -> str:
    """Where an assistant turn ends: as the template ends a conversation with one, or else as
    it ends a user turn (gpt-oss ends its last turn with ``<|return|>``, the others with
    ``<|end|>``). The rest of the text between an assistant and a user turn opens the user's."""
    found = ending.rfind(marker)
    tail = ending[found + len(marker):] if found >= 0 else ""
    for candidate in (tail, user_after):
        if candidate and a_to_u.startswith(candidate):
            return candidate
    return ""


def _note_message(render: _Renderer, turns: _Turns) -> tuple[str, str] | None:
    """How a system message after the history is wrapped, or None if the template has none there."""
    m = _marks("S", "U1", "A1", "N", "U2")
    messages = [("user", m["U1"]), ("assistant", m["A1"]), ("system", m["N"]), ("user", m["U2"])]
    try:
        text = render([("system", m["S"]), *messages], generation=True)
    except ChatTemplateError:
        return None
    pieces = _between(text, [m["S"], m["U1"], m["A1"], m["N"], m["U2"]])
    if pieces is None:
        return None
    a_to_n, n_to_u = pieces[3], pieces[4]
    after, before = turns.assistant[1], turns.user[0]
    if not a_to_n.startswith(after) or not n_to_u.endswith(before):
        return None
    return a_to_n[len(after):], n_to_u[: len(n_to_u) - len(before)]


def _special_tokens(pieces: Sequence[str]) -> tuple[str, ...]:
    found = {token for piece in pieces for token in _TOKEN.findall(piece)}
    return tuple(sorted(found, key=lambda t: (-len(t), t)))


def _check(render: _Renderer, fmt: PromptTemplate, with_system: bool, lead: str) -> None:
    """A longer conversation must render exactly as the wrapping builds it."""
    m = _marks("S", "U1", "A1", "U2", "A2", "U3", "A3", "U4")
    roles = ["user", "assistant"] * 4
    talk = [(role, m[name]) for role, name in zip(roles, ["U1", "A1", "U2", "A2", "U3", "A3", "U4"])]
    head = [("system", m["S"])] if with_system else []
    expected = render([*head, *talk], generation=True)
    built = fmt.wrap("system", m["S"]) if with_system else lead
    built += "".join(fmt.wrap(role, content) for role, content in talk)  # type: ignore[arg-type]
    built += fmt.open_assistant("")
    if built != expected:
        raise ChatTemplateError(
            "the chat template's messages are not wrapped independently of each other, so appending a "
            f"turn would not only append to the prompt (rendered {expected[-120:]!r}, built {built[-120:]!r})"
        )


def template_format(
    source: str, *, bos_token: str = "", eos_token: str = "", now: datetime, name: str = "auto"
) -> PromptTemplate:
    """The prompt format a chat template stands for (see the module docstring).

    ``now`` is what the template's ``strftime_now`` sees: pin it per conversation.
    Raises :class:`ChatTemplateError` when the template cannot be used that way.
    """
    render = _Renderer(source, bos_token, eos_token, now)
    turns = _learn(render, with_system=True)
    native = turns is not None and turns.system is not None
    if turns is None:
        turns = _learn(render, with_system=False)
    if turns is None:
        raise ChatTemplateError("the chat template does not render a plain user/assistant conversation")
    if native and turns.system is not None:
        system = turns.system
        note = _note_message(render, turns)
        note_inner = ("", "")
        if note is None:
            note, note_inner = turns.user, ("[System note: ", "]")
    else:
        system = (turns.lead + turns.user[0], turns.user[1])
        note, note_inner = turns.user, ("[System note: ", "]")
    end = turns.assistant[1].strip()
    stops = tuple(dict.fromkeys(s for s in (end, turns.user[0].strip(), eos_token.strip()) if s))
    style = reasoning_style(source)
    reply_open = turns.generation if turns.generation != turns.assistant[0] else None
    wrappers = [*system, *turns.user, *turns.assistant, turns.generation, *(note or ()), *stops]
    fmt = PromptTemplate(
        name=name,
        system=system,
        user=turns.user,
        assistant=turns.assistant,
        stops=stops,
        note=note_inner,
        special_tokens=_special_tokens(wrappers),
        note_message=note,
        reply_open=reply_open,
        reasoning=style,
        source="the model's chat template",
    )
    _check(render, fmt, native, turns.lead)
    return fmt

