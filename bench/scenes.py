"""``python -m bench.scenes``: a scene replay with the real embedded model.

A deterministic replay (``--seed``): three people talk in one channel with a cast of
three (Aria, Captain Brass, Professor Quill). Some messages name a member, some
@mention the bot without naming anyone (the director picks), the rest is chatter;
after each answer the members may answer each other (``--max-chain``). Every reply
goes through the real ``ChatService`` and the embedded model with one conversation
key, so the backend keeps the scene's state between speakers.

Per reply it prints the prompt tokens the model read against the *floor*: the tokens
of what is new since the model's last request (the messages since then and the
closing ``[Speaker]:``, plus the volatile tail of keyed lore and notes, which the
prompt re-reads by design). It also times the director: ``natural`` (pure) and
``model`` (the model writes ``[`` and a name, constrained to the cast's by a grammar;
``--director model``), and its share of a reply's latency (``--reply-tokens 48`` for
replies of a normal length).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from bot.backends.llama_cpp import LlamaCppBackend
from bot.backends.model_files import default_model_path
from bot.cards import CharacterLibrary
from bot.cards.model import Character
from bot.chat import ChatService
from bot.config import LlamaCppConfig, parse_config
from bot.director import first_speaker, member_of, next_in_chain
from bot.prompt.types import Turn
from bot.routing import CastMember, named_members

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
CAST = ("Aria", "Captain Brass", "Professor Quill")
PEOPLE = ("Alice", "Bob", "Cara")
_CHATTER = ("the rain won't stop", "did anyone see the airship?", "I'm hungry", "what a night",
            "the old map is on the table", "someone lost a boot", "the fire is warm")
_ASKS = ("{name}, what do you think?", "{name}, tell us a story", "is that true, {name}?", "{name}, any news?")


@dataclass
class Sample:
    """One character reply: who, what it read, its floor, its latency and the director's cost."""

    speaker: str
    evaluated: int
    floor: int
    seconds: float
    director_seconds: float
    token_seconds: float  # seconds per generated token (nan when it generated none)
    prompt_seconds: float  # until its first token


def _common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


async def _run(args: argparse.Namespace) -> list[Sample]:
    library = CharacterLibrary(ROOT / "characters")
    library.load()
    cast: list[Character] = [library.get(n) for n in CAST]  # type: ignore[misc]
    calls = [CastMember(c.name, (c.display_name, *c.wake_words)) for c in cast]
    members = [member_of(c) for c in cast]
    backend = LlamaCppBackend(LlamaCppConfig(model=str(args.model or default_model_path()), n_ctx=2048, seed=1,
                                             n_threads=args.threads))
    await backend.start()
    config = parse_config({"prompt": {"max_reply_tokens": args.reply_tokens}, "sampling": {"preset": "greedy"}})
    service = ChatService(backend, config)
    rng = random.Random(args.seed)
    turns: list[Turn] = []
    samples: list[Sample] = []
    seen = ""  # what the backend holds for the conversation: its last request and what it wrote
    last_speaker: str | None = None

    async def speak(name: str, director_seconds: float) -> str:
        nonlocal seen, last_speaker
        speaker = next(c for c in cast if c.name == name)
        started = time.perf_counter()
        reply = await service.reply(speaker, turns, conversation="scene", cast=cast)
        text = (await reply.collect()).strip() or "…"
        seconds = time.perf_counter() - started
        new = reply.prompt.text[_common_prefix(reply.prompt.text, seen):]
        floor = service.counter.count(new) if new else 0
        timings = reply.stats.timings
        evaluated = timings.prompt_evaluated if timings and timings.prompt_evaluated is not None else -1
        per_token = timings.generation_seconds / timings.generated_tokens if timings and timings.generated_tokens \
            else float("nan")
        samples.append(Sample(speaker.display_name, evaluated, floor, seconds, director_seconds, per_token,
                              timings.prompt_seconds if timings else 0.0))
        seen = reply.prompt.text + " " + text
        turns.append(Turn(speaker.display_name, text, str(len(turns) + 1), role="character"))
        last_speaker = name
        return text

    async def director(step: int, said: str | None) -> tuple[str | None, float]:
        started = time.perf_counter()
        if args.director == "model":
            nonlocal seen
            name = await service.pick_speaker(cast, turns, conversation="scene")
            picked_at = time.perf_counter()
            prompt = await service.build(cast[0], turns, conversation="scene", cast=cast)
            seen = prompt.text[: prompt.history_end] + "["  # what the pick left in the backend's state
            started += time.perf_counter() - picked_at  # the bench's own bookkeeping is not the director's
            if said is not None and name == last_speaker:
                name = None
            if said is None and name is None:
                name = first_speaker(members, mode="natural", last=last_speaker, seed=len(turns))
        elif said is None:
            name = first_speaker(members, mode="natural", last=last_speaker, seed=len(turns))
        else:
            name = next_in_chain(members, mode="natural", speaker=last_speaker or "", seed=len(turns), step=step)
        return name, time.perf_counter() - started

    try:
        for index in range(args.messages):
            person = PEOPLE[index % len(PEOPLE)]
            roll = rng.random()
            if roll < 0.35:
                text = rng.choice(_ASKS).format(name=rng.choice(["Aria", "Captain", "Professor"]))
            elif roll < 0.55:
                text = "@Troupe " + rng.choice(_CHATTER)
            else:
                text = rng.choice(_CHATTER)
            turns.append(Turn(person, text, str(len(turns) + 1)))
            if roll >= 0.55:
                continue
            named = named_members(text, calls)
            if named:
                first, cost = named[0], 0.0
            else:
                first, cost = await director(0, None)  # type: ignore[assignment]
            said = await speak(first, cost)  # type: ignore[arg-type]
            for step in range(1, args.max_chain + 1):
                others = [m for m in calls if m.name != last_speaker]
                named = named_members(said, others)
                following, cost = (named[0], 0.0) if named else await director(step, said)
                if following is None:
                    break
                said = await speak(following, cost)
    finally:
        await backend.aclose()
    return samples


