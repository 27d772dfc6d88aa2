"""The backend contract: optional abilities are protocols, and each backend claims exactly its own."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from bot.backends.base import (
    AdvisingBackend,
    Backend,
    CacheShiftBackend,
    ChatTemplateSource,
    ConversationStateBackend,
    PooledBackend,
    StartableBackend,
    SyncTokenCounter,
)
from bot.backends.registry import backend_types, create_backend
from bot.config import parse_config

URL = "http://127.0.0.1:9"
ABILITIES = (
    ConversationStateBackend, SyncTokenCounter, PooledBackend, StartableBackend, AdvisingBackend, ChatTemplateSource,
    CacheShiftBackend,
)
ROOT = Path(__file__).resolve().parent.parent

#: what each backend type can do beyond the core protocol (a new type fails until it is stated here)
EXPECTED = {
    "llama_cpp": {ConversationStateBackend, SyncTokenCounter, StartableBackend, ChatTemplateSource},
    "llama_server": {
        ConversationStateBackend, StartableBackend, AdvisingBackend, ChatTemplateSource, CacheShiftBackend
    },
    "openai": {ChatTemplateSource},
    "ooba": {ChatTemplateSource},
    "kobold": set(),
    "ollama": {AdvisingBackend},
    "api_host": set(),
    "pool": {ConversationStateBackend, PooledBackend},
}
SECTIONS = {
    "llama_cpp": {},
    "ollama": {"url": URL, "model": "llama3"},
    "pool": {"members": [{"type": "kobold", "url": URL}]},
}


@pytest.mark.parametrize("kind", backend_types())
async def test_each_backend_has_exactly_its_abilities(kind: str):
    section = {"type": kind, **SECTIONS.get(kind, {"url": URL})}
    backend = create_backend(parse_config({"backend": section}).backend)
    try:
        assert isinstance(backend, Backend)
        assert {ability for ability in ABILITIES if isinstance(backend, ability)} == EXPECTED[kind]
    finally:
        await backend.aclose()


def _probes(path: Path) -> list[str]:
    """``getattr``/``hasattr`` calls in ``path`` whose object is a backend."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr"):
            target = ast.unparse(node.args[0]) if node.args else ""
            if "backend" in target.lower():
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_module_probes_a_backend_for_an_ability_by_attribute_name():
    probes = [probe for path in sorted((ROOT / "bot").rglob("*.py")) for probe in _probes(path)]

    assert probes == []
