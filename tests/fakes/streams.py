"""Helpers for reading a backend's stream in tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
from pydantic import TypeAdapter

from bot.backends.base import Backend, Chunk, GenerationRequest
from bot.backends.registry import create_backend
from bot.config import BackendConfig

__all__ = ["collect", "reply", "http_backend", "fake_and_backend"]


async def collect(chunks: AsyncIterator[Chunk]) -> tuple[str, Chunk]:
    """All the text of a stream and its final chunk (asserting there is exactly one, at the end)."""
    text, final = "", None
    async for chunk in chunks:
        assert final is None, "a chunk came after the final one"
        if chunk.done:
            final = chunk
        text += chunk.text
    assert final is not None, "the stream ended without a final chunk"
    return text, final


async def reply(backend: Backend, prompt: str = "[Ann]: hi\n[Bot]:", **fields: object) -> tuple[str, Chunk]:
    """Stream one request to ``backend`` and collect it."""
    return await collect(backend.stream(GenerationRequest(prompt=prompt, **fields)))  # type: ignore[arg-type]


def http_backend(kind: str, url: str, **fields: object) -> Any:
    """A ``kind`` backend at ``url``, built from config through the registry, retrying quickly."""
    config = TypeAdapter(BackendConfig).validate_python({"type": kind, "url": url, **fields})
    backend = create_backend(config)
    backend.retry_delay = 0.01
    return backend


def fake_and_backend(
    fake: Callable[[], AbstractAsyncContextManager[Any]], make: Callable[..., Any], **fields: object
) -> tuple[Any, Any]:
    """The ``server`` and ``backend`` fixtures of a backend's tests: a fresh fake server, and
    ``make(url, retries=0, **fields)`` at its URL (no retries, so a fault shows at once). Use as
    ``server, backend = fake_and_backend(FakeKoboldServer, make)``."""

    @pytest.fixture
    async def server() -> AsyncIterator[Any]:
        async with fake() as running:
            yield running

    @pytest.fixture
    async def backend(server: Any) -> AsyncIterator[Any]:
        built = make(server.url, retries=0, **fields)
        yield built
        await built.aclose()

    return server, backend
