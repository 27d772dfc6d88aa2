"""The one protocol every generation backend speaks, and the types it exchanges.

A backend is a small object: it streams text for a :class:`GenerationRequest`,
counts tokens, reports its health and model, and says what it can do through
:class:`Capabilities`. It never calls back into the bot; the ChatService drives it.
Every failure is raised as a :class:`bot.errors.BackendError` subclass.

Abilities only some backends have are small protocols of their own, and callers
ask ``isinstance(backend, Protocol)`` (never for an attribute by name):

- :class:`ConversationStateBackend`: keeps per-conversation state (a KV cache, a
  server slot) and can read a prompt's start into it ahead of time (``prewarm``);
- :class:`SyncTokenCounter`: can count tokens synchronously, for the pure prompt
  builder (``counter``);
- :class:`PooledBackend`: stands for several member backends (``members``,
  ``member_states``);
- :class:`StartableBackend`: can do its slow start-up (loading a model) on request
  (``start``) instead of on first use;
- :class:`AdvisingBackend`: has setup hints for the owner (``advice``), shown by
  ``python -m bot check``;
- :class:`ChatTemplateSource`: can tell the model's own chat template
  (``chat_template``), for ``prompt.format: auto``;
- :class:`CacheShiftBackend`: can say whether it shifts a conversation's cached
  window when old turns drop out, or reads the whole window again (``shifts_cache``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypedDict, runtime_checkable

__all__ = [
    "Sampling",
    "ChatMessage",
    "GenerationRequest",
    "Timings",
    "Chunk",
    "Capabilities",
    "Health",
    "ModelInfo",
    "Backend",
    "ChatTemplate",
    "ChatTemplateSource",
    "ConversationStateBackend",
    "SyncTokenCounter",
    "MemberState",
    "PooledBackend",
    "StartableBackend",
    "AdvisingBackend",
    "CacheShiftBackend",
    "ChoiceBackend",
]


@dataclass(frozen=True)
class Sampling:
    """Sampler settings for one request (already resolved from presets and overrides)."""

    temperature: float = 0.8
    top_k: int = 40
    top_p: float = 0.95
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    repeat_last_n: int = 64
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    seed: int | None = None


@dataclass(frozen=True)
class ChatMessage:
    """One message for chat-style APIs (``/v1/chat/completions``)."""

    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class GenerationRequest:
    """Everything a backend needs to continue one prompt.

    ``conversation`` is a stable key (e.g. a channel id) that lets a backend keep
    per-conversation state: a KV-cache slot, a saved state, pool stickiness.
    ``keep_tokens`` is how many leading prompt tokens form the stable prefix
    (card and examples) that a server may keep when it shifts its cache.
    ``messages`` is the same conversation in chat form, for chat-mode backends.
    ``special_tokens`` are the prompt format's control tokens: a backend that
    tokenizes the prompt itself parses only these as special tokens, so a user who
    types ``<end_of_turn>`` (or any other special token) is read as plain text.
    """

    prompt: str
    max_tokens: int = 200
    stops: tuple[str, ...] = ()
    sampling: Sampling = field(default_factory=Sampling)
    conversation: str | None = None
    keep_tokens: int = 0
    messages: tuple[ChatMessage, ...] | None = None
    special_tokens: tuple[str, ...] = ()


@dataclass
class Timings:
    """What one generation cost.

    ``prompt_tokens`` is the prompt's length; ``prompt_evaluated`` how many of those
    the backend actually had to read (the rest came from its KV cache), or ``None``
    when the backend does not say.
    """

    prompt_tokens: int | None = None
    prompt_evaluated: int | None = None
    generated_tokens: int = 0
    prompt_seconds: float = 0.0
    generation_seconds: float = 0.0
    finish_reason: str | None = None

    @property
    def prompt_tokens_per_second(self) -> float | None:
        """Prompt reading speed, if measurable."""
        n = self.prompt_evaluated if self.prompt_evaluated is not None else self.prompt_tokens
        if not n or self.prompt_seconds <= 0:
            return None
        return n / self.prompt_seconds

    @property
    def generation_tokens_per_second(self) -> float | None:
        """Generation speed, if measurable."""
        if not self.generated_tokens or self.generation_seconds <= 0:
            return None
        return self.generated_tokens / self.generation_seconds


@dataclass(frozen=True)
class Chunk:
    """A piece of a streamed reply. The last chunk has ``done=True`` and the timings.

    ``reasoning`` is thinking a server sent apart from the answer (``reasoning_content``).
    """

    text: str = ""
    done: bool = False
    timings: Timings | None = None
    reasoning: str = ""


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do, so the bot degrades gracefully where it cannot."""

    streaming: bool = True
    tokenize: bool = False
    abort: bool = False
    model_info: bool = False
    model_load: bool = False
    slots: bool = False
    kv_state: bool = False


@dataclass(frozen=True)
class Health:
    """A backend's health as seen right now."""

    ok: bool
    detail: str = ""
    model: str | None = None
    n_ctx: int | None = None


