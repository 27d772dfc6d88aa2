"""Logging set-up for the command line: one level for Troupe, quiet HTTP clients.

httpx logs every request at INFO (``HTTP Request: POST …/tokenize``), several per
reply with a remote backend; httpcore logs its connection plumbing. Those lines are
only useful when debugging, so both loggers are held at WARNING unless the bot's
level is DEBUG.

Each reply writes one INFO line on the :data:`REPLIES` logger (who answered where,
tokens read, time). The console chat shows its replies itself, so there that line
is shown only at DEBUG too.
"""

from __future__ import annotations

import logging
import sys

__all__ = ["FORMAT", "QUIET_LOGGERS", "REPLIES", "configure_logging", "set_level"]

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: libraries whose per-request lines are shown only at DEBUG
QUIET_LOGGERS = ("httpx", "httpcore")
#: the logger of the one line per reply
REPLIES = "bot.replies"


def set_level(level: str | int, *, replies: bool = True) -> None:
    """Use ``level`` for the root logger; HTTP client loggers stay at WARNING unless it is DEBUG.

    With ``replies`` false (the console chat) the per-reply line is also kept for DEBUG."""
    root = logging.getLogger()
    root.setLevel(level)
    quiet = logging.NOTSET if root.level <= logging.DEBUG else logging.WARNING
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(quiet)
    logging.getLogger(REPLIES).setLevel(logging.NOTSET if replies else quiet)


def configure_logging(level: str | int = logging.INFO) -> None:
    """Log to stderr at ``level`` (see :func:`set_level`)."""
    logging.basicConfig(level=level, format=FORMAT, stream=sys.stderr)
    set_level(level)
