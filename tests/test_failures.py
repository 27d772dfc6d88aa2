"""One failure mapping for every front end: the words people read and the HTTP status."""

from __future__ import annotations

import pytest

from bot.errors import (
    BackendError,
    BackendHTTPError,
    BackendTimeout,
    BackendUnavailable,
    CardError,
    ContextOverflow,
    StoreError,
    UnsupportedOperation,
)
from bot.failures import describe, user_message


@pytest.mark.parametrize(
    ("error", "status", "code", "words"),
    [
        (BackendUnavailable("refused"), 503, "unavailable", "isn't reachable"),
        (BackendTimeout("slow"), 504, "timeout", "took too long"),
        (ContextOverflow("5000 > 4096"), 400, "context_length_exceeded", "too long for my model"),
        (UnsupportedOperation("no loading"), 501, "unsupported", "can't do that"),
        (BackendHTTPError("CUDA error", status=500), 502, "upstream_error", "failed to answer"),
        (BackendError("odd"), 500, None, "failed to answer"),
    ],
)
def test_each_backend_failure_has_its_words_and_status(error, status, code, words):
    failure = describe(error)

    assert (failure.status, failure.code) == (status, code)
    assert words in failure.text


def test_backend_detail_is_not_shown_to_people():
    assert "CUDA" not in user_message(BackendHTTPError("CUDA error", status=500))


def test_other_bot_errors_say_their_own_message():
    assert user_message(CardError("aria.yaml", "bad YAML")) == "aria.yaml: bad YAML"


def test_an_unexpected_error_is_a_plain_apology_without_its_detail():
    text = user_message(KeyError("secret-ish internals"))

    assert "secret" not in text and "log" in text


def test_a_store_failure_hides_the_database_path():
    text = user_message(StoreError("store write failed (/srv/troupe/troupe.db): disk I/O error"))

    assert "troupe.db" not in text and "saved state" in text
