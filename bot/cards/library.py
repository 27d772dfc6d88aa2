"""The characters folder: every card in it, looked up by name or nickname.

A broken card is reported and the others still load. Files that are not cards are
skipped: anything without a card extension (README, notes), dot-files, and images
a card uses as its avatar (unless the image is itself a valid card). Two cards with the same name: the second (by file name)
is an error naming both files.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from bot.cards.files import safe_filename, write_atomic
from bot.cards.loader import CARD_SUFFIXES, LoadedCard, read_card, read_path
from bot.cards.model import Character
from bot.errors import CardError

__all__ = ["CharacterLibrary"]

log = logging.getLogger(__name__)

_TEXT_SUFFIXES = (".json", ".yaml", ".yml")
_Fingerprint = tuple[tuple[str, int, int], ...]  # (file name, mtime, size) of each file in the folder
_FORMAT_SUFFIX = {"png": ".png", "charx": ".charx", "json": ".json", "yaml": ".yaml"}


@dataclass
class _Index:
    """One consistent snapshot of the folder, swapped in whole."""

    by_key: dict[str, Character] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    nicknames: dict[str, str] = field(default_factory=dict)

    def add(self, character: Character, path: Path) -> None:
        self.by_key[character.key] = character
        self.files[character.key] = path
        if character.nickname:
            self.nicknames.setdefault(character.nickname.casefold(), character.key)

    def remove(self, key: str) -> None:
        character = self.by_key.pop(key, None)
        self.files.pop(key, None)
        if character is not None and character.nickname:
            nick = character.nickname.casefold()
            if self.nicknames.get(nick) == key:
                del self.nicknames[nick]

    def key_of_file(self, path: Path) -> str | None:
        return next((key for key, file in self.files.items() if file == path), None)


class CharacterLibrary:
    """The cards of one folder. ``load()``/``reload()`` are blocking: run them off the event loop."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.errors: list[CardError] = []
        self._index = _Index()
        self._lock = threading.RLock()
        self._seen: _Fingerprint | None = None  # the folder as it was when last read
        self._missing_defaults: set[str] = set()  # configured defaults already reported missing

    # ------------------------------------------------------------------ loading

    def load(self) -> list[CardError]:
        """(Re)read every card in the folder; returns the problems (also in ``errors``)."""
        index = _Index()
        errors: list[CardError] = []
        seen = self._fingerprint()  # taken first: a file written during the scan shows as a change later
        if not self.directory.is_dir():
            errors.append(CardError(self.directory, "characters folder not found"))
        else:
            self._scan(index, errors)
        with self._lock:
            self._index = index
            self.errors = errors
            self._seen = seen
        log.info("loaded %d character(s) from %s", len(index.by_key), self.directory)
        for error in errors:
            log.warning("character card skipped: %s", error)
        return list(errors)

    def reload(self) -> list[CardError]:
        """Same as :meth:`load`: the folder is read again and replaces what was loaded."""
        return self.load()

    def changed(self) -> bool:
        """Whether a file in the folder was added, removed or modified since it was last read
        (a few ``stat`` calls: cheap enough to ask every few seconds)."""
        return self._fingerprint() != self._seen

    def _fingerprint(self) -> _Fingerprint:
        try:
            entries = list(self.directory.iterdir())
        except OSError:
            return ()
        found = []
        for path in entries:
            if path.name.startswith("."):
                continue
            try:
                stat = path.stat()
            except OSError:  # removed meanwhile
                continue
            found.append((path.name, stat.st_mtime_ns, stat.st_size))
        return tuple(sorted(found))

    def _scan(self, index: _Index, errors: list[CardError]) -> None:
        files = sorted(
            (p for p in self.directory.iterdir()
             if p.suffix.lower() in CARD_SUFFIXES and not p.name.startswith(".") and p.is_file()),
            key=lambda p: p.name.casefold(),
        )
        loaded: dict[Path, LoadedCard | CardError] = {}
        avatars: set[Path] = set()
        for path in files:  # text cards first: they name the images that are their avatars
            if path.suffix.lower() in _TEXT_SUFFIXES:
                result = loaded[path] = _try_read(path)
                if isinstance(result, LoadedCard):
                    avatars.update(p.resolve() for p in result.files_used)
        for path in files:
            result = loaded[path] if path in loaded else _try_read(path)
            if isinstance(result, CardError):
                if path.resolve() in avatars:  # a plain avatar image is not a broken card
                    continue
                kept = self._previous_version(path)
                if kept is None:
                    errors.append(result)
                    continue
                # a card saved half-way, or edited into a mistake: its last good version stays in use
                errors.append(CardError(result.source, f"{result.problem} (the version loaded before stays in use)"))
                character = kept
            else:
                character = result.character
            if character.key in index.by_key:
                first = index.files[character.key]
                errors.append(CardError(path, f"duplicate character name {character.name!r}: "
                                              f"{first.name} already has it, so {path.name} is skipped"))
                continue
            index.add(character, path)

    def _previous_version(self, path: Path) -> Character | None:
        """The character ``path`` gave when the folder was last read, if it gave one."""
        with self._lock:
            key = self._index.key_of_file(path)
            return self._index.by_key.get(key) if key is not None else None

    # ------------------------------------------------------------------ lookup

    def get(self, name: str) -> Character | None:
        """The character with this name, or else this nickname (case-insensitive)."""
        key = name.strip().casefold()
        index = self._index
        if key in index.by_key:
            return index.by_key[key]
        owner = index.nicknames.get(key)
        return index.by_key.get(owner) if owner is not None else None

    def default(self, name: str | None) -> Character | None:
        """The default character: ``name`` (the config's ``default_character``) when it is here,
        else the first by name. A configured name that is missing is logged once per name."""
        if name:
            found = self.get(name)
            if found is not None:
                return found
            first = next(iter(self.all()), None)
            if name not in self._missing_defaults:
                self._missing_defaults.add(name)
                log.warning("default_character %r is not in %s; using %s instead", name, self.directory,
                            first.name if first else "nobody (no cards)")
            return first
        return next(iter(self.all()), None)

    def names(self) -> list[str]:
        """Every character's name, sorted case-insensitively."""
        return sorted((c.name for c in self._index.by_key.values()), key=str.casefold)

    def all(self) -> list[Character]:
        """Every character, sorted by name."""
        return sorted(self._index.by_key.values(), key=lambda c: c.key)

    def path_of(self, name: str) -> Path | None:
        """The file a character was loaded from."""
        character = self.get(name)
        return self._index.files.get(character.key) if character is not None else None

    def __len__(self) -> int:
        return len(self._index.by_key)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    # ------------------------------------------------------------------ import

    def import_card(self, data: bytes, filename: str, *, overwrite: bool = False) -> Character:
        """Validate an uploaded card, save its original bytes in the folder, and add it.

        Refuses a name that is already loaded, or a file name already taken, unless
        ``overwrite``; overwriting a name that lives in another file removes that file.
        """
        loaded = read_card(data, filename, base_dir=self.directory)
        character = loaded.character
        target = self.directory / safe_filename(filename, _FORMAT_SUFFIX[loaded.format], character.name)
        with self._lock:
            index = _Index(dict(self._index.by_key), dict(self._index.files), dict(self._index.nicknames))
            previous = index.files.get(character.key)
            if not overwrite:
                if previous is not None:
                    raise CardError(filename, f"a character named {index.by_key[character.key].name!r} "
                                              f"already exists ({previous.name}); import with overwrite to replace it")
                if target.exists():
                    raise CardError(filename, f"{target.name} already exists in the characters folder; "
                                              f"import with overwrite to replace it")
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                write_atomic(target, data)
                if previous is not None and previous != target:
                    previous.unlink(missing_ok=True)
            except OSError as exc:
                raise CardError(filename, f"cannot save the card to {target}: {exc.strerror or exc}") from exc
            index.remove(character.key)
            replaced = index.key_of_file(target)
            if replaced is not None:
                index.remove(replaced)
            character = character.model_copy(update={"source": str(target)})
            index.add(character, target)
            self._index = index
        log.info("imported character %r into %s", character.name, target)
        return character


def _try_read(path: Path) -> LoadedCard | CardError:
    try:
        return read_path(path)
    except CardError as exc:
        return exc
