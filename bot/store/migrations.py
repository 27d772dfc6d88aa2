"""The store's schema as one numbered, forward-only list of migrations for every engine.

Each migration is a list of steps. ``CreateTable`` and ``AddColumn`` are written once and
rendered for each engine (``id`` is SQLite's INTEGER and PostgreSQL's BIGINT, both 64-bit,
wide enough for Discord snowflakes and nanosecond clocks); ``Sql`` carries the rare step
whose SQL differs (full-text search: SQLite's FTS5, PostgreSQL's tsvector; an empty string is
no step on that engine). Every step is
idempotent (``IF NOT EXISTS``, a column is added only when missing), because SQLite files
written before versioned migrations do not always hold the shape their version number says.

Never edit a released migration: append a new one. Pure data, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "Dialect",
    "Column",
    "CreateTable",
    "AddColumn",
    "Sql",
    "Step",
    "Migration",
    "MIGRATIONS",
    "LATEST",
    "table_columns",
    "render",
]

Dialect = Literal["sqlite", "postgresql"]
ColumnType = Literal["id", "text"]

_TYPES: dict[Dialect, dict[ColumnType, str]] = {
    "sqlite": {"id": "INTEGER", "text": "TEXT"},
    "postgresql": {"id": "BIGINT", "text": "TEXT"},
}


@dataclass(frozen=True)
class Column:
    """One column: its name, a portable type and whether it may be NULL."""

    name: str
    type: ColumnType
    not_null: bool = False

    def sql(self, dialect: Dialect) -> str:
        """The column's definition in ``dialect``."""
        return f"{self.name} {_TYPES[dialect][self.type]}{' NOT NULL' if self.not_null else ''}"


@dataclass(frozen=True)
class CreateTable:
    """A table whose first column is its primary key."""

    table: str
    columns: tuple[Column, ...]


@dataclass(frozen=True)
class AddColumn:
    """A nullable column added to an existing table."""

    table: str
    column: Column


@dataclass(frozen=True)
class Sql:
    """Raw SQL for each engine, for what the portable steps cannot say (keep it idempotent)."""

    sqlite: str
    postgresql: str


Step = CreateTable | AddColumn | Sql


@dataclass(frozen=True)
class Migration:
    """Schema version ``version``: what it adds and the steps that add it."""

    version: int
    summary: str
    steps: tuple[Step, ...]


def _id(name: str, *, not_null: bool = False) -> Column:
    return Column(name, "id", not_null)


