"""``python -m bot chat``: talk to a character in the terminal, through the ChatService.

Lines typed are your turns. While the character writes, Ctrl-C interrupts the
reply; at the prompt it quits. Special lines:

    (empty line)     re-roll the character's last reply
    <text            make the character's next reply start with "text"
    !!text           add an out-of-character system note
    /stats           context used, last prompt and generation speed
    /character NAME  switch character (the conversation starts over)
    /cast add NAME   bring a character into the scene (several characters answer)
    /cast remove NAME, /cast list
    /help, /quit

In a scene the character you name answers (else the director's choice, see
``scene.director``), then the others may answer each other (``scene.max_chain``).
"""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
from collections.abc import AsyncIterator, Callable
from typing import TextIO

from bot.cards import CharacterLibrary
from bot.cards.model import Character
from bot.chat import ChatService, ReplyStats
from bot.director import first_speaker, member_of, next_in_chain
from bot.errors import BotError, SceneError
from bot.prompt.macros import expand_macros
from bot.prompt.types import Turn
from bot.routing import CastMember, named_members

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
        cast: list[Character] | None = None,
    ) -> None:
        self.service = service
        self.library = library
        self.character = character
        self.user_name = user_name
        self.out = out
        self.cast: list[Character] = list(cast or [])  # a scene (two or more), else empty
        self.turns: list[Turn] = []
        self._next_id = 0

    # ------------------------------------------------------------------ one shot

    async def one_reply(self, message: str) -> str:
        """Answer one message (after the greeting) and return the reply text; in a scene,
        every character turn it started, ``Name: text`` one per line."""
        self._start_conversation(show=False)
        self._add(self.user_name, message, "user")
        if len(self.cast) > 1:
            said: list[str] = []
            async for speaker in self._scene_speakers(message):
                reply = await self.service.reply(speaker, self.turns, conversation=_CONVERSATION,
                                                 user_name=self.user_name, cast=self.cast)
                text = (await reply.collect()).strip()
                said.append(f"{speaker.display_name}: {' '.join(text.split())}")
                self._add(speaker.display_name, text, "character")
                if not text:
                    break
            return "\n".join(said)
        reply = await self.service.reply(
            self.character, self.turns, conversation=_CONVERSATION, user_name=self.user_name
        )
        return await reply.collect()

    async def _scene_speakers(self, message: str) -> AsyncIterator[Character]:
        """Who answers ``message``: the members it names (or the director's choice), then
        a chain of members answering each other, up to ``scene.max_chain`` turns (each
        chosen after the previous one spoke)."""
        scene = self.service.config.scene
        by_name = {c.name: c for c in self.cast}
        members = [member_of(c) for c in self.cast]
        seed = f"console:{self._next_id}"
        named = named_members(message, _calls(self.cast))
        first = list(named if scene.answer_all_named else named[:1])
        if not first and scene.director == "model":
            picked = await self.service.pick_speaker(self.cast, self.turns, conversation=_CONVERSATION,
                                                     user_name=self.user_name)
            first = [picked] if picked else []
        if not first:
            mode = "list" if scene.director == "list" else "natural"
            first = [first_speaker(members, mode=mode, last=self._last_speaker(), seed=seed)]
        for name in first:
            yield by_name[name]
        speaker = first[-1]
        for step in range(1, scene.max_chain + 1):
            said = self.turns[-1].text if self.turns and self.turns[-1].role == "character" else ""
            others = [m for m in _calls(self.cast) if m.name != speaker]
            said_to = named_members(said, others)
            following: str | None
            if scene.director == "model":
                following = said_to[0] if said_to else await self.service.pick_speaker(
                    self.cast, self.turns, conversation=_CONVERSATION, user_name=self.user_name)
                following = None if following == speaker else following
            else:
                following = next_in_chain(members, mode=scene.director, speaker=speaker,
                                          named=said_to, seed=seed, step=step)
            if following is None:
                return
            speaker = following
            yield by_name[following]

    def _last_speaker(self) -> str | None:
        for turn in reversed(self.turns):
            if turn.role == "character":
                return next((c.name for c in self.cast if c.display_name == turn.speaker), None)
        return None

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
        elif line.startswith("/cast"):
            self._cast_command(line.removeprefix("/cast").strip())
        elif line == "":
            await self._reroll()
        elif line.startswith("<"):
            await self._respond(prefill=line[1:].strip())
        elif line.startswith("!!"):
            self._add("System", line[2:].strip(), "system")
            self._write("(note added)\n")
        else:
            self._add(self.user_name, line, "user")
            if len(self.cast) > 1:
                await self._respond_scene(line)
            else:
                await self._respond()
        return True

    async def _switch(self, name: str) -> None:
        found = self.library.get(name) if name else None
        if found is None:
            self._write(f"No character {name!r}. Available: {', '.join(self.library.names())}\n")
            return
        self.character = found
        self.cast = []
        self.turns.clear()
        await self.service.conversations.start_over(_CONVERSATION)
        self._start_conversation(show=True)

    def _cast_command(self, args: str) -> None:
        action, _, name = args.partition(" ")
        members = self.cast or [self.character]
        if action == "list" or not action:
            self._write("Cast: " + ", ".join(c.display_name for c in members) + "\n")
            return
        found = self.library.get(name.strip()) if name.strip() else None
        if action not in ("add", "remove") or found is None:
            self._write(f"Usage: /cast add|remove NAME, /cast list. Characters: {', '.join(self.library.names())}\n")
            return
        try:
            self.cast = _changed_cast(members, found, action, most=self.service.config.scene.max_cast)
        except SceneError as exc:
            self._write(f"({exc})\n")
            return
        self.character = self.cast[0]
        if len(self.cast) == 1:
            self.cast = []
        self._write("Cast: " + ", ".join(c.display_name for c in self.cast or [self.character]) + "\n")
        greeting = [g for g in found.group_only_greetings if g.strip()] if action == "add" else []
        if greeting:
            text = expand_macros(greeting[0], char=found.display_name, user=self.user_name).strip()
            self._add(found.display_name, text, "character")
            self._write(f"{found.display_name}: {text}\n")

    async def _reroll(self) -> None:
        if not self.turns or self.turns[-1].role != "character":
            self._write("(nothing to re-roll)\n")
            return
        last = self.turns.pop()
        speaker = next((c for c in self.cast if c.display_name == last.speaker), None)
        if speaker is None:
            await self._respond()
            return
        self.character = speaker
        try:
            await self._respond()
        finally:
            self.character = self.cast[0]

    async def _respond_scene(self, line: str) -> None:
        try:
            async for speaker in self._scene_speakers(line):
                self.character = speaker
                if not await self._respond():
                    return
        finally:
            self.character = self.cast[0]

    async def _respond(self, prefill: str = "") -> bool:
        """The current character's reply, streamed; False when it was interrupted, failed or empty."""
        name = self.character.display_name
        self._write(f"{name}: {prefill}")
        written: list[str] = []
        task = asyncio.ensure_future(self._stream(prefill, written))
        restore = _interrupt_cancels(task)  # from the start: reading the prompt can take a while too
        interrupted = False
        try:
            await task
        except asyncio.CancelledError:
            self._write(" [interrupted]")
            interrupted = True
        except BotError as exc:
            self._write(f"\n(error: {exc})\n")
            return False
        finally:
            restore()
        text = (prefill + "".join(written)).strip()
        self._write("\n")
        if text:
            self._add(name, text, "character")
        return bool(text) and not interrupted

    async def _stream(self, prefill: str, written: list[str]) -> None:
        reply = await self.service.reply(
            self.character, self.turns, conversation=_CONVERSATION, user_name=self.user_name, prefill=prefill,
            cast=self.cast,
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


def _calls(cast: list[Character]) -> list[CastMember]:
    return [CastMember(c.name, tuple(dict.fromkeys((c.display_name, c.name, *c.wake_words)))) for c in cast]


def _changed_cast(members: list[Character], character: Character, action: str, *, most: int) -> list[Character]:
    names = [c.name for c in members]
    if action == "add":
        if character.name in names:
            raise SceneError(f"{character.display_name} is already in the scene")
        if len(members) >= most:
            raise SceneError(f"the scene is full ({most} characters at most; scene.max_cast)")
        return [*members, character]
    if character.name not in names:
        raise SceneError(f"{character.display_name} is not in the scene")
    if len(members) == 1:
        raise SceneError(f"{character.display_name} is the only one left")
    return [c for c in members if c.name != character.name]


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
