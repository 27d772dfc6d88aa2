"""Log output: ``log_format: text`` (lines for people) or ``json`` (one object per line for
log collectors), with the config's secrets masked wherever a message would show them."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from urllib.parse import urlsplit

from pydantic import BaseModel, SecretStr

__all__ = ["JsonFormatter", "SecretMask", "use_format", "json_logging", "secrets_of", "TEXT_FORMAT"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_MASK = "***"


class SecretMask(logging.Filter):
    """Replaces each secret's text in a record's message with ``***`` (a last guard: the code
    never logs secrets on purpose)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            masked = message
            for secret in self.secrets:
                masked = masked.replace(secret, _MASK)
            if masked != message:
                record.msg, record.args = masked, None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, and the
    traceback as ``exception`` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False)


def use_format(log_format: str, secrets: Iterable[str] = ()) -> None:
    """Set the root logger's handlers' format (``text`` or ``json``) and secret mask."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig()
    mask = SecretMask(secrets)
    for handler in root.handlers:
        handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
        for old in [f for f in handler.filters if isinstance(f, SecretMask)]:
            handler.removeFilter(old)
        handler.addFilter(mask)


def json_logging() -> bool:
    """Whether the root logger writes JSON lines (``log_format: json``)."""
    return any(isinstance(handler.formatter, JsonFormatter) for handler in logging.getLogger().handlers)


def secrets_of(model: BaseModel) -> list[str]:
    """Every secret a config holds: its ``SecretStr`` values and any password in ``store.url``."""
    found = [value for value in _secret_values(model) if value]
    store = getattr(model, "store", None)
    url = getattr(store, "url", None)
    if isinstance(url, str) and "://" in url:
        try:
            password = urlsplit(url).password
        except ValueError:
            password = None
        if password:
            found.append(password)
    return found


def _secret_values(value: object) -> Iterator[str]:
    if isinstance(value, SecretStr):
        yield value.get_secret_value()
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _secret_values(getattr(value, name))
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _secret_values(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _secret_values(item)