def _text(name: str, *, not_null: bool = False) -> Column:
    return Column(name, "text", not_null)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "channels, servers and webhooks", (
        CreateTable("channels", (_id("channel_id"), _text("character"), _id("fence_id"), _text("anchor_id"),
                                 _id("wake_words"))),
        CreateTable("guilds", (_id("guild_id"), _text("character"))),
        CreateTable("webhooks", (_id("channel_id"), _id("webhook_id", not_null=True), _text("token", not_null=True))),
        CreateTable("webhooks_used", (_id("webhook_id"),)),
    )),
    Migration(2, "the avatar last set on each webhook", (
        AddColumn("webhooks", _text("avatar_hash")),
    )),
    Migration(3, "channel notes and when each channel was last active", (
        AddColumn("channels", _text("note")),
        AddColumn("channels", _id("active_at")),
    )),
    # "cast" is a reserved word in PostgreSQL: the column is cast_names (a JSON list of names)
    Migration(4, "a channel's cast and running summary", (
        AddColumn("channels", _text("cast_names")),
        AddColumn("channels", _text("summary")),
    )),
    # memory: the messages the bot has seen, searchable per channel (recall of older talk). The
    # search runs over ``words``: each message's content words, normalised in Python
    # (bot.memory.words), so both engines match the same words exactly. SQLite indexes them in
    # an external-content FTS5 table kept in step by triggers (and reads each word's document
    # count from an fts5vocab table); PostgreSQL in a generated tsvector column with a GIN index.
    Migration(5, "memory: seen messages indexed for recall, and a per-channel memory switch", (
        CreateTable("memory", (
            _id("message_id"), _id("channel_id", not_null=True), _id("author_id", not_null=True),
            _text("speaker", not_null=True), _text("text", not_null=True), _text("words", not_null=True),
            _id("at", not_null=True),
        )),
        Sql("CREATE INDEX IF NOT EXISTS memory_channel ON memory (channel_id, message_id)",
            "CREATE INDEX IF NOT EXISTS memory_channel ON memory (channel_id, message_id)"),
        Sql("CREATE INDEX IF NOT EXISTS memory_author ON memory (author_id)",
            "CREATE INDEX IF NOT EXISTS memory_author ON memory (author_id)"),
        Sql("CREATE INDEX IF NOT EXISTS memory_at ON memory (at)",
            "CREATE INDEX IF NOT EXISTS memory_at ON memory (at)"),
        Sql("CREATE VIRTUAL TABLE IF NOT EXISTS memory_fts USING fts5(words, content='memory', "
            "content_rowid='message_id', tokenize='unicode61 remove_diacritics 2')",
            "ALTER TABLE memory ADD COLUMN IF NOT EXISTS search tsvector "
            "GENERATED ALWAYS AS (to_tsvector('simple', words)) STORED"),
        Sql("CREATE VIRTUAL TABLE IF NOT EXISTS memory_fts_vocab USING fts5vocab(memory_fts, 'row')",
            "CREATE INDEX IF NOT EXISTS memory_search ON memory USING GIN (search)"),
        Sql("CREATE TRIGGER IF NOT EXISTS memory_added AFTER INSERT ON memory BEGIN "
            "INSERT INTO memory_fts (rowid, words) VALUES (new.message_id, new.words); END", ""),
        Sql("CREATE TRIGGER IF NOT EXISTS memory_removed AFTER DELETE ON memory BEGIN "
            "INSERT INTO memory_fts (memory_fts, rowid, words) VALUES ('delete', old.message_id, old.words); "
            "END", ""),
        Sql("CREATE TRIGGER IF NOT EXISTS memory_edited AFTER UPDATE OF words ON memory BEGIN "
            "INSERT INTO memory_fts (memory_fts, rowid, words) VALUES ('delete', old.message_id, old.words); "
            "INSERT INTO memory_fts (rowid, words) VALUES (new.message_id, new.words); END", ""),
        AddColumn("channels", _id("memory")),
    )),
)

#: the schema version this code writes
LATEST = MIGRATIONS[-1].version


def table_columns(upto: int = LATEST) -> dict[str, tuple[str, ...]]:
    """Every table and its columns (in order) once migrations up to ``upto`` have run."""
    tables: dict[str, list[str]] = {}
    for migration in MIGRATIONS:
        if migration.version > upto:
            break
        for step in migration.steps:
            if isinstance(step, CreateTable):
                tables.setdefault(step.table, [c.name for c in step.columns])
            elif isinstance(step, AddColumn):
                tables[step.table].append(step.column.name)
    return {table: tuple(columns) for table, columns in tables.items()}


def render(step: Step, dialect: Dialect) -> str:
    """The SQL of one step in ``dialect``.

    For SQLite an ``AddColumn`` renders without a guard: the engine checks for the column
    first (SQLite has no ``ADD COLUMN IF NOT EXISTS``).
    """
    if isinstance(step, CreateTable):
        key, *rest = step.columns
        columns = ", ".join([f"{key.sql(dialect)} PRIMARY KEY", *(c.sql(dialect) for c in rest)])
        return f"CREATE TABLE IF NOT EXISTS {step.table} ({columns})"
    if isinstance(step, AddColumn):
        guard = "IF NOT EXISTS " if dialect == "postgresql" else ""
        return f"ALTER TABLE {step.table} ADD COLUMN {guard}{step.column.sql(dialect)}"
    return step.sqlite if dialect == "sqlite" else step.postgresql
