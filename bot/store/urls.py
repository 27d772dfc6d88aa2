"""Store URLs: which engine a URL names, where a SQLite file is, and how a URL is shown.

``sqlite:///troupe.db`` is a file relative to the config's folder, ``sqlite:////data/troupe.db``
an absolute one (SQLAlchemy's spelling); ``postgresql://user:password@host:port/db`` (or
``postgres://``) a PostgreSQL database, as libpq reads it. A password never appears in what
Troupe logs or prints: :func:`redact` replaces it with ``***``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from bot.errors import StoreError

if TYPE_CHECKING:
    from bot.config import Config

__all__ = ["scheme_of", "sqlite_path", "sqlite_url", "redact", "scrub", "password_of", "store_url", "SCHEMES"]

#: every scheme a store URL may have, by engine
SCHEMES: dict[str, str] = {"sqlite": "sqlite", "postgresql": "postgresql", "postgres": "postgresql"}


def scheme_of(url: str) -> str:
    """The engine a URL names (``sqlite`` or ``postgresql``); StoreError naming ``store.url`` if none."""
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme not in SCHEMES:
        shown = f"scheme {scheme!r}" if scheme else "no scheme"
        raise StoreError(
            f"store.url: {redact(url)!r} has {shown}; use sqlite:///path/to/troupe.db or "
            "postgresql://user:password@host:port/db"
        )
    return SCHEMES[scheme]


def sqlite_path(url: str) -> Path:
    """The file a ``sqlite:///`` URL names (relative paths stay relative)."""
    rest = url.split("://", 1)[1]
    if not rest.startswith("/") or rest == "/":
        raise StoreError(f"store.url: {url!r} names no file; write sqlite:///troupe.db or sqlite:////abs/path.db")
    return Path(os.path.expanduser(rest[1:]))


def sqlite_url(path: str | Path) -> str:
    """The ``sqlite:///`` URL of a file path."""
    return f"sqlite:///{path}"


def password_of(url: str) -> str | None:
    """The password written in a URL (its user part or a ``password=`` parameter), if any."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return None
    for key, value in parse_qsl(parts.query):
        if key == "password":
            password = value
    return password or None


def redact(url: str) -> str:
    """``url`` with its password (if any) shown as ``***``."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # e.g. a bad port: show nothing of the credentials
        return url.split("://", 1)[0] + "://***"
    params = parse_qsl(parts.query, keep_blank_values=True)
    if password is None and not any(k == "password" for k, _ in params):
        return url
    netloc = parts.netloc
    if password is not None:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.partition(':')[0]}:***@{host}"
    query = urlencode([(k, "***" if k == "password" else v) for k, v in params], safe="/:")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def scrub(text: str, url: str) -> str:
    """``text`` (e.g. a driver's error message) with ``url``'s password taken out."""
    text = text.replace(url, redact(url))
    password = password_of(url)
    if password:
        for spelling in {password, unquote(password), quote(unquote(password), safe="")}:
            text = text.replace(spelling, "***")
    return text


def store_url(config: Config) -> str:
    """The store the config names: ``store.url``, else ``store.path`` as a SQLite file; a relative
    SQLite path is resolved against the config file's folder."""
    url = config.store.url or sqlite_url(config.store.path)
    if scheme_of(url) == "sqlite":
        return sqlite_url(config.resolve_path(sqlite_path(url)))
    return url
