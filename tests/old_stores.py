"""SQLite files as earlier releases of Troupe wrote them, made by hand for the upgrade tests."""

from __future__ import annotations

import sqlite3
from pathlib import Path

__all__ = ["OLD_SCHEMAS", "old_file"]

# The schemas earlier releases wrote, by hand, each with the rows such a bot would hold.
_V1_FIRST = """
CREATE TABLE channels (channel_id INTEGER PRIMARY KEY, character TEXT, fence_id INTEGER,
                       anchor_id TEXT, wake_words INTEGER);
CREATE TABLE guilds (guild_id INTEGER PRIMARY KEY, character TEXT);
CREATE TABLE webhooks (channel_id INTEGER PRIMARY KEY, webhook_id INTEGER NOT NULL, token TEXT NOT NULL);
INSERT INTO channels (channel_id, character, fence_id, anchor_id, wake_words) VALUES (10, 'Aria', 5, '600', 0);
INSERT INTO guilds VALUES (1, 'Captain Brass');
INSERT INTO webhooks VALUES (10, 77, 'tok');
PRAGMA user_version = 1;
"""  # the first release: no webhooks_used yet, though the version is 1
_V1 = _V1_FIRST.replace("PRAGMA user_version = 1;", """
CREATE TABLE webhooks_used (webhook_id INTEGER PRIMARY KEY);
INSERT INTO webhooks_used VALUES (76);
INSERT INTO webhooks_used VALUES (77);
PRAGMA user_version = 1;
""")
_V2 = _V1.replace("token TEXT NOT NULL)", "token TEXT NOT NULL, avatar_hash TEXT)").replace(
    "INSERT INTO webhooks VALUES (10, 77, 'tok');", "INSERT INTO webhooks VALUES (10, 77, 'tok', 'hash-1');"
).replace("user_version = 1", "user_version = 2")
_V3_FIRST = _V2.replace("wake_words INTEGER)", "wake_words INTEGER, note TEXT)").replace(
    "VALUES (10, 'Aria', 5, '600', 0)", "VALUES (10, 'Aria', 5, '600', 0); UPDATE channels SET note = 'It is night.'"
).replace("user_version = 2", "user_version = 3")  # version 3 as first released: no active_at yet
_V3 = _V3_FIRST.replace("note TEXT)", "note TEXT, active_at INTEGER)").replace(
    "SET note = 'It is night.'", "SET note = 'It is night.', active_at = 1700000000000000000"
)
OLD_SCHEMAS = {"v1-first": _V1_FIRST, "v1": _V1, "v2": _V2, "v3-first": _V3_FIRST, "v3": _V3}


def old_file(path: Path, schema: str) -> Path:
    """Write ``schema`` (one of OLD_SCHEMAS) and its rows to a new SQLite file at ``path``."""
    with sqlite3.connect(path) as db:
        db.executescript(schema)
    return path
