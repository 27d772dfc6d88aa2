"""pytest fixtures: a started :class:`FakeDiscord` with discord.py pointed at it.

Import them from ``tests/conftest.py``: ``from fakediscord.fixtures import fake_discord``.

At teardown the fixture fails the test when the client sent a request the fake does not
implement (``fake.unhandled``) or a request crashed the fake (``fake.crashes``): either
means the test did not exercise what it meant to. A test that sends such requests on
purpose says so with ``@pytest.mark.fake_discord_unhandled_ok`` (crashes still fail it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from .patch import patch_discordpy
from .server import FakeDiscord

__all__ = ["fake_discord", "UNHANDLED_OK", "check_clean"]

#: the marker of a test that sends unimplemented requests to the fake on purpose
UNHANDLED_OK = "fake_discord_unhandled_ok"


def check_clean(fake: FakeDiscord, *, unhandled_ok: bool = False) -> None:
    """Fail unless every request reached a route the fake implements (unless ``unhandled_ok``),
    and none crashed it."""
    problems = [] if unhandled_ok else [f"unhandled: {r.method} {r.path}" for r in fake.unhandled]
    problems += [f"fake crashed on {r.method} {r.path}: {exc!r}" for r, exc in fake.crashes]
    if problems:
        pytest.fail("the fake Discord got requests it could not answer:\n  " + "\n  ".join(problems), pytrace=False)


@pytest_asyncio.fixture
async def fake_discord(request: pytest.FixtureRequest) -> AsyncIterator[FakeDiscord]:
    """A running fake Discord (1 s heartbeat) with ``Route.BASE`` and the gateway URL patched;
    fails the test at teardown on unhandled requests or crashes of the fake."""
    async with FakeDiscord(heartbeat_interval=1.0) as fake:
        with patch_discordpy(fake):
            yield fake
    check_clean(fake, unhandled_ok=request.node.get_closest_marker(UNHANDLED_OK) is not None)
