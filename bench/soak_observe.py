"""What the soak watches: the fate of every mention, and the bot process's memory and loop lag.

:class:`Outcomes` listens to the fake Discord's events: a mention is *answered* when a
message from the bot (or its webhook) in the same channel reads ``ack <channel>-<n>``,
*turned away* when the bot reacts to it (busy or cooldown); what is neither at the end
is lost. Only unresolved mentions are kept, so its memory does not grow with the run.
:class:`ProcessSampler` reads a process's RSS and CPU time from ``/proc`` and the
loop-lag lines the bot appends to ``TROUPE_LAG_LOG`` (see ``bot/looplag.py``).
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Outcomes", "ProcessSampler", "Sample", "LagSample", "ACK", "ack_for"]

#: the tag each mention carries and the fake model echoes: ``load-<channel id>-<n>``
TAG = re.compile(r"load-(\d+)-(\d+)")
ACK = re.compile(r"^ack (\d+)-(\d+)$")


def ack_for(prompt: str) -> list[str]:
    """The fake model's reply: acknowledge the newest tagged message of the prompt."""
    found = TAG.findall(prompt)
    if not found:
        return ["no tag"]
    channel, number = found[-1]
    return ["ack ", f"{channel}-{number}"]


@dataclass
class Outcomes:
    """Counts answered / turned-away / wrong-channel replies from the fake Discord's events."""

    bot_user_id: int
    is_from_bot: Any  # FakeDiscord.is_from_bot
    pending: dict[tuple[int, int], tuple[int, float]] = field(default_factory=dict)  # (channel, n) -> (message id, sent)
    by_message: dict[int, tuple[int, int]] = field(default_factory=dict)
    sent: int = 0
    answered: int = 0
    turned_away: dict[str, int] = field(default_factory=dict)  # emoji -> count
    wrong_channel: int = 0
    other_bot_messages: dict[str, int] = field(default_factory=dict)  # content -> count (errors, fallbacks)
    latencies: list[float] = field(default_factory=list)  # seconds from mention to its ack, per window

    def mentioned(self, channel_id: int, number: int, message_id: int) -> None:
        """A mention tagged ``load-<channel_id>-<number>`` was posted as ``message_id``."""
        self.pending[(channel_id, number)] = (message_id, time.monotonic())
        self.by_message[message_id] = (channel_id, number)
        self.sent += 1

    def on_event(self, event: Any) -> None:
        """A gateway event from the fake's world (subscribe with ``fake.world.subscribe``)."""
        if event.name in ("MESSAGE_CREATE", "MESSAGE_UPDATE") and event.message is not None:
            message = event.message
            if not self.is_from_bot(message):
                return
            found = ACK.match(message.content)
            if found is None:
                if event.name == "MESSAGE_CREATE" and not message.content.startswith("ack"):  # not a reply's first piece
                    self.other_bot_messages[message.content[:60]] = self.other_bot_messages.get(message.content[:60], 0) + 1
                return
            key = (int(found.group(1)), int(found.group(2)))
            if key[0] != message.channel.id:
                self.wrong_channel += 1
            resolved = self.pending.pop(key, None)
            if resolved is not None:
                self.by_message.pop(resolved[0], None)
                self.answered += 1
                self.latencies.append(time.monotonic() - resolved[1])
        elif event.name == "MESSAGE_REACTION_ADD" and int(event.data["user_id"]) == self.bot_user_id:
            key = self.by_message.pop(int(event.data["message_id"]), None)
            if key is not None and self.pending.pop(key, None) is not None:
                emoji = event.data["emoji"]["name"]
                self.turned_away[emoji] = self.turned_away.get(emoji, 0) + 1

    @property
    def unresolved(self) -> int:
        """Mentions neither answered nor turned away (yet)."""
        return len(self.pending)

    def take_latencies(self) -> list[float]:
        """The reply latencies since the last call."""
        taken, self.latencies = self.latencies, []
        return taken


@dataclass(frozen=True)
class LagSample:
    """The bot's largest loop lag within one second."""

    at: float  # unix time
    lag_ms: float
    own_ms: float  # the part of the lag the bot spent running (the rest: the machine gave it no CPU)
    gc_ms: float  # the bot's longest garbage collection in that second


@dataclass(frozen=True)
class Sample:
    """One look at the bot process."""

    at: float  # seconds since the load started
    rss_mb: float
    cpu_seconds: float


class ProcessSampler:
    """RSS and CPU time of a process from ``/proc``, and the lag lines of its ``TROUPE_LAG_LOG``."""

    def __init__(self, pid: int, lag_log: Path) -> None:
        self.pid = pid
        self.lag_log = lag_log
        self._offset = 0
        self._partial = ""

    def rss_mb(self) -> float:
        """Resident memory now (VmRSS), MB."""
        for line in Path(f"/proc/{self.pid}/status").read_text(encoding="utf-8").splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"no VmRSS for process {self.pid}")

    def cpu_seconds(self) -> float:
        """User + system CPU time used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text(encoding="utf-8").rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def new_lag(self) -> list[LagSample]:
        """Lag lines written since the last call."""
        try:
            with self.lag_log.open("r", encoding="utf-8") as file:
                file.seek(self._offset)
                text = file.read()
                self._offset = file.tell()
        except FileNotFoundError:
            return []
        text, self._partial = self._partial + text, ""
        lines = text.split("\n")
        self._partial = lines.pop()  # an unfinished last line waits for the next read
        samples = []
        for line in lines:
            at, lag, own, gc_ms = line.split()
            samples.append(LagSample(float(at), float(lag), float(own), float(gc_ms)))
        return samples
