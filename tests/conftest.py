"""Shared fixtures: the real embedded model, a scripted backend, a characters folder."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.backends.llama_cpp import LlamaCppBackend
from bot.backends.model_files import default_model_path
from bot.config import LlamaCppConfig
from bot.testing import ScriptedBackend

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def model_path() -> Path:
    """The bundled Gemma 3 270M GGUF (assembled on first use)."""
    return default_model_path()


@pytest.fixture
async def embedded(model_path: Path) -> AsyncIterator[LlamaCppBackend]:
    """The real embedded backend with a context sized for tests."""
    backend = LlamaCppBackend(LlamaCppConfig(model=str(model_path), n_ctx=2048, seed=1))
    await backend.start()
    yield backend
    await backend.aclose()


@pytest.fixture
def scripted() -> ScriptedBackend:
    """A fast scripted backend that records requests."""
    return ScriptedBackend()


@pytest.fixture
def characters_dir() -> Path:
    """The bundled example characters."""
    return ROOT / "characters"


from fakediscord.fixtures import fake_discord  # noqa: E402,F401  (the strict local Discord)
from postgres_fixtures import postgres_server, postgres_url, store_url  # noqa: E402,F401  (a real PostgreSQL)
from llama_server_real import (  # noqa: E402,F401  (llama.cpp's real server, started on 127.0.0.1)
    llama_server,
    llama_server_shifting,
    start_llama_server,
)
