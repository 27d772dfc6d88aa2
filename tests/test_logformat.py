"""Log output: JSON lines and the secret mask."""

from __future__ import annotations

import json
import logging

from bot.config import parse_config
from bot.logformat import JsonFormatter, SecretMask, secrets_of


def record(message: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("bot.test", logging.WARNING, __file__, 1, message, args, None)


def test_a_json_log_line_is_one_object_with_time_level_logger_and_message() -> None:
    line = JsonFormatter().format(record("Backend %s is down: %s", "pool", 'said "no"\nthen left'))
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "WARNING" and entry["logger"] == "bot.test"
    assert entry["message"] == 'Backend pool is down: said "no"\nthen left'
    assert entry["time"].endswith("+00:00")


def test_the_secret_mask_hides_a_secret_that_reaches_a_message() -> None:
    entry = record("connecting with %s", "sk-very-secret")
    SecretMask(["sk-very-secret"]).filter(entry)
    assert entry.getMessage() == "connecting with ***"


def test_the_config_secrets_include_tokens_keys_and_the_store_password() -> None:
    config = parse_config({
        "discord": {"token": "abc.def.ghi"},
        "backend": {"type": "pool", "members": [{"type": "openai", "url": "http://x", "api_key": "key-123"}]},
        "store": {"url": "postgresql://troupe:pa55word@db/troupe"},
    })
    assert set(secrets_of(config)) == {"abc.def.ghi", "key-123", "pa55word"}