def main(argv: list[str] | None = None) -> int:
    """Run the replay and print one line per reply and a summary."""
    parser = argparse.ArgumentParser(prog="python -m bench.scenes", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--messages", type=int, default=24, help="people's messages in the replay")
    parser.add_argument("--max-chain", type=int, default=1)
    parser.add_argument("--director", choices=("natural", "model"), default="natural")
    parser.add_argument("--reply-tokens", type=int, default=16, help="prompt.max_reply_tokens")
    parser.add_argument("--model", type=Path)
    parser.add_argument("--threads", type=int)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    samples = asyncio.run(_run(args))
    print(f"{'speaker':<16} {'read':>6} {'floor':>6} {'x floor':>8} {'reply s':>8} {'director s':>10}")
    for s in samples:
        ratio = s.evaluated / s.floor if s.floor else float("nan")
        print(f"{s.speaker:<16} {s.evaluated:>6} {s.floor:>6} {ratio:>8.2f} {s.seconds:>8.2f} {s.director_seconds:>10.3f}")
    steady = samples[1:]  # the first reply reads the whole scene once
    if steady:
        ratios = [s.evaluated / s.floor for s in steady if s.floor]
        picked = [s.director_seconds for s in samples if s.director_seconds > 0] or [0.0]
        print(f"replies: {len(samples)}; after the first: median read/floor {statistics.median(ratios):.2f}, "
              f"max {max(ratios):.2f}; median reply {statistics.median(s.seconds for s in steady):.2f} s; "
              f"director ({args.director}) median {statistics.median(picked):.3f} s where it picked "
              f"({statistics.median(picked) / statistics.median(s.seconds for s in steady):.1%} of the median reply)")
        speeds = [s.token_seconds for s in steady if s.token_seconds == s.token_seconds]
        if speeds:  # greedy replies often end early: what a reply of --reply-tokens would take
            full = statistics.median(s.prompt_seconds for s in steady) + args.reply_tokens * statistics.median(speeds)
            print(f"a {args.reply_tokens}-token reply takes about {full:.2f} s here; the director's median is "
                  f"{statistics.median(picked) / full:.1%} of it")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
