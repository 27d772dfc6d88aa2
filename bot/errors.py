"""Troupe's exception tree.

Every error a bot owner or a user may see is a :class:`BotError`. Modules translate
library exceptions into these at their boundary (``raise CardError(...) from exc``),
so callers catch one family and the message always says what failed and where.

    BotError
    ├── ConfigError          the config file or a value in it is wrong
    ├── CardError            a character card cannot be read
    ├── PromptError          a prompt cannot be built (e.g. the card alone overflows)
    ├── StoreError           persistent state cannot be read or written
    ├── SceneError           a scene's cast cannot change that way (full, not a member, ...)
    └── BackendError         the generation backend failed
        ├── BackendUnavailable   connection refused / server down / still loading
        ├── BackendTimeout       no answer in time
        ├── BackendHTTPError     the server answered with an HTTP error
        ├── BackendProtocolError malformed or truncated response / stream
        ├── ContextOverflow      the prompt does not fit the model's context
        ├── ModelError           the model file is missing, corrupt or cannot load
        └── UnsupportedOperation the backend cannot do that (e.g. load a model)
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "BotError",
    "ConfigError",
    "CardError",
    "PromptError",
    "StoreError",
    "SceneError",
    "BackendError",
    "BackendUnavailable",
    "BackendTimeout",
    "BackendHTTPError",
    "BackendProtocolError",
    "ContextOverflow",
    "ModelError",
    "UnsupportedOperation",
]


class BotError(Exception):
    """Base of every error Troupe reports to an owner or user."""


class ConfigError(BotError):
    """The config file is missing, unparsable, or has a bad value (message names the key)."""


class CardError(BotError):
    """A character card cannot be loaded; the message names the file and the problem."""

    def __init__(self, source: str | Path | None, problem: str) -> None:
        self.source = str(source) if source is not None else None
        self.problem = problem
        super().__init__(f"{self.source}: {problem}" if self.source else problem)


class PromptError(BotError):
    """A prompt cannot be built within the constraints given."""


class StoreError(BotError):
    """Persistent state cannot be read or written."""


class SceneError(BotError):
    """A scene's cast cannot change that way; the message says why, for the person who asked."""


class BackendError(BotError):
    """The generation backend failed. ``backend`` names which one (type and URL)."""

    def __init__(self, message: str, *, backend: str | None = None) -> None:
        self.backend = backend
        super().__init__(f"{backend}: {message}" if backend else message)


class BackendUnavailable(BackendError):
    """The backend cannot be reached or is not ready (connection refused, 503 loading)."""


class BackendTimeout(BackendError):
    """The backend did not answer within the configured timeout."""


class BackendHTTPError(BackendError):
    """The backend answered with an HTTP error status."""

    def __init__(self, message: str, *, status: int, backend: str | None = None) -> None:
        self.status = status
        super().__init__(f"HTTP {status}: {message}", backend=backend)


class BackendProtocolError(BackendError):
    """The backend's response or stream was malformed or cut short."""


class ContextOverflow(BackendError):
    """The prompt is longer than the model's context window."""


class ModelError(BackendError):
    """The model file is missing, corrupt, or cannot be loaded."""


class UnsupportedOperation(BackendError):
    """The backend does not support the requested operation."""

