"""Command line: ``python -m bot`` / ``troupe``.

    run                       the Discord bot
    chat                      a console chat with a character
    check                     validate the config and every card, report backend health
    card show FILE [--json]   how Troupe reads a card
    card convert FILE --to png|json|yaml
    serve                     the configured backend over HTTP (OpenAI-compatible)
    prompt --history FILE [--character NAME] [--message "Name: text"] [--reply]
                              the prompt the next reply would use, its parts marked
    store copy --from URL --to URL [--replace]
                              move the bot's state between stores (SQLite, PostgreSQL)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from bot.errors import BotError
from bot.logs import configure_logging, set_level

__all__ = ["main", "build_parser"]

log = logging.getLogger("bot")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(
        prog="troupe",
        description="Troupe: a Discord persona bot for your own models.",
        epilog=_backend_types_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", metavar="FILE", help="config file (default: config.yaml, else config.example.yaml)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("run", parents=[common], help="run the Discord bot")

    chat = sub.add_parser("chat", parents=[common], help="chat with a character in the terminal")
    chat.add_argument("--character", metavar="NAME", help="character to talk to (default: the config's)")
    chat.add_argument("--message", metavar="TEXT", help="print one reply to TEXT and exit")
    chat.add_argument("--user", metavar="NAME", help="your name in the conversation")
    chat.add_argument("--cast", metavar="NAMES", help='a scene: several characters, e.g. "Aria,Captain Brass"')

    sub.add_parser("check", parents=[common], help="validate config and cards, report backend health")

    prompt = sub.add_parser("prompt", parents=[common],
                            help="show the prompt the next reply would use, parts marked",
                            description="Play a transcript (one 'Name: text' line per message) into a fresh "
                            "conversation, with memory as on Discord, and print the next reply's prompt.")
    prompt.add_argument("--history", required=True, type=Path, metavar="FILE", help="the transcript")
    prompt.add_argument("--character", metavar="NAME", help="who replies (default: the config's)")
    prompt.add_argument("--message", metavar="'Name: text'", help="one more message, the one being answered")
    prompt.add_argument("--reply", action="store_true", help="also generate the reply")

    card = sub.add_parser("card", help="inspect or convert a character card")
    card_sub = card.add_subparsers(dest="card_command", required=True, metavar="ACTION")
    show = card_sub.add_parser("show", parents=[common], help="print how Troupe reads a card")
    show.add_argument("file", type=Path)
    show.add_argument("--json", action="store_true", help="machine-readable output")
    convert = card_sub.add_parser("convert", parents=[common], help="convert a card to another format")
    convert.add_argument("file", type=Path)
    convert.add_argument("--to", required=True, choices=("png", "json", "yaml"))
    convert.add_argument("--out", type=Path, help="output file (default: beside the input)")

    store = sub.add_parser("store", help="manage the bot's persistent state")
    store_sub = store.add_subparsers(dest="store_command", required=True, metavar="ACTION")
    copy = store_sub.add_parser(
        "copy", help="copy every channel, server and webhook from one store to another",
        description="Copy the bot's whole state between stores (stop the bot first). URLs: "
        "sqlite:///troupe.db (relative), sqlite:////abs/troupe.db, postgresql://user@host:port/db "
        "(password from PGPASSWORD, or ${VAR} in single quotes).",
    )
    copy.add_argument("--from", dest="source", required=True, metavar="URL", help="the store to read")
    copy.add_argument("--to", dest="target", required=True, metavar="URL", help="the store to write (empty)")
    copy.add_argument("--replace", action="store_true", help="drop what the target holds first")

    serve = sub.add_parser("serve", parents=[common], help="serve the configured backend over HTTP")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default from config, 8765)")
    serve.add_argument("--token", help="bearer token clients must send (default: generated)")
    return parser


def _backend_types_help() -> str:
    """The backend types the config's ``backend.type`` takes, one a line (from the registry)."""
    from bot.backends.registry import BACKEND_TYPES

    lines = [f"  {entry.name:<13} {entry.summary}" for entry in BACKEND_TYPES]
    return "backend types (backend.type in the config file):\n" + "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = build_parser().parse_args(argv)
    configure_logging(logging.INFO)
    try:
        return _dispatch(args)
    except BotError as exc:
        from bot.logformat import json_logging

        if json_logging():  # log_format: json: the error too is one JSON object
            log.error("%s", exc)
        else:
            print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`, which closed early
        sys.stderr.close()
        return 0


def _dispatch(args: argparse.Namespace) -> int:
    from bot import commands

    if args.command == "card":
        if args.card_command == "show":
            return commands.card_show(args.file, as_json=args.json)
        return commands.card_convert(args.file, to=args.to, out=args.out)
    if args.command == "store":
        return asyncio.run(commands.store_copy(args.source, args.target, replace=args.replace))
    config = commands.load(args.config)
    set_level(config.log_level, replies=args.command != "chat")  # the console shows its own replies
    from bot.logformat import secrets_of, use_format

    use_format(config.log_format, secrets_of(config))
    if args.command == "chat":
        return asyncio.run(commands.chat(
            config, character=args.character, message=args.message, user=args.user, cast=args.cast
        ))
    if args.command == "check":
        return asyncio.run(commands.check(config))
    if args.command == "prompt":
        return asyncio.run(commands.prompt(
            config, args.history, character=args.character, message=args.message, reply=args.reply
        ))
    if args.command == "serve":
        return asyncio.run(commands.serve(config, host=args.host, port=args.port, token=args.token))
    return commands.run_discord(config)
