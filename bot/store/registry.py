"""Which engine opens a store URL: a small registry keyed by the URL's scheme.

An engine's module is imported only when a URL names it, so a SQLite bot never loads asyncpg.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bot.store.base import Store
from bot.store.urls import scheme_of

__all__ = ["ENGINES", "connect", "open_store"]

#: engine name -> "module:class"; the class has ``async connect(url) -> Store``
ENGINES: dict[str, str] = {
    "sqlite": "bot.store.sqlite:SqliteStore",
    "postgresql": "bot.store.postgres:PostgresStore",
}


async def connect(url: str) -> Store:
    """Open the store a URL names (schema brought up to date); the caller closes it.

    StoreError naming ``store.url`` if no engine knows the URL's scheme.
    """
    module, _, name = ENGINES[scheme_of(url)].partition(":")
    engine = getattr(importlib.import_module(module), name)
    store: Store = await engine.connect(url)
    return store


@asynccontextmanager
async def open_store(url: str) -> AsyncIterator[Store]:
    """``async with open_store(url) as store``: open, use, close."""
    store = await connect(url)
    try:
        yield store
    finally:
        await store.close()
