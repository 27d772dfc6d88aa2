"""Lorebooks (``character_book``): reading them from card data and writing them back.

In V3 cards, lines of an entry's content that start with ``@@`` are decorators
(instructions to the lorebook engine, such as ``@@depth 4``), not prompt text. They
are taken out of ``content`` and kept, in order, in the entry's
``extensions["ccv3_decorators"]``; a V3 export puts them back at the top of the content.

Key matching follows SillyTavern's ``extensions.match_whole_words`` (on an entry, and
Troupe also reads it on the book): ``true``/``null``/missing = whole words, ``false`` =
substrings. Other extensions are kept as they are, so a card converted and written back
loses nothing.
"""

from __future__ import annotations

from typing import Any, Mapping

from bot.cards.fields import Fields, LoadContext, describe_value
from bot.cards.model import MATCH_WHOLE_WORDS, LoreEntry, Lorebook

__all__ = ["DECORATORS_KEY", "parse_lorebook", "lorebook_to_dict", "split_decorators"]

DECORATORS_KEY = "ccv3_decorators"
_POSITIONS = ("before_char", "after_char")


def split_decorators(content: str) -> tuple[str, list[str]]:
    """Separate ``@@decorator`` lines from the prompt text of a V3 entry."""
    decorators: list[str] = []
    kept: list[str] = []
    for line in content.splitlines(keepends=True):
        if line.lstrip().startswith("@@"):
            decorators.append(line.strip())
        else:
            kept.append(line)
    return "".join(kept), decorators


def parse_lorebook(data: Any, ctx: LoadContext, path: str, *, v3: bool) -> Lorebook:
    """Read a ``character_book`` mapping found at ``path`` (for messages)."""
    if not isinstance(data, Mapping):
        raise ctx.error(f"field '{path}' must be a mapping, got {describe_value(data)}")
    book = Fields(data, ctx, f"{path}.")
    entries = [
        _parse_entry(Fields(item, ctx, f"{path}.entries[{index}]."), v3=v3)
        for index, item in enumerate(book.mappings("entries"))
    ]
    return Lorebook(
        name=book.text("name"),
        description=book.text("description"),
        scan_depth=book.optional_integer("scan_depth"),
        token_budget=book.optional_integer("token_budget"),
        recursive_scanning=book.boolean("recursive_scanning", False),
        entries=entries,
        extensions=_checked_extensions(book),
    )


def _checked_extensions(fields: Fields) -> dict[str, Any]:
    """The ``extensions`` mapping, with a warning when ``match_whole_words`` is not a boolean
    (it is then ignored, and kept as it is for the round trip)."""
    extensions = fields.json_mapping("extensions")
    value = extensions.get(MATCH_WHOLE_WORDS)
    if value is not None and not isinstance(value, bool):
        fields.ctx.warn(
            f"field '{fields.path('extensions')}.{MATCH_WHOLE_WORDS}' is {value!r}, not true or false; "
            "ignored"
        )
    return extensions


def _parse_entry(entry: Fields, *, v3: bool) -> LoreEntry:
    extensions = _checked_extensions(entry)
    content = entry.text("content")
    if v3:
        content, decorators = split_decorators(content)
        if decorators:
            extensions[DECORATORS_KEY] = decorators
    return LoreEntry(
        keys=entry.texts("keys"),
        content=content,
        enabled=entry.boolean("enabled", True),
        insertion_order=entry.integer("insertion_order", 0),
        case_sensitive=entry.optional_boolean("case_sensitive"),
        priority=entry.integer("priority", 0),
        constant=entry.boolean("constant", False),
        selective=entry.boolean("selective", False),
        secondary_keys=entry.texts("secondary_keys"),
        position=_position(entry),
        use_regex=entry.boolean("use_regex", False),
        name=entry.text("name"),
        comment=entry.text("comment"),
        id=_entry_id(entry),
        extensions=extensions,
    )


def _position(entry: Fields) -> str:
    value = entry.data.get("position")
    if value is None or value == "":
        return "before_char"
    if value in _POSITIONS:
        return str(value)
    entry.ctx.warn(
        f"field '{entry.path('position')}' is {value!r}, not before_char or after_char; using before_char"
    )
    return "before_char"


def _entry_id(entry: Fields) -> int | str | None:
    value = entry.data.get("id")
    if value is None or (isinstance(value, (int, str)) and not isinstance(value, bool)):
        return value
    raise entry.wrong("id", "a number or a string", value)


def lorebook_to_dict(book: Lorebook, *, v3: bool) -> dict[str, Any]:
    """The ``character_book`` mapping for a V2/V3 card or our YAML.

    With ``v3`` the recorded decorators go back into the content.
    """
    out: dict[str, Any] = {}
    if book.name:
        out["name"] = book.name
    if book.description:
        out["description"] = book.description
    if book.scan_depth is not None:
        out["scan_depth"] = book.scan_depth
    if book.token_budget is not None:
        out["token_budget"] = book.token_budget
    out["recursive_scanning"] = book.recursive_scanning
    out["extensions"] = dict(book.extensions)
    out["entries"] = [_entry_to_dict(entry, v3=v3) for entry in book.entries]
    return out


def _entry_to_dict(entry: LoreEntry, *, v3: bool) -> dict[str, Any]:
    extensions = dict(entry.extensions)
    content = entry.content
    if v3:
        decorators = extensions.pop(DECORATORS_KEY, None)
        if isinstance(decorators, list) and decorators:
            head = "".join(f"{line}\n" for line in decorators if isinstance(line, str))
            content = head + content
    out: dict[str, Any] = {
        "keys": list(entry.keys),
        "content": content,
        "extensions": extensions,
        "enabled": entry.enabled,
        "insertion_order": entry.insertion_order,
    }
    if entry.case_sensitive is not None:
        out["case_sensitive"] = entry.case_sensitive
    optional: Mapping[str, Any] = {"name": entry.name, "comment": entry.comment}
    out.update({key: value for key, value in optional.items() if value})
    out["priority"] = entry.priority
    if entry.id is not None:
        out["id"] = entry.id
    out["selective"] = entry.selective
    out["secondary_keys"] = list(entry.secondary_keys)
    out["constant"] = entry.constant
    out["position"] = entry.position
    out["use_regex"] = entry.use_regex
    return out
