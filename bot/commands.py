"""What each CLI subcommand does; ``cli.py`` only parses arguments."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from bot.backends.base import AdvisingBackend, Backend, PooledBackend, StartableBackend
from bot.backends.registry import create_backend
from bot.cards import CharacterLibrary, convert, describe, describe_json, load_card
from bot.cards.model import Character
from bot.chat import ChatService
from bot.config import Config, default_config_path, expand_env, load_config
from bot.errors import BackendError, CardError, ConfigError, StoreError
from bot.prompt_formats import choose_format
from bot.store import copy_store, open_store, redact
from bot.store.urls import scheme_of, sqlite_path

__all__ = [
    "card_convert", "card_show", "chat", "check", "check_store", "load", "load_library", "pick_character",
    "prompt", "run_discord", "serve", "store_copy",
]

log = logging.getLogger(__name__)


def load(path: str | Path | None) -> Config:
    """The config from ``--config``, else config.yaml, else config.example.yaml."""
    return load_config(default_config_path(path))


def load_library(config: Config) -> CharacterLibrary:
    """Every card in the characters folder; broken cards are logged, the rest load."""
    library = CharacterLibrary(config.resolve_path(config.characters_dir))
    for error in library.load():
        log.warning("Skipped card: %s", error)
    return library


def pick_character(config: Config, library: CharacterLibrary, name: str | None = None) -> Character:
    """The character asked for by name (an error when missing), else the library's default
    (the config's ``default_character``, else the first; see :meth:`CharacterLibrary.default`)."""
    if name:
        found = library.get(name)
        if found is None:
            raise CardError(None, f"no character named {name!r} (available: {', '.join(library.names()) or 'none'})")
        return found
    chosen = library.default(config.default_character)
    if chosen is None:
        raise CardError(library.directory, "no usable character cards in this folder")
    return chosen


async def chat(
    config: Config, *, character: str | None, message: str | None, user: str | None, cast: str | None = None
) -> int:
    """Console chat; with ``message``, print one reply (in a scene, every character turn) and exit.
    ``cast``: a scene's members, comma-separated."""
    from bot.console import ConsoleChat, stdin_lines

    library = await asyncio.to_thread(load_library, config)
    members = [pick_character(config, library, name.strip()) for name in (cast or "").split(",") if name.strip()]
    if len(members) > config.scene.max_cast:
        raise ConfigError(f"--cast names {len(members)} characters; scene.max_cast allows {config.scene.max_cast}")
    chosen = members[0] if members else pick_character(config, library, character)
    backend = create_backend(config.backend)
    try:
        console = ConsoleChat(
            ChatService(backend, config), library, chosen, user_name=user or config.prompt.user_name,
            cast=members if len(members) > 1 else None,
        )
        if message is not None:
            print(await console.one_reply(message))
            return 0
        if isinstance(backend, StartableBackend):
            await backend.start()  # load the model before the first line, not in the middle of a reply
        await console.run(stdin_lines())
        return 0
    finally:
        await backend.aclose()


async def prompt(
    config: Config, history: Path, *, character: str | None, message: str | None, reply: bool
) -> int:
    """Print the prompt the next reply would use after the transcript in ``history``."""
    from bot.transcript_replay import parse_transcript, replay

    library = await asyncio.to_thread(load_library, config)
    chosen = pick_character(config, library, character)
    try:
        lines = (await asyncio.to_thread(history.read_text, encoding="utf-8")).splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read the transcript {history}: {exc}") from exc
    if message is not None:
        lines.append(message)
    turns = parse_transcript(lines, chosen.display_name, source=str(history))
    if not turns:
        raise ConfigError(f"{history}: no messages (write one 'Name: text' line per message)")
    backend = create_backend(config.backend)
    try:
        print(await replay(config, backend, chosen, turns, reply=reply), end="")
        return 0
    finally:
        await backend.aclose()


async def check(config: Config) -> int:
    """Validate the config and every card, and report each backend's health."""
    problems = 0
    print(f"config: ok ({config.source})")
    library = CharacterLibrary(config.resolve_path(config.characters_dir))
    errors = await asyncio.to_thread(library.load)
    for character in library.all():
        warn = f" ({len(character.warnings)} warnings: {'; '.join(character.warnings)})" if character.warnings else ""
        print(f"card: ok  {character.name}{warn}")
    for error in errors:
        problems += 1
        print(f"card: BAD {error}")
    try:
        pick_character(config, library)
    except CardError as exc:
        problems += 1
        print(f"default character: {exc}")
    if not await check_store(config):
        problems += 1
    backend = create_backend(config.backend)
    try:
        targets: list[Backend] = list(backend.members) if isinstance(backend, PooledBackend) else [backend]
        for target in targets:
            health = await target.health()
            if health.ok:
                print(f"backend: ok  {target.name}: model {health.model or '?'}, context {health.n_ctx or '?'}")
                for advice in await _advice(target):
                    print(f"backend: note {target.name}: {advice}")
            else:
                problems += 1
                print(f"backend: BAD {target.name}: {health.detail}")
        print(f"prompt format: {await _format(backend, config)}")
    finally:
        await backend.aclose()
    print("all good" if problems == 0 else f"{problems} problem(s)")
    return 0 if problems == 0 else 1


async def check_store(config: Config) -> bool:
    """Open the configured store (running its migrations) and print what was reached, password redacted."""
    url = config.store_url()
    try:
        if scheme_of(url) == "sqlite" and not sqlite_path(url).exists():
            print(f"store: ok  {url} (a new file, created at first start)")
            return True
        async with open_store(url) as store:
            info = await store.info()
    except StoreError as exc:
        print(f"store: BAD {exc}")
        return False
    print(f"store: ok  {info.url} ({info.server}, schema version {info.schema_version})")
    return True


async def store_copy(source: str, target: str, *, replace: bool) -> int:
    """Copy a bot's state between stores (``${VAR}`` in the URLs comes from the environment)."""
    source, target = expand_env(source), expand_env(target)
    counts = await copy_store(source, target, replace=replace)
    rows = ", ".join(f"{n} {table}" for table, n in counts.items())
    print(f"copied {redact(source)} -> {redact(target)}: {rows}")
    return 0


async def _format(backend: Backend, config: Config) -> str:
    """The prompt format the backend's prompts will use, and why."""
    try:
        choice, fmt = await choose_format(backend, config.prompt)
    except BackendError as exc:
        return f"unknown ({exc})"
    return choice.describe(fmt)


async def _advice(backend: Backend) -> list[str]:
    return list(await backend.advice()) if isinstance(backend, AdvisingBackend) else []


def card_show(path: Path, *, as_json: bool) -> int:
    """Print how Troupe reads a card."""
    character = load_card(path)
    print(describe_json(character) if as_json else describe(character))
    return 0


def card_convert(path: Path, *, to: str, out: Path | None) -> int:
    """Convert a card to another format and say where it went."""
    written = convert(path, to, out)  # type: ignore[arg-type]
    print(f"wrote {written}")
    return 0


async def serve(config: Config, *, host: str | None, port: int | None, token: str | None) -> int:
    """Serve the configured backend, and the characters, over HTTP until interrupted."""
    from bot.serve import Characters
    from bot.serve import serve as serve_backend

    library = await asyncio.to_thread(load_library, config)
    backend = create_backend(config.backend)
    configured = config.serve.token.get_secret_value() if config.serve.token else None
    characters = Characters(ChatService(backend, config), library, config, watch=config.characters_watch)
    try:
        await serve_backend(
            backend,
            host=host or config.serve.host,
            port=port if port is not None else config.serve.port,
            token=token or configured,
            characters=characters,
        )
    finally:
        await backend.aclose()
    return 0


def run_discord(config: Config) -> int:
    """Run the Discord bot until SIGTERM / Ctrl-C."""
    from bot.app import run_bot  # discord.py is imported only by the commands that need it

    return run_bot(config)
