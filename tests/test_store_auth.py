"""The PostgreSQL password comes from the environment and never shows: tested against a server
of this module's own that asks for passwords (scram-sha-256) from every role but its superuser."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from postgres_fixtures import PostgresServer, start_postgres

from bot.config import parse_config
from bot.errors import StoreError
from bot.store import open_store

PASSWORD = "c0rrect-h0rse"
_HBA = "local all postgres trust\nlocal all all scram-sha-256\n"


@pytest.fixture(scope="module")
def password_server() -> Iterator[PostgresServer]:
    server = start_postgres()
    (server.embedded.pgdata / "pg_hba.conf").write_text(_HBA)
    server.sql("SELECT pg_reload_conf()")
    server.sql(f"CREATE ROLE troupe LOGIN PASSWORD '{PASSWORD}'")
    server.sql("CREATE DATABASE troupe OWNER troupe")
    yield server
    server.close()


def _url(server: PostgresServer, credentials: str) -> str:
    return server.url("troupe").replace("postgres:@", f"{credentials}@")


async def test_the_password_comes_from_pgpassword_when_the_url_has_none(
    password_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    async with open_store(_url(password_server, "troupe")) as store:
        await store.set_note(1, "in")
        assert (await store.channel(1)).note == "in"


async def test_the_password_comes_from_a_variable_in_the_configs_url(
    password_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("TROUPE_DB_PASSWORD", PASSWORD)
    config = parse_config({"store": {"url": _url(password_server, "troupe:${TROUPE_DB_PASSWORD}")}})
    async with open_store(config.store_url()) as store:
        assert (await store.info()).url.startswith("postgresql://troupe:***@")


async def test_a_wrong_password_is_a_store_error_that_does_not_show_it(
    password_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PGPASSWORD", raising=False)
    with pytest.raises(StoreError, match="password authentication failed") as caught:
        async with open_store(_url(password_server, "troupe:wr0ng-h0rse")):
            pass
    assert "wr0ng-h0rse" not in str(caught.value) and "postgresql://troupe:***@" in str(caught.value)
