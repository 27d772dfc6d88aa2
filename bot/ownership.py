"""Why a file cannot be written: the owner and mode of the folder, in words an owner can act on.

A container runs the bot as a fixed uid (10001 in Troupe's image, or whatever
``--user`` says); a folder bind-mounted from the host usually belongs to someone else,
and SQLite only says "unable to open database file". :func:`write_hint` says which
uid to give the folder to.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["write_hint"]


def write_hint(path: Path) -> str:
    """A sentence (with a leading "; ") on why this process cannot write ``path``, or "".

    Both the file and its folder are checked: SQLite also creates files beside it.
    """
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    candidates = ([path] if path.exists() else []) + [folder]
    for candidate in candidates:
        try:
            if os.statvfs(candidate).f_flag & os.ST_RDONLY:
                return f"; {candidate} is on a read-only file system: mount a writable volume there"
            if os.access(candidate, os.W_OK):
                continue
            owner = candidate.stat()
        except OSError:
            continue
        uid, gid = os.getuid(), os.getgid()
        instead = f", or run the bot as uid {owner.st_uid}" if owner.st_uid != 0 else ""
        return (
            f"; {candidate} belongs to uid {owner.st_uid} (gid {owner.st_gid}) and the bot runs as uid {uid} "
            f"(gid {gid}): chown -R {uid}:{gid} the folder mounted there{instead}"
        )
    return ""
