"""Client-side stop strings for a streamed reply.

Several servers ignore or only partly honour ``stop``, so the reply is cut again
here. :class:`StopScanner` is fed the stream chunk by chunk and returns only text
that can no longer turn out to be part of a stop: a tail that could be the start
of a stop is held back until the next chunk decides it. The reply is cut at the
earliest stop, wherever the chunk boundaries fall, and nothing after it is emitted.

The reply is also tidied: a leading ``[Character]:`` (the model repeating the line
opener, common in chat mode) is removed, leading whitespace is dropped, and trailing
whitespace is held back so the end of the reply is never blank.

Each ``feed`` costs O((chunk + longest stop) x number of stops); the reply so far is
never rescanned.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.prompt.transcript import sanitize_name

__all__ = ["StopScanner"]

_TAG_MAX = 2 + 64 + 2  # "[" + a sanitised name + "]:" with room to spare


class StopScanner:
    """Cut a streamed reply at the first stop string, even one split across chunks.

    ``character_name``, when given, is the character whose ``[Name]:`` is trimmed from
    the start of the reply; a reply that starts with any other ``[Name]:`` is stopped
    at once (it is another speaker's turn, not the character's). ``strip_leading=False`` keeps leading whitespace (for a
    reply continuing a prefill). ``trim_trailing=False`` keeps trailing whitespace too: with
    both off and no ``character_name`` the text is only cut at the stop, byte for byte
    (``serve``'s raw completions).
    """

    def __init__(
        self,
        stops: Sequence[str],
        *,
        character_name: str | None = None,
        strip_leading: bool = True,
        trim_trailing: bool = True,
    ) -> None:
        self.stops: tuple[str, ...] = tuple(dict.fromkeys(s for s in stops if s))
        self._prefixes = frozenset(s[:i] for s in self.stops for i in range(1, len(s)))
        self._hold = max((len(s) for s in self.stops), default=1) - 1
        self._marker = f"[{sanitize_name(character_name)}]:" if character_name else ""
        self._strip_leading = strip_leading
        self._trim_trailing = trim_trailing
        self._deciding = bool(self._marker)
        self._lead = ""  # raw start of the reply while it may still be the marker
        self._pending = ""  # raw tail that may be the start of a stop
        self._space = ""  # trailing whitespace held back
        self._started = False
        self._finished = False
        #: whether a stop string was found
        self.stopped = False
        #: the stop string that ended the reply, if any (of several starting at the cut,
        #: the longest one complete in the text seen so far)
        self.stop: str | None = None

    def feed(self, text: str) -> str:
        """Take the next chunk; return the text that is safe to show now."""
        if self.stopped or self._finished or not text:
            return ""
        if self._deciding:
            decided = self._decide(text)
            if decided is None:
                return ""
            text = decided
        return self._scan(text)

    def finish(self) -> str:
        """The end of the stream: return what was held back (without trailing whitespace)."""
        if self.stopped or self._finished:
            return ""
        out = ""
        if self._deciding:
            self._deciding = False
            if self._lead.strip():
                out = self._scan(self._lead)
            self._lead = ""
        if not self.stopped:
            out += self._emit(self._pending)
        self._pending = ""
        self._space = ""
        self._finished = True
        return out

    def _decide(self, text: str) -> str | None:
        """Raw text to scan once the reply's start is known; None while it is undecided.

        A reply opening with the character's own ``[Name]:`` has it trimmed; one opening
        with anybody else's ``[Name]:`` is the model writing another person's turn, so
        the reply stops before it begins.
        """
        self._lead += text
        body = self._lead.lstrip()
        if not body:
            return None
        if not body.startswith("["):
            return self._decided(self._lead)
        close = body.find("]")
        if close < 0:
            too_long = "\n" in body or len(body) > _TAG_MAX
            return self._decided(self._lead) if too_long else None
        after = body[close + 1 :].lstrip(" \t")
        if not after:
            return self._decided(self._lead) if len(body) > _TAG_MAX else None
        if not after.startswith(":"):
            return self._decided(self._lead)
        tag = body[: close + 1] + ":"
        if tag == self._marker:
            return self._decided(after[1:])
        self._deciding, self._lead = False, ""
        self.stopped, self.stop = True, tag
        return None

    def _decided(self, text: str) -> str:
        self._deciding, self._lead = False, ""
        return text

    def _scan(self, text: str) -> str:
        window = self._pending + text
        found, hit = -1, ""
        for stop in self.stops:
            index = window.find(stop)
            if index >= 0 and (found < 0 or index < found or (index == found and len(stop) > len(hit))):
                found, hit = index, stop
        if found >= 0:
            self.stopped, self.stop = True, hit
            self._pending = ""
            out = self._emit(window[:found])
            self._space = ""
            return out
        keep = 0
        for size in range(min(len(window), self._hold), 0, -1):
            if window[-size:] in self._prefixes:
                keep = size
                break
        self._pending = window[len(window) - keep:]
        return self._emit(window[: len(window) - keep])

    def _emit(self, text: str) -> str:
        if not self._started and self._strip_leading:
            text = text.lstrip()
        text = self._space + text
        body = text.rstrip() if self._trim_trailing else text
        self._space = text[len(body):]
        if body:
            self._started = True
        return body
