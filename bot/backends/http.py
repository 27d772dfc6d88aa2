"""What every backend that talks to a server over HTTP shares.

:class:`HttpBackend` owns the httpx client, turns transport failures and HTTP error
statuses into :mod:`bot.errors` (the server's own message kept), retries a request
that failed before any text reached the caller, tracks running generations so
``abort`` and early closing stop them, and falls back to a character-count token
estimate (with one warning) where a server cannot tokenize. Subclasses implement
``_generate`` for their server's API and override the probes they can do better.
What is retried, and when, is the policy in :mod:`bot.backends.retry`.

The stream readers here (:func:`iter_sse`, :func:`iter_ndjson`) translate every
httpx failure into a ``BackendError`` as well, and :func:`parse_as` reads a
server's JSON into a pydantic model, naming the field when the answer is not what
the API promises.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import httpx
from httpx_sse import EventSource, ServerSentEvent, SSEError
from pydantic import TypeAdapter, ValidationError

from bot.backends.base import Capabilities, Chunk, GenerationRequest, Health, ModelInfo, Sampling, Timings
from bot.backends.retry import http_retrying, is_retryable
from bot.backends.settings import HttpBackendConfig
from bot.errors import (
    BackendError,
    BackendHTTPError,
    BackendProtocolError,
    BackendTimeout,
    BackendUnavailable,
    ContextOverflow,
    UnsupportedOperation,
)
from bot.text import CHARS_PER_TOKEN, estimate_tokens

__all__ = [
    "DEFAULT_CONTEXT",
    "CHARS_PER_TOKEN",
    "HttpBackend",
    "Generation",
    "GenerationClock",
    "ServerSentEvent",
    "iter_sse",
    "iter_ndjson",
    "parse_json",
    "parse_as",
    "server_message",
    "estimate_tokens",
    "llama_samplers",
    "is_retryable",
    "ServerNotReady",
]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: context size assumed when neither the config nor the server says (small enough to be safe)
DEFAULT_CONTEXT = 2048

_OVERFLOW_HINTS = re.compile(
    r"exceed_context_size|context_length_exceeded|context (size|length|window)|maximum context|"
    r"too many tokens|prompt is too long|input is too long|tokens? limit",
    re.IGNORECASE,
)
_STOP_CALL_TIMEOUT = 5.0


class ServerNotReady(BackendUnavailable):
    """The server answered 503: it is up but not ready (loading its model, or busy)."""


def llama_samplers(sampling: Sampling) -> dict[str, Any]:
    """Sampler fields under the names llama.cpp uses (its server and Ollama's options share them)."""
    fields: dict[str, Any] = {
        "temperature": sampling.temperature,
        "top_k": sampling.top_k,
        "top_p": sampling.top_p,
        "min_p": sampling.min_p,
        "repeat_penalty": sampling.repeat_penalty,
        "repeat_last_n": sampling.repeat_last_n,
        "presence_penalty": sampling.presence_penalty,
        "frequency_penalty": sampling.frequency_penalty,
    }
    if sampling.seed is not None:
        fields["seed"] = sampling.seed
    return fields


def server_message(body: str) -> str:
    """The human part of a server's error body, whatever its shape.

    Knows OpenAI/llama.cpp (``{"error": {"message": ...}}``), Ollama
    (``{"error": "..."}``), KoboldCpp (``{"detail": {"msg": ...}}``) and FastAPI
    (``{"detail": "..."}``); anything else is returned as text, shortened.
    """
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    found = _find_message(data)
    if found:
        return found
    text = " ".join(body.split())
    return (text[:300] + "...") if len(text) > 300 else (text or "(empty response)")


def _find_message(data: Any) -> str | None:
    if isinstance(data, str):
        return data or None
    if not isinstance(data, dict):
        return None
    for key in ("error", "detail"):
        value = data.get(key)
        if isinstance(value, str) and value:
            return value
        if isinstance(value, dict):
            inner = value.get("message") or value.get("msg") or value.get("error")
            if isinstance(inner, str) and inner:
                return inner
        if isinstance(value, list) and value and isinstance(value[0], dict) and value[0].get("msg"):
            return "; ".join(str(item.get("msg")) for item in value if isinstance(item, dict))
    message = data.get("message") or data.get("msg")
    return message if isinstance(message, str) and message else None


def _looks_like_overflow(status: int, body: str) -> bool:
    return status in (400, 413, 422) and bool(_OVERFLOW_HINTS.search(body))


def parse_json(text: str, *, backend: str, what: str) -> Any:
    """``json.loads`` that raises BackendProtocolError naming what was being read."""
    try:
        return json.loads(text)
    except ValueError as exc:
        raise BackendProtocolError(f"malformed JSON in {what}: {_shorten(text)!r}", backend=backend) from exc


def parse_as(schema: TypeAdapter[_T], text: str | bytes, *, backend: str, what: str) -> _T:
    """A server's JSON answer read as ``schema``; BackendProtocolError naming the field that is
    missing or of the wrong type (or saying the JSON itself is malformed)."""
    try:
        return schema.validate_json(text)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        shown = text.decode("utf-8", errors="replace") if isinstance(text, bytes) else text
        if any(error["type"] == "json_invalid" for error in errors):
            raise BackendProtocolError(f"malformed JSON in {what}: {_shorten(shown)!r}", backend=backend) from exc
        problems = "; ".join(_describe(error) for error in errors[:3])
        raise BackendProtocolError(
            f"unexpected JSON in {what}: {problems} (got {_shorten(shown)!r})", backend=backend
        ) from exc


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "the answer"
    return f"{where}: {error['msg'][0].lower()}{error['msg'][1:]}"


def _shorten(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


# --------------------------------------------------------------------------- stream readers


def _transport_error(exc: Exception, *, backend: str, url: str, reading: bool) -> BackendError:
    """Translate an httpx exception into our error family."""
    if isinstance(exc, httpx.ConnectTimeout):
        return BackendTimeout(f"could not connect to {url} in time", backend=backend)
    if isinstance(exc, httpx.TimeoutException):
        return BackendTimeout(f"no answer from {url} in time (read_timeout)", backend=backend)
    if isinstance(exc, httpx.ConnectError):
        reason = str(exc) or type(exc).__name__
        return BackendUnavailable(f"cannot connect to {url}: {reason}", backend=backend)
    if reading:
        return BackendProtocolError(
            f"the response from {url} was cut short ({exc or type(exc).__name__})", backend=backend
        )
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
        return BackendUnavailable(f"{url} closed the connection without answering ({exc})", backend=backend)
    return BackendError(f"request to {url} failed: {exc or type(exc).__name__}", backend=backend)


async def iter_sse(response: httpx.Response, *, backend: str) -> AsyncIterator[ServerSentEvent]:
    """Server-sent events from a streaming response (read by ``httpx-sse``).

    As the SSE standard says, an event the stream ends in the middle of (before
    its blank line) is dropped: the caller notices the server's final message is
    missing and reports the stream as cut short. A response that is not an event
    stream at all is a BackendProtocolError naming its content type.
    """
    try:
        async for event in EventSource(response).aiter_sse():
            yield event
    except SSEError as exc:
        raise BackendProtocolError(
            f"{response.url} did not answer with an event stream: {exc}", backend=backend
        ) from exc
    except (httpx.HTTPError, httpx.StreamError) as exc:
        raise _transport_error(exc, backend=backend, url=str(response.url), reading=True) from exc


async def iter_ndjson(response: httpx.Response, schema: TypeAdapter[_T], *, backend: str) -> AsyncIterator[_T]:
    """JSON values, one a line (Ollama's stream), each read as ``schema``."""
    try:
        async for line in response.aiter_lines():
            if line.strip():
                yield parse_as(schema, line, backend=backend, what="the stream")
    except (httpx.HTTPError, httpx.StreamError) as exc:
        raise _transport_error(exc, backend=backend, url=str(response.url), reading=True) from exc


# --------------------------------------------------------------------------- generation bookkeeping


@dataclass(eq=False)
class Generation:
    """One running generation: what ``abort`` and early closing need to stop it."""

    conversation: str | None
    response: httpx.Response | None = None
    sent: bool = False
    aborted: bool = False
    finished: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Started:
    """A generation read up to its first text (or its end): ``head`` holds the chunks read."""

    generation: Generation
    chunks: AsyncIterator[Chunk]
    head: list[Chunk]


class GenerationClock:
    """Measures prompt and generation time client-side, for servers that do not report them."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.first_text: float | None = None
        self.pieces = 0

    def text(self) -> None:
        """Note that a piece of text arrived."""
        if self.first_text is None:
            self.first_text = time.perf_counter()
        self.pieces += 1

    def timings(self, **known: Any) -> Timings:
        """Timings measured here, overridden by whatever the server told us (``known``)."""
        ended = time.perf_counter()
        first = self.first_text if self.first_text is not None else ended
        values: dict[str, Any] = {
            "generated_tokens": self.pieces,
            "prompt_seconds": first - self.started,
            "generation_seconds": ended - first,
        }
        values.update({key: value for key, value in known.items() if value is not None})
        return Timings(**values)


# --------------------------------------------------------------------------- the base class


class HttpBackend:
    """Base of every server backend; see the module docstring."""

    kind: ClassVar[str] = "http"
    capabilities: Capabilities = Capabilities(streaming=True, abort=True)
    #: seconds to wait before the first retry (doubled for each further one; see bot.backends.retry)
    retry_delay: float = 0.5

    def __init__(
        self, config: HttpBackendConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.config = config
        self.url = config.url
        self.name = f"{self.kind} {config.url}"
        self.capabilities = type(self).capabilities
        headers = {"Accept": "application/json"}
        key = config.api_key.get_secret_value() if config.api_key else ""
        if key:
            headers["Authorization"] = f"Bearer {key}"
        timeout = httpx.Timeout(config.read_timeout, connect=config.connect_timeout)
        self._client = httpx.AsyncClient(
            base_url=config.url, headers=headers, timeout=timeout, transport=transport
        )
        self._active: set[Generation] = set()
        self._n_ctx: int | None = config.n_ctx
        self._warned_estimate = False

    # ------------------------------------------------------------------ requests

    def _endpoint(self, path: str) -> str:
        return f"{self.url}{path}"

    def _error_for_status(self, status: int, body: str, path: str) -> BackendError:
        """The error for an HTTP error answer (subclasses may refine it)."""
        message = server_message(body)
        where = self._endpoint(path)
        if status == 503:
            return ServerNotReady(f"{where} is not ready: {message} (HTTP 503)", backend=self.name)
        if _looks_like_overflow(status, body):
            return ContextOverflow(
                f"the prompt does not fit the model's context: {message}", backend=self.name
            )
        if status in (401, 403):
            message += " (check the backend's api_key)"
        return BackendHTTPError(f"{message} ({where})", status=status, backend=self.name)

    async def _request(
        self, method: str, path: str, *, json_body: Any = None, timeout: float | None = None
    ) -> httpx.Response:
        """Send one request; error statuses and transport failures become BackendErrors."""
        kwargs: dict[str, Any] = {}
        if json_body is not None:
            kwargs["json"] = json_body
        if timeout is not None:
            kwargs["timeout"] = httpx.Timeout(timeout, connect=self.config.connect_timeout)
        try:
            response = await self._client.request(method, path, **kwargs)
        except (httpx.HTTPError, httpx.StreamError) as exc:
            raise _transport_error(exc, backend=self.name, url=self._endpoint(path), reading=False) from exc
        if response.status_code >= 400:
            raise self._error_for_status(response.status_code, response.text, path)
        return response

    async def _json(
        self, method: str, path: str, *, json_body: Any = None, timeout: float | None = None
    ) -> Any:
        """Send one request and parse its JSON answer."""
        response = await self._request(method, path, json_body=json_body, timeout=timeout)
        return parse_json(response.text, backend=self.name, what=f"the answer of {path}")

    async def _parsed(
        self,
        method: str,
        path: str,
        schema: TypeAdapter[_T],
        *,
        json_body: Any = None,
        timeout: float | None = None,
    ) -> _T:
        """Send one request and read its JSON answer as ``schema`` (errors name the field)."""
        response = await self._request(method, path, json_body=json_body, timeout=timeout)
        return parse_as(schema, response.content, backend=self.name, what=f"the answer of {path}")

    @asynccontextmanager
    async def _open_stream(
        self, path: str, body: Any, generation: Generation
    ) -> AsyncIterator[httpx.Response]:
        """POST ``body`` and hold the streaming response open (closed on exit, stopping the server)."""
        request = self._client.build_request("POST", path, json=body)
        try:
            response = await self._client.send(request, stream=True)
        except (httpx.HTTPError, httpx.StreamError) as exc:
            raise _transport_error(exc, backend=self.name, url=self._endpoint(path), reading=False) from exc
        generation.sent = True
        try:
            if response.status_code >= 400:
                try:
                    text = (await response.aread()).decode("utf-8", errors="replace")
                except (httpx.HTTPError, httpx.StreamError):
                    text = ""
                raise self._error_for_status(response.status_code, text, path)
            generation.response = response
            yield response
        finally:
            generation.response = None
            await response.aclose()

    # ------------------------------------------------------------------ streaming

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        """Stream the continuation. Getting to the first text is retried as
        :mod:`bot.backends.retry` says; after that an error is raised as it is."""
        started = await self._start(request)
        generation, chunks = started.generation, started.chunks
        failed = False
        try:
            for chunk in started.head:
                generation.finished = chunk.done
                yield chunk
                if chunk.done:
                    return
            if not generation.aborted:
                async for chunk in chunks:
                    generation.finished = chunk.done
                    yield chunk
                    if chunk.done:
                        return
                if not generation.aborted:
                    raise BackendProtocolError(
                        "the stream ended without the server's final message (cut short?)", backend=self.name
                    )
        except BackendError:
            failed = True
            if not generation.aborted:
                raise
        finally:
            self._active.discard(generation)
            await chunks.aclose()  # type: ignore[attr-defined]
            if generation.sent and not (generation.finished or generation.aborted or failed):
                await self._stop_quietly(generation)  # closed early by the caller
        log.info("%s: generation aborted", self.name)
        yield Chunk(done=True, timings=Timings(finish_reason="abort"))

    async def _start(self, request: GenerationRequest) -> _Started:
        """Open a generation and read it up to its first text or its end: the retried part."""
        retrying = http_retrying(retries=self.config.retries, first_wait=self.retry_delay, name=self.name)
        async for attempt in retrying:
            with attempt:
                return await self._start_once(request)
        raise AssertionError("tenacity neither returned nor raised")  # pragma: no cover

    async def _start_once(self, request: GenerationRequest) -> _Started:
        generation = Generation(request.conversation)
        self._active.add(generation)
        chunks = self._generate(request, generation)
        head: list[Chunk] = []
        try:
            async for chunk in chunks:
                head.append(chunk)
                if chunk.text or chunk.done:
                    break
            else:
                if not generation.aborted:
                    raise BackendProtocolError(
                        "the stream ended without the server's final message (cut short?)", backend=self.name
                    )
        except BackendError:
            if generation.aborted:
                return _Started(generation, chunks, head)  # the caller ends the stream as aborted
            self._active.discard(generation)
            await chunks.aclose()  # type: ignore[attr-defined]
            raise
        except BaseException:
            self._active.discard(generation)
            await chunks.aclose()  # type: ignore[attr-defined]
            if generation.sent:
                await self._stop_quietly(generation)
            raise
        return _Started(generation, chunks, head)

    def _generate(self, request: GenerationRequest, generation: Generation) -> AsyncIterator[Chunk]:
        """One attempt at streaming ``request`` (subclasses implement it as an async generator)."""
        raise UnsupportedOperation("this backend cannot generate", backend=self.name)

    async def _stop_server_generation(self, generation: Generation) -> None:
        """Ask the server to stop ``generation`` beyond closing its stream (where the API has a way)."""

    async def _stop_quietly(self, generation: Generation) -> None:
        try:
            await asyncio.wait_for(self._stop_server_generation(generation), _STOP_CALL_TIMEOUT)
        except (BackendError, asyncio.TimeoutError) as exc:
            log.warning("%s: could not stop the generation on the server: %s", self.name, exc)

    async def abort(self, conversation: str | None = None) -> None:
        """Stop running generations for ``conversation`` (all when None); their streams end as aborted."""
        for generation in list(self._active):
            if conversation is not None and generation.conversation != conversation:
                continue
            generation.aborted = True
            await self._stop_quietly(generation)
            response = generation.response
            if response is not None:
                await response.aclose()

    # ------------------------------------------------------------------ the rest of the protocol

    async def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """A chars/3.5 estimate (warned about once); servers with a tokenizer override this."""
        self._warn_estimate("the server cannot tokenize")
        return [estimate_tokens(text) for text in texts]

    def _warn_estimate(self, why: str) -> None:
        if not self._warned_estimate:
            self._warned_estimate = True
            log.warning(
                "%s: %s; token counts are estimated from characters (about %.1f per token)",
                self.name,
                why,
                CHARS_PER_TOKEN,
            )

    async def context_size(self) -> int:
        """``n_ctx`` from the config, else what the server says, else a safe default."""
        if self._n_ctx is None:
            try:
                found = await self._server_context_size()
            except BackendError as exc:
                log.warning(
                    "%s: cannot read the context size (%s); assuming %d", self.name, exc, DEFAULT_CONTEXT
                )
                return DEFAULT_CONTEXT
            if found is None:
                log.warning(
                    "%s: the server does not report its context size; assuming %d (set backend.n_ctx)",
                    self.name,
                    DEFAULT_CONTEXT,
                )
                found = DEFAULT_CONTEXT
            self._n_ctx = found
        return self._n_ctx

    async def _server_context_size(self) -> int | None:
        return None

    async def health(self) -> Health:
        """Ready or not, with the reason; never raises for an unhealthy server."""
        try:
            return await self._probe()
        except BackendError as exc:
            return Health(ok=False, detail=str(exc))

    async def _probe(self) -> Health:
        """Ask the server whether it is ready (raise a BackendError when not)."""
        info = await self.model_info()
        return Health(ok=True, detail="ready", model=info.name, n_ctx=info.n_ctx)

    async def wait_until_ready(self, timeout: float, *, poll: float = 1.0) -> Health:
        """Poll :meth:`health` until the server is ready (e.g. done loading), logging progress every 5 s."""
        started = time.monotonic()
        next_log = started
        while True:
            health = await self.health()
            now = time.monotonic()
            if health.ok or now - started + poll > timeout:
                return health
            if now >= next_log:
                next_log = now + 5
                log.info(
                    "%s: waiting for the server (%.0f s so far): %s", self.name, now - started, health.detail
                )
            await asyncio.sleep(poll)

    async def model_info(self) -> ModelInfo:
        """The configured model name (servers that know better override this)."""
        return ModelInfo(name=self.config.model or "unknown", n_ctx=await self.context_size())

    async def load_model(self, name: str) -> ModelInfo:
        """Switching models is not possible through this server's API."""
        raise UnsupportedOperation(f"{self.kind} cannot load models through its API", backend=self.name)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url}>"
