"""The store's memory (messages kept for recall), on both engines: ``store_url`` runs each test on
SQLite (FTS5) and on a real PostgreSQL (tsvector + GIN)."""

from __future__ import annotations

from bot.memory import query_terms
from bot.store import MemoryCount, Remembered, open_store
from bot.store.migrations import LATEST

CHANNEL = 1_234_567_890_123_456_789
OTHER = CHANNEL + 1
ALICE, BOB = 11, 22


def said(message_id: int, text: str, *, author: int = ALICE, channel: int = CHANNEL, at: int = 1_000) -> Remembered:
    return Remembered(message_id, channel, author, "Alice" if author == ALICE else "Bob", text, at)


async def test_kept_messages_are_found_by_their_words_best_first(store_url: str) -> None:
    async with open_store(store_url) as store:
        await store.remember([
            said(100, "My cat is called Biscuit"),
            said(101, "Biscuit the cat loves the cats' tower"),
            said(102, "The weather is grim today"),
        ])
        hits = await store.recall(CHANNEL, query_terms("where's Biscuit, the cat?"), after_id=0, before_id=1_000, limit=5)
        assert {h.message_id for h in hits} == {100, 101}
        assert hits[0].score >= hits[1].score
        weather = await store.recall(CHANNEL, query_terms("weathered"), after_id=0, before_id=1_000, limit=5)
        assert [h.message_id for h in weather] == [102]  # the same stem


async def test_at_least_two_terms_must_be_held_when_asked_for(store_url: str) -> None:
    async with open_store(store_url) as store:
        await store.remember([said(100, "my sister lives in Lisbon"), said(101, "Lisbon is sunny")])
        terms = query_terms("where does my sister live?")
        hits = await store.recall(CHANNEL, terms, at_least=2, after_id=0, before_id=1_000, limit=5)
        assert [h.message_id for h in hits] == [100]
        assert await store.recall(CHANNEL, query_terms("sunny sister"), at_least=2, after_id=0, before_id=1_000,
                                  limit=5) == []


async def test_recall_keeps_to_its_channel_and_id_range(store_url: str) -> None:
    async with open_store(store_url) as store:
        await store.remember([said(100, "biscuit"), said(200, "biscuit"), said(300, "biscuit"),
                              said(150, "biscuit", channel=OTHER)])
        hits = await store.recall(CHANNEL, ["biscuit"], after_id=100, before_id=300, limit=5)
        assert [h.message_id for h in hits] == [200]


async def test_edits_replace_the_indexed_text(store_url: str) -> None:
    async with open_store(store_url) as store:
        await store.remember([said(100, "my cat is Biscuit")])
        await store.edit_remembered(100, "my dog is Pepper")
        assert await store.recall(CHANNEL, ["biscuit"], after_id=0, before_id=999, limit=5) == []
        [hit] = await store.recall(CHANNEL, ["pepper"], after_id=0, before_id=999, limit=5)
        assert hit.text == "my dog is Pepper"


async def test_deleted_messages_leave_the_index(store_url: str) -> None:
    async with open_store(store_url) as store:
        await store.remember([said(100, "biscuit"), said(101, "biscuit again")])
        await store.forget_messages([100])
        assert [h.message_id for h in await store.recall(CHANNEL, ["biscuit"], after_id=0, before_id=999, limit=5)] == [101]


async def test_forgetting_an_author_removes_their_messages_everywhere(store_url: str) -> None:
    async with open_store(store_url) as store:
        await store.remember([said(100, "biscuit"), said(101, "biscuit", channel=OTHER), said(102, "biscuit", author=BOB)])
        assert await store.forget_author(ALICE) == {CHANNEL: 1, OTHER: 1}
        hits = [*await store.recall(CHANNEL, ["biscuit"], after_id=0, before_id=999, limit=5),
                *await store.recall(OTHER, ["biscuit"], after_id=0, before_id=999, limit=5)]
        assert [h.speaker for h in hits] == ["Bob"]


async def test_forgetting_a_channel_up_to_a_fence_keeps_what_came_after(store_url: str) -> None:
    async with open_store(store_url) as store:
        await store.remember([said(100, "biscuit"), said(200, "biscuit"), said(150, "biscuit", channel=OTHER)])
        assert await store.forget_channel_memory(CHANNEL, upto=100) == 1
        assert await store.memory_count(CHANNEL) == MemoryCount(1, 1_000)
        assert await store.forget_channel_memory(CHANNEL) == 1
        assert await store.memory_count(CHANNEL) == MemoryCount(0)
        assert (await store.memory_count(OTHER)).messages == 1


async def test_pruning_drops_messages_older_than_the_cutoff(store_url: str) -> None:
    async with open_store(store_url) as store:
        await store.remember([said(100, "old biscuit", at=10), said(101, "new biscuit", at=50)])
        assert await store.prune_memory(before=20) == 1
        assert [h.message_id for h in await store.recall(CHANNEL, ["biscuit"], after_id=0, before_id=999, limit=5)] == [101]


async def test_memory_and_the_channel_switch_survive_reopening(store_url: str) -> None:
    async with open_store(store_url) as store:
        await store.remember([said(100, "biscuit")])
        await store.set_memory(CHANNEL, False)
    async with open_store(store_url) as store:
        assert (await store.channel(CHANNEL)).memory is False
        assert [h.text for h in await store.recall(CHANNEL, ["biscuit"], after_id=0, before_id=999, limit=5)] == ["biscuit"]
        assert (await store.info()).schema_version == LATEST


async def test_words_with_quotes_or_operators_in_them_are_plain_words(store_url: str) -> None:
    async with open_store(store_url) as store:
        await store.remember([said(100, 'she said "NEAR" and NOT: biscuit & tea | (cake) *')])
        hits = await store.recall(CHANNEL, query_terms('"NEAR" (cake) | * & tea'), at_least=2, after_id=0,
                                  before_id=999, limit=5)
        assert [h.message_id for h in hits] == [100]


async def test_a_word_in_most_messages_is_not_searched_by(store_url: str) -> None:
    async with open_store(store_url) as store:
        await store.remember([said(100 + i, f"the stew again, round {i}") for i in range(300)])
        await store.remember([said(1_000, "the stew was cooked by Marguerite")])
        hits = await store.recall(CHANNEL, query_terms("who cooked the stew?"), at_least=2, after_id=0,
                                  before_id=10_000, limit=5)
        assert [h.message_id for h in hits] == [1_000]  # "stew" is in nearly every message: "cook" decides
