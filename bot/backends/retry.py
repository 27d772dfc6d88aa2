"""The retry policy: which layer retries what, how often, and never once text reached the user.

A reply can be tried again at three layers, innermost first. Each one retries only
while **no text of the reply has reached the caller**: once a piece was yielded, an
error is raised to the front end, which marks the partial reply as cut short. So no
one ever sees a reply twice, or two replies spliced together.

1. **HTTP** (:class:`bot.backends.http.HttpBackend`, every server backend): the same
   request to the same server, ``backend.retries`` more times (default 1, at most
   10), waiting 0.5 s, then 1 s, 2 s, ... (capped at :data:`MAX_WAIT` seconds)
   between tries. Only for errors where trying again can help
   (:func:`is_retryable`): the server unreachable, a timeout, HTTP 5xx or 429
   (503: not ready), a stream cut short or garbled. Never for a prompt that does not
   fit the context, a 4xx that is the request's own fault (401, 404, 422...) or an
   unsupported operation. ``llama_server`` with ``wait_for_load`` also waits (up to
   ``read_timeout``) for a server that answers 503 while it loads its model, within
   one try.
2. **Pool** (:class:`bot.backends.pool.PoolBackend`): a member that still fails
   (after its own HTTP retries) with a retryable error is marked down and the
   request goes to the next member, each member at most once per request, without
   waiting. In a pool, setting the members' ``retries: 0`` makes fail-over quicker.
3. **Service** (:class:`bot.chat.ChatService`): no retry on errors (they reach the
   front end, which tells the person); one more try, with the next seed, when the
   model's reply was empty after stop strings and cleaning (nothing was shown).

The embedded backend (``llama_cpp``) does not retry: its failures are not transient.
"""

from __future__ import annotations

import logging

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from bot.errors import (
    BackendError,
    BackendHTTPError,
    BackendProtocolError,
    BackendTimeout,
    BackendUnavailable,
    ContextOverflow,
    UnsupportedOperation,
)

__all__ = ["MAX_WAIT", "is_retryable", "http_retrying"]

log = logging.getLogger(__name__)

#: the longest wait between two tries of one request, in seconds
MAX_WAIT = 8.0


def is_retryable(exc: BaseException) -> bool:
    """Whether trying the same request again (here or on another server) could succeed."""
    if not isinstance(exc, BackendError) or isinstance(exc, (ContextOverflow, UnsupportedOperation)):
        return False
    if isinstance(exc, BackendHTTPError):
        return exc.status >= 500 or exc.status == 429
    return isinstance(exc, (BackendUnavailable, BackendTimeout, BackendProtocolError))


def http_retrying(*, retries: int, first_wait: float, name: str) -> AsyncRetrying:
    """The HTTP layer's policy for one request: ``retries`` more tries of a retryable error,
    waiting ``first_wait`` seconds and doubling (at most :data:`MAX_WAIT`); the last error is
    raised as it is. The caller retries only the part before any text reached the user."""

    def announce(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning("%s: %s; retrying in %.1f s (%d/%d)", name, error, wait, state.attempt_number, retries)

    return AsyncRetrying(
        stop=stop_after_attempt(retries + 1),
        wait=wait_exponential(multiplier=first_wait, exp_base=2, max=MAX_WAIT),
        retry=retry_if_exception(is_retryable),
        before_sleep=announce,
        reraise=True,
    )
