"""Run the fake Discord as a process: ``PYTHONPATH=tests python -m fakediscord --port 8990``.

It builds one server with a text channel and a member, prints one JSON line with its
addresses (``api_url``, ``gateway_url``, ``token``, ``guild_id``, ``channel_id``) and serves
until SIGTERM or Ctrl-C. With ``--say TEXT`` it is a one-shot check for a bot in another
process (or container): once the bot is connected, the member says TEXT mentioning it; the
bot's reply is printed as a second JSON line and the exit code is 0, or 1 if no reply
came within ``--timeout`` seconds. Either way it says on stderr, on the way out, how many
requests it answered, and exits 1 if any request reached a route it does not implement or
crashed it (the fake stays strict when it is a process too).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Sequence

from .server import FakeDiscord


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fakediscord", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--token", help="the bot token it accepts (default: a random one)")
    parser.add_argument("--guild", default="Copper Kettle", help="the server's name")
    parser.add_argument("--channel", default="tavern", help="its text channel's name")
    parser.add_argument("--user", default="alice", help="the member who talks")
    parser.add_argument("--say", metavar="TEXT", help="say TEXT to the bot once it connects, wait for a reply, exit")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the bot with --say")
    return parser


async def _serve(args: argparse.Namespace) -> int:
    fake = await FakeDiscord(token=args.token).start(args.port)
    try:
        code = await _run(fake, args)
    finally:
        await fake.close()
    return _strictness(fake) or code


def _strictness(fake: FakeDiscord) -> int:
    """Say on stderr what the fake answered; 1 if the bot sent a request it does not implement or crashed it."""
    print(f"fake Discord: {len(fake.requests)} requests answered, {len(fake.unhandled)} unhandled, "
          f"{len(fake.crashes)} crashes", file=sys.stderr)
    for record in fake.unhandled:
        print(f"  unhandled: {record.method} {record.path}", file=sys.stderr)
    for record, exc in fake.crashes:
        print(f"  crashed on {record.method} {record.path}: {exc!r}", file=sys.stderr)
    return 1 if fake.unhandled or fake.crashes else 0


async def _run(fake: FakeDiscord, args: argparse.Namespace) -> int:
    guild = fake.add_guild(args.guild)
    channel = guild.add_text_channel(args.channel)
    user = fake.add_user(args.user, global_name=args.user.title())
    guild.add_member(user)
    _emit({"api_url": fake.api_url, "gateway_url": fake.gateway_url, "token": fake.token,
           "guild_id": guild.id, "channel_id": channel.id})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if args.say is None:
        await stop.wait()
        return 0
    try:
        await fake.wait_connected(timeout=args.timeout)
        await fake.user_says(channel, user, args.say, mention_bot=True)
        await fake.wait_for(lambda: fake.sent_by_bot(channel), timeout=args.timeout)
        await asyncio.sleep(3)  # a streamed reply is edited as it grows
    except TimeoutError as exc:
        _emit({"error": f"no reply from the bot: {exc}"})
        return 1
    reply = fake.sent_by_bot(channel)[0]
    _emit({"reply": reply.content, "username": reply.username})
    return 0


def _emit(record: dict[str, object]) -> None:
    print(json.dumps(record), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments and serve; returns the exit code."""
    args = _parser().parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(_serve(args))
    return 130


if __name__ == "__main__":
    sys.exit(main())
