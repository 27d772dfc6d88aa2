"""What a failure means to the person who asked: one mapping for every front end.

The Discord chat path and ``serve`` both tell people about failures; both ask
:func:`describe` so the same error reads the same everywhere. A :class:`Failure`
carries the sentence a person reads and, for HTTP front ends, the status and the
OpenAI-style error ``type``/``code``. Pure: no I/O, no logging.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.errors import (
    BackendError,
    BackendHTTPError,
    BackendProtocolError,
    BackendTimeout,
    BackendUnavailable,
    BotError,
    ContextOverflow,
    StoreError,
    UnsupportedOperation,
)

__all__ = ["Failure", "describe", "user_message"]

_SERVER = "server_error"
_REQUEST = "invalid_request_error"


@dataclass(frozen=True)
class Failure:
    """One failure, as told to a person (``text``) and to an HTTP client (the rest)."""

    text: str
    status: int = 500
    kind: str = _SERVER
    code: str | None = None


def describe(exc: BaseException) -> Failure:
    """The failure ``exc`` means: the sentence to show and the HTTP status and codes.

    Backend failures get a plain sentence (the technical detail is for the log); any
    other :class:`BotError` already says what failed, so its own message is shown.
    """
    if isinstance(exc, BackendUnavailable):
        return Failure(
            "My model server isn't reachable right now. Try again in a moment.", 503, code="unavailable"
        )
    if isinstance(exc, BackendTimeout):
        return Failure("My model took too long to answer. Try again in a moment.", 504, code="timeout")
    if isinstance(exc, ContextOverflow):
        return Failure(
            "This conversation got too long for my model; try /reset or start a new one.",
            400,
            _REQUEST,
            "context_length_exceeded",
        )
    if isinstance(exc, UnsupportedOperation):
        return Failure("My model server can't do that.", 501, code="unsupported")
    if isinstance(exc, (BackendHTTPError, BackendProtocolError)):
        return Failure(
            "My model failed to answer this time. Try again in a moment.", 502, code="upstream_error"
        )
    if isinstance(exc, BackendError):
        return Failure("My model failed to answer this time. Try again in a moment.", 500)
    if isinstance(exc, StoreError):  # its message names the database file or URL: for the log
        return Failure("I couldn't read or write my saved state just now; the owner can find why in the log.", 503,
                       code="store_unavailable")
    if isinstance(exc, BotError):
        return Failure(str(exc), 500)
    return Failure("Something went wrong on my side; the owner can find it in the log.", 500)


def user_message(exc: BaseException) -> str:
    """The sentence a person reads about ``exc`` (no emoji or markup: front ends add their own)."""
    return describe(exc).text
