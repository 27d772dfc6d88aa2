"""Persistent state: characters per channel and server, fences, window anchors, notes, casts,
summaries and webhooks. Ids and plain values only, never Discord objects.

One interface (:class:`Store`), one engine per URL scheme: ``sqlite:///troupe.db`` (the
default, :mod:`bot.store.sqlite`) or ``postgresql://user:password@host:port/db``
(:mod:`bot.store.postgres`). Both run the same numbered migrations
(:mod:`bot.store.migrations`) when opened and the same queries (:mod:`bot.store.sql`).
"""

from __future__ import annotations

from bot.store.base import (
    ChannelState,
    MemoryCount,
    Recalled,
    Remembered,
    Snapshot,
    Store,
    StoreInfo,
    Webhook,
)
from bot.store.copy import copy_store
from bot.store.registry import connect, open_store
from bot.store.urls import redact, store_url

__all__ = [
    "ChannelState",
    "Webhook",
    "Remembered",
    "Recalled",
    "MemoryCount",
    "Store",
    "StoreInfo",
    "Snapshot",
    "open_store",
    "connect",
    "copy_store",
    "store_url",
    "redact",
]
