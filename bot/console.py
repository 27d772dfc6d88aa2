"""``python -m bot chat``: talk to a character in the terminal, through the ChatService.

Lines typed are your turns. While the character writes, Ctrl-C interrupts the
reply; at the prompt it quits. Special lines:

    (empty line)     re-roll the character's last reply
    <text            make the character's next reply start with "text"
    !!text           add an out-of-character system note
    /stats           context used, last prompt and generation speed
    /character NAME  switch character (the conversation starts over)
    /help, /quit
"""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
from collections.abc import Callable
from typing import TextIO

from bot.cards import CharacterLibrary
from bot.cards.model import Character
from bot.chat import ChatService, ReplyStats
from bot.errors import BotError
from bot.prompt.macros import expand_macros
from bot.prompt.types import Turn

__all__ = ["ConsoleChat", "format_stats", "stdin_lines"]

HELP = __doc__.split("\n\n", 1)[1].strip() if __doc__ else ""
_CONVERSATION = "console"


def format_stats(stats: ReplyStats | None) -> str:
    """The /stats text shared by the console (and mirrored by Discord's /stats)."""
    if stats is None:
        return "No reply yet."
    lines = [
        *([f"cast: {', '.join(stats.cast)}", f"last speaker: {stats.speaker}"] if stats.cast else []),
        f"backend: {stats.backend}",
        f"context used: {stats.prompt_tokens} / {stats.n_ctx} tokens (prompt budget {stats.budget})",
        f"history: {stats.turns_kept} turns kept, {stats.turns_dropped} dropped",
    ]
    if stats.prompt_format:
        lines.append(f"prompt format: {stats.prompt_format}")
    t = stats.timings
    if t is not None:
        read = f"{t.prompt_evaluated} of {t.prompt_tokens}" if t.prompt_evaluated is not None else f"{t.prompt_tokens}"
        speed = t.prompt_tokens_per_second
        lines.append(
            f"last prompt: {read} tokens read in {t.prompt_seconds:.2f} s"
            + (f" ({speed:.0f} tokens/s)" if speed else "")
        )
        gen = t.generation_tokens_per_second
        lines.append(
            f"generation: {t.generated_tokens} tokens in {t.generation_seconds:.2f} s"
            + (f" ({gen:.1f} tokens/s)" if gen else "")
        )
    lines.append(f"reply took {stats.seconds_total:.2f} s" + (f", stopped at {stats.stop!r}" if stats.stop else ""))
    return "\n".join(lines)


class ConsoleChat:
    """An interactive (or one-shot) terminal conversation with one character."""

    def __init__(
        self,
        service: ChatService,
        library: CharacterLibrary,
        character: Character,
        *,
        user_name: str,
        out: TextIO = sys.stdout,
    ) -> None:
        self.service = service
        self.library = library
        self.character = character
        self.user_name = user_name
        self.out = out
        self.turns: list[Turn] = []
        self._next_id = 0

    # ------------------------------------------------------------------ one shot

    async def one_reply(self, message: str) -> str:
        """Answer one message (after the greeting) and return the reply text."""
        self._start_conversation(show=False)
        self._add(self.user_name, message, "user")
        reply = await self.service.reply(
            self.character, self.turns, conversation=_CONVERSATION, user_name=self.user_name
        )
        return await reply.collect()

    # ------------------------------------------------------------------ interactive

    async def run(self, lines: asyncio.Queue[str | None]) -> None:
        """Read lines from ``lines`` (None = end of input) until /quit or EOF."""
        self._write(f"Chatting with {self.character.display_name}. /help for commands, Ctrl-C to quit.\n")
        self._start_conversation(show=True)
        while True:
            self._write(f"{self.user_name}> ")
            line = await lines.get()
            if line is None:
                self._write("\n")
                return
            if not await self._handle(line.rstrip("\n")):
                return

    async def _handle(self, line: str) -> bool:
        if line in ("/quit", "/exit"):
            return False
        if line == "/help":
            self._write(HELP + "\n")
        elif line == "/stats":
            self._write(format_stats(self.service.last_stats(_CONVERSATION)) + "\n")
        elif line.startswith("/character"):
            await self._switch(line.removeprefix("/character").strip())
        elif line == "":
            await self._reroll()
        elif line.startswith("<"):
            await self._respond(prefill=line[1:].strip())
        elif line.startswith("!!"):
            self._add("System", line[2:].strip(), "system")
            self._write("(note added)\n")
        else:
            self._add(self.user_name, line, "user")
            await self._respond()
        return True

    async def _switch(self, name: str) -> None:
        found = self.library.get(name) if name else None
        if found is None:
            self._write(f"No character {name!r}. Available: {', '.join(self.library.names())}\n")
            return
        self.character = found
        self.turns.clear()
        await self.service.conversations.start_over(_CONVERSATION)
        self._start_conversation(show=True)

    async def _reroll(self) -> None:
        if not self.turns or self.turns[-1].role != "character":
            self._write("(nothing to re-roll)\n")
            return
        self.turns.pop()
        await self._respond()

    async def _respond(self, prefill: str = "") -> None:
        name = self.character.display_name
        self._write(f"{name}: {prefill}")
        written: list[str] = []
        task = asyncio.ensure_future(self._stream(prefill, written))
        restore = _interrupt_cancels(task)  # from the start: reading the prompt can take a while too
        try:
            await task
        except asyncio.CancelledError:
            self._write(" [interrupted]")
        except BotError as exc:
            self._write(f"\n(error: {exc})\n")
            return
        finally:
            restore()
        text = (prefill + "".join(written)).strip()
        self._write("\n")
        if text:
            self._add(name, text, "character")

    async def _stream(self, prefill: str, written: list[str]) -> None:
        reply = await self.service.reply(
            self.character, self.turns, conversation=_CONVERSATION, user_name=self.user_name, prefill=prefill
        )
        async for piece in reply:
            written.append(piece)
            self._write(piece)

    # ------------------------------------------------------------------ helpers

    def _start_conversation(self, *, show: bool) -> None:
        greeting = expand_macros(
            self.character.first_mes, char=self.character.display_name, user=self.user_name
        ).strip()
        if greeting:
            self._add(self.character.display_name, greeting, "character")
            if show:
                self._write(f"{self.character.display_name}: {greeting}\n")

    def _add(self, speaker: str, text: str, role: str) -> None:
        self._next_id += 1
        self.turns.append(Turn(speaker=speaker, text=text, id=str(self._next_id), role=role))  # type: ignore[arg-type]

    def _write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()


def _interrupt_cancels(task: asyncio.Future[object]) -> Callable[[], None]:
    """While ``task`` runs, Ctrl-C cancels it instead of quitting; returns the undo."""
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGINT, task.cancel)
    except (NotImplementedError, RuntimeError):  # not the main thread, or no signals here
        return lambda: None
    return lambda: loop.remove_signal_handler(signal.SIGINT)


def stdin_lines(stream: TextIO = sys.stdin) -> asyncio.Queue[str | None]:
    """Lines of ``stream`` delivered to the loop by a daemon thread (never blocks the loop)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def read() -> None:
        for line in stream:
            loop.call_soon_threadsafe(queue.put_nowait, line)
        loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=read, name="stdin-reader", daemon=True).start()
    return queue
