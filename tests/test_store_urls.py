"""Store URLs: the engine each names, the config's ``store.url`` and ``store.path``, and a
password that never shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import load_config, parse_config
from bot.errors import ConfigError, StoreError
from bot.store import open_store, redact
from bot.store.urls import scrub, sqlite_path

URL = "postgresql://troupe:s3cr%40t@db.example:5432/troupe"


def test_redact_hides_the_password_and_keeps_the_rest() -> None:
    assert redact(URL) == "postgresql://troupe:***@db.example:5432/troupe"


def test_redact_hides_a_password_given_as_a_parameter() -> None:
    shown = redact("postgresql://troupe@/troupe?host=/run/pg&password=s3cret")
    assert "s3cret" not in shown and "host=/run/pg" in shown


def test_redact_leaves_a_url_without_password_alone() -> None:
    assert redact("postgresql://troupe@db/troupe") == "postgresql://troupe@db/troupe"
    assert redact("sqlite:////data/troupe.db") == "sqlite:////data/troupe.db"


def test_scrub_takes_the_password_out_of_a_driver_message() -> None:
    assert "s3cr" not in scrub(f"could not connect to {URL} as troupe with s3cr@t", URL)


def test_sqlite_urls_are_relative_with_three_slashes_and_absolute_with_four() -> None:
    assert sqlite_path("sqlite:///troupe.db") == Path("troupe.db")
    assert sqlite_path("sqlite:////data/troupe.db") == Path("/data/troupe.db")


async def test_an_unknown_scheme_is_an_error_naming_store_url() -> None:
    with pytest.raises(StoreError, match=r"store\.url: .*scheme 'mysql'") as caught:
        async with open_store("mysql://troupe:s3cret@db/troupe"):
            pass
    assert "s3cret" not in str(caught.value)


def test_config_refuses_an_unknown_scheme_naming_the_key_without_the_password() -> None:
    with pytest.raises(ConfigError, match=r"store\.url: .*scheme 'mongodb'") as caught:
        parse_config({"store": {"url": "mongodb://troupe:s3cret@db/troupe"}})
    assert "s3cret" not in str(caught.value)


def test_config_refuses_both_url_and_path() -> None:
    with pytest.raises(ConfigError, match="store.url or store.path, not both"):
        parse_config({"store": {"url": "sqlite:///a.db", "path": "b.db"}})


def test_store_path_is_a_sqlite_file_beside_the_config(tmp_path: Path) -> None:
    config = parse_config({"store": {"path": "state/troupe.db"}}, source=tmp_path / "config.yaml")
    assert config.store_url() == f"sqlite:///{tmp_path / 'state' / 'troupe.db'}"


def test_the_default_store_is_troupe_db_beside_the_config(tmp_path: Path) -> None:
    config = parse_config({}, source=tmp_path / "config.yaml")
    assert config.store_url() == f"sqlite:///{tmp_path / 'troupe.db'}"


def test_a_relative_sqlite_url_is_beside_the_config_like_store_path(tmp_path: Path) -> None:
    by_url = parse_config({"store": {"url": "sqlite:///state/troupe.db"}}, source=tmp_path / "config.yaml")
    by_path = parse_config({"store": {"path": "state/troupe.db"}}, source=tmp_path / "config.yaml")
    assert by_url.store_url() == by_path.store_url()


def test_the_postgresql_password_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TROUPE_TEST_PG_PASSWORD", "s3cret")
    config = parse_config({"store": {"url": "postgresql://troupe:${TROUPE_TEST_PG_PASSWORD}@db/troupe"}})
    assert config.store_url() == "postgresql://troupe:s3cret@db/troupe"


async def test_an_unreachable_postgresql_is_a_store_error_with_the_url_redacted(tmp_path: Path) -> None:
    url = f"postgresql://troupe:s3cret@/troupe?host={tmp_path}"  # no server listens on this socket folder
    with pytest.raises(StoreError, match=r"unreachable \(postgresql://troupe:\*\*\*@/troupe") as caught:
        async with open_store(url):
            pass
    assert "s3cret" not in str(caught.value)


async def test_an_unwritable_sqlite_file_is_a_store_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file where the folder should be")
    with pytest.raises(StoreError, match="cannot open the store sqlite:///.*taken/troupe.db"):
        async with open_store(f"sqlite:///{tmp_path / 'taken' / 'troupe.db'}"):
            pass


def test_the_example_config_keeps_the_store_in_troupe_db_beside_it() -> None:
    root = Path(__file__).resolve().parent.parent
    assert load_config(root / "config.example.yaml").store_url() == f"sqlite:///{root / 'troupe.db'}"
