"""``python -m bot store copy``: move a bot's whole state from one store to another."""

from __future__ import annotations

import logging

from bot.errors import StoreError
from bot.store.registry import open_store
from bot.store.urls import redact, scheme_of, sqlite_path

__all__ = ["copy_store"]

log = logging.getLogger(__name__)


async def copy_store(source: str, target: str, *, replace: bool = False) -> dict[str, int]:
    """Copy every row from ``source`` to ``target`` (both URLs) in one transaction, then read the
    target back and compare; returns the rows copied per table.

    The target must hold no state unless ``replace`` is set (then its rows are dropped first).
    Stop the bot first: what it writes during the copy may be missed.
    """
    if redact(source) == redact(target):
        raise StoreError(f"copy: the source and the target are the same store ({redact(source)})")
    if scheme_of(source) == "sqlite" and not sqlite_path(source).is_file():
        raise StoreError(f"copy: there is no SQLite file at {source} (relative paths start from the current folder)")
    async with open_store(source) as src:
        snapshot = await src.snapshot()
    async with open_store(target) as dst:
        await dst.restore(snapshot, replace=replace)
        if await dst.snapshot() != snapshot:
            raise StoreError(f"copy: {dst.url} does not read back what was written; check it before using it")
    log.info("Copied %s -> %s: %s", redact(source), redact(target), snapshot.counts())
    return snapshot.counts()