@dataclass(frozen=True)
class ModelInfo:
    """The model a backend serves and the models it could load instead."""

    name: str
    n_ctx: int | None = None
    available: tuple[str, ...] = ()
    details: dict[str, object] = field(default_factory=dict)


@runtime_checkable
class Backend(Protocol):
    """A generation backend. See the module docstring for the contract."""

    #: human-readable identity for logs and errors, e.g. ``"openai http://127.0.0.1:8000"``
    name: str
    capabilities: Capabilities

    def stream(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        """Stream the continuation of ``request.prompt``; the final chunk has ``done=True``.

        Backends pass ``request.stops`` to the server when they can; the caller
        enforces stops again client-side. Closing the iterator early (``aclose``)
        must stop the generation.
        """
        ...

    async def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Token counts of each text (an estimate when the backend cannot tokenize)."""
        ...

    async def context_size(self) -> int:
        """The model's context window in tokens."""
        ...

    async def health(self) -> Health:
        """Check whether the backend is ready; never raises for an unhealthy backend."""
        ...

    async def model_info(self) -> ModelInfo:
        """The model being served."""
        ...

    async def load_model(self, name: str) -> ModelInfo:
        """Switch to another model (raises UnsupportedOperation where impossible)."""
        ...

    async def abort(self, conversation: str | None = None) -> None:
        """Stop a running generation for ``conversation`` (or all) where supported."""
        ...

    async def aclose(self) -> None:
        """Release connections, threads and models."""
        ...


@dataclass(frozen=True)
class ChatTemplate:
    """A model's own chat template (Jinja source) and the BOS/EOS token texts it refers to."""

    source: str
    bos_token: str = ""
    eos_token: str = ""


@runtime_checkable
class ChatTemplateSource(Protocol):
    """An optional ability: the backend can tell the model's own chat template (for
    ``prompt.format: auto``)."""

    async def chat_template(self) -> ChatTemplate | None:
        """The served model's chat template, or None when it has none (or it cannot be known)."""
        ...


@runtime_checkable
class ConversationStateBackend(Protocol):
    """A backend that keeps per-conversation state and can fill it ahead of a reply."""

    async def prewarm(
        self, conversation: str, text: str, *, special_tokens: Sequence[str] = (), only_if_idle: bool = False
    ) -> int:
        """Read ``text`` (the start of the conversation's next prompt) into its state now.

        A reply never waits long for it. With ``only_if_idle`` nothing happens while
        a reply runs or waits. Returns the prompt tokens read (0 when nothing was).
        """
        ...


@runtime_checkable
class SyncTokenCounter(Protocol):
    """A backend that can count short texts without awaiting (for the synchronous prompt builder)."""

    def counter(self) -> Callable[[str], int | None] | None:
        """A ``count(text)`` function, or None while it cannot count yet (e.g. model not loaded).

        The function answers quickly enough to run on the event loop; for a text too
        long for that it returns None, and the caller counts it with ``count_tokens``.
        """
        ...


class MemberState(TypedDict):
    """One pool member as ``/stats`` and ``model_info().details["members"]`` show it."""

    name: str
    state: Literal["up", "down", "unknown"]
    busy: int
    served: int
    failures: int
    last_error: str
    model: str | None
    n_ctx: int | None
    checked_seconds_ago: float | None


@runtime_checkable
class PooledBackend(Protocol):
    """A backend that stands for several member backends."""

    #: the member backends, in the configured order
    members: Sequence[Backend]

    def member_states(self) -> list[MemberState]:
        """Each member's state right now."""
        ...


@runtime_checkable
class StartableBackend(Protocol):
    """A backend whose slow start-up (loading a model) can be done before the first request."""

    async def start(self) -> None:
        """Get ready now (otherwise it happens on first use)."""
        ...


@runtime_checkable
class AdvisingBackend(Protocol):
    """A backend with setup hints for the owner."""

    async def advice(self) -> list[str]:
        """Hints worth showing (empty when all is as it should be)."""
        ...


@runtime_checkable
class CacheShiftBackend(Protocol):
    """A backend that can say how it handles a sliding window in a conversation's cache."""

    def shifts_cache(self, conversation: str | None = None) -> bool:
        """Whether dropping the oldest turns shifts the cached rest (True) or means
        reading the whole window again (False)."""
        ...


@runtime_checkable
class ChoiceBackend(Protocol):
    """An optional ability: continue a prompt with exactly one of a few given strings (a
    grammar-constrained continuation), reading only the tokens beyond what the conversation's
    cache holds. The scene director uses it to let the model pick the next speaker."""

    async def choose(self, request: GenerationRequest, choices: Sequence[str]) -> str:
        """Continue ``request.prompt`` (with its sampling, conversation and ``max_tokens``) with
        one of ``choices`` and return it; raises :class:`bot.errors.BackendError` if it cannot."""
        ...
