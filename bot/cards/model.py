"""The one ``Character`` model every card format is loaded into.

Field names follow the Character Card V2/V3 spec where one exists, so a card
survives a load/save round trip; fields of our own YAML format map onto them
(``persona`` -> ``description``, ``greeting`` -> ``first_mes``, ``example_dialogue``
-> ``mes_example``). Text is stored raw: macros such as ``{{char}}`` are expanded
by the prompt builder, which knows who the user is.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bot.config import SamplingSettings

__all__ = ["MATCH_WHOLE_WORDS", "LoreEntry", "Lorebook", "Character"]

#: the ``extensions`` key (SillyTavern's) that asks for whole-word or substring key matching
MATCH_WHOLE_WORDS = "match_whole_words"


def _flag(extensions: dict[str, Any], key: str) -> bool | None:
    value = extensions.get(key)
    return value if isinstance(value, bool) else None


class LoreEntry(BaseModel):
    """One lorebook entry (``character_book.entries[]``)."""

    model_config = ConfigDict(extra="ignore")

    keys: list[str] = Field(default_factory=list)
    content: str = ""
    enabled: bool = True
    insertion_order: int = 0
    case_sensitive: bool | None = None
    priority: int = 0
    constant: bool = False
    selective: bool = False
    secondary_keys: list[str] = Field(default_factory=list)
    position: Literal["before_char", "after_char"] = "before_char"
    use_regex: bool = False
    name: str = ""
    comment: str = ""
    id: int | str | None = None
    extensions: dict[str, Any] = Field(default_factory=dict)

    @property
    def match_whole_words(self) -> bool | None:
        """``extensions.match_whole_words``: whole-word (true) or substring (false) keys;
        None: as the book says."""
        return _flag(self.extensions, MATCH_WHOLE_WORDS)


class Lorebook(BaseModel):
    """A card's ``character_book``."""

    model_config = ConfigDict(extra="ignore")

    name: str = ""
    description: str = ""
    scan_depth: int | None = None
    token_budget: int | None = None
    recursive_scanning: bool = False
    entries: list[LoreEntry] = Field(default_factory=list)
    extensions: dict[str, Any] = Field(default_factory=dict)

    @property
    def match_whole_words(self) -> bool | None:
        """``extensions.match_whole_words`` for the book's entries that say nothing;
        None: the default (true)."""
        return _flag(self.extensions, MATCH_WHOLE_WORDS)


class Character(BaseModel):
    """A character as Troupe understands it, whatever file it came from."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    nickname: str | None = None
    description: str = ""
    personality: str = ""
    scenario: str = ""
    first_mes: str = ""
    alternate_greetings: list[str] = Field(default_factory=list)
    group_only_greetings: list[str] = Field(default_factory=list)
    mes_example: str = ""
    system_prompt: str = ""
    post_history_instructions: str = ""
    # metadata: never put in the prompt
    creator_notes: str = ""
    tags: list[str] = Field(default_factory=list)
    creator: str = ""
    character_version: str = ""
    lorebook: Lorebook | None = None
    # Troupe's own
    avatar: str | None = Field(None, description="http(s) URL of the avatar image")
    avatar_png: bytes | None = Field(None, repr=False, description="the card's own PNG image")
    stop_strings: list[str] = Field(default_factory=list)
    wake_words: list[str] = Field(default_factory=list)
    sampling: SamplingSettings | None = None
    extensions: dict[str, Any] = Field(default_factory=dict)
    # provenance
    spec: Literal["troupe", "v1", "v2", "v3", "pygmalion", "ooba"] = "troupe"
    source: str | None = None
    warnings: list[str] = Field(default_factory=list)

    @property
    def display_name(self) -> str:
        """The name used for ``{{char}}`` and the transcript: the nickname when set."""
        return self.nickname or self.name

    @property
    def key(self) -> str:
        """Case-insensitive lookup key."""
        return self.name.casefold()

    def summary(self, limit: int = 100) -> str:
        """A one-line description for lists."""
        text = (self.creator_notes or self.description or self.personality or self.scenario).strip()
        line = " ".join(text.split())
        return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"
