"""The director: who speaks next in a scene. Pure, seeded, no Discord."""

from __future__ import annotations

from collections import Counter

from bot.cards.model import Character
from bot.director import Member, ambient_speaker, first_speaker, next_in_chain, talkativeness

CAST = [Member("Aria", 0.5), Member("Captain Brass", 0.9), Member("Professor Quill", 0.1)]


def test_a_named_member_answers_whatever_the_mode() -> None:
    for mode in ("natural", "list"):
        assert first_speaker(CAST, mode=mode, named=["Professor Quill", "Aria"], seed=1) == "Professor Quill"


def test_natural_order_is_the_same_for_the_same_message() -> None:
    picks = {first_speaker(CAST, mode="natural", seed=123456789) for _ in range(20)}
    assert len(picks) == 1


def test_natural_order_never_picks_who_just_spoke() -> None:
    picks = {first_speaker(CAST, mode="natural", last="Captain Brass", seed=seed) for seed in range(200)}
    assert picks == {"Aria", "Professor Quill"}


def test_natural_order_follows_talkativeness() -> None:
    counts = Counter(first_speaker(CAST, mode="natural", seed=seed) for seed in range(3000))
    assert counts["Captain Brass"] > counts["Aria"] > counts["Professor Quill"] > 0


def test_a_silent_cast_is_drawn_evenly() -> None:
    mute = [Member("A", 0.0), Member("B", 0.0)]
    assert {first_speaker(mute, mode="natural", seed=seed) for seed in range(50)} == {"A", "B"}


def test_list_order_goes_round_the_cast() -> None:
    assert first_speaker(CAST, mode="list") == "Aria"
    assert first_speaker(CAST, mode="list", last="Aria") == "Captain Brass"
    assert first_speaker(CAST, mode="list", last="Professor Quill") == "Aria"


def test_a_reply_naming_a_member_hands_it_the_turn() -> None:
    assert next_in_chain(CAST, mode="natural", speaker="Aria", named=["Professor Quill"], seed=5) == "Professor Quill"


def test_a_member_never_answers_itself() -> None:
    assert next_in_chain(CAST, mode="natural", speaker="Aria", named=["Aria"], seed=5) != "Aria"
    assert next_in_chain([Member("Aria")], mode="list", speaker="Aria") is None


def test_list_chains_go_to_the_next_member() -> None:
    assert next_in_chain(CAST, mode="list", speaker="Captain Brass") == "Professor Quill"


def test_natural_chains_sometimes_end_and_repeat_for_the_same_seed() -> None:
    outcomes = [next_in_chain(CAST, mode="natural", speaker="Aria", seed=seed, step=1) for seed in range(200)]
    assert None in outcomes and "Captain Brass" in outcomes
    assert outcomes == [next_in_chain(CAST, mode="natural", speaker="Aria", seed=seed, step=1) for seed in range(200)]


def test_talkativeness_comes_from_the_card_extension_and_defaults_to_half() -> None:
    assert talkativeness(Character(name="A", extensions={"talkativeness": "0.8"})) == 0.8
    assert talkativeness(Character(name="A")) == 0.5
    assert talkativeness(Character(name="A", extensions={"talkativeness": "loud"})) == 0.5
    assert talkativeness(Character(name="A", extensions={"talkativeness": 7})) == 1.0


def test_ambient_replies_are_off_at_zero_and_before_any_character_spoke() -> None:
    assert all(ambient_speaker(CAST, ambient=0.0, since_spoke=1.0, seed=s) is None for s in range(100))
    assert all(ambient_speaker(CAST, ambient=1.0, since_spoke=None, seed=s) is None for s in range(100))


def test_ambient_replies_follow_their_chance_and_fade_with_time() -> None:
    eager = [Member("Echo", 1.0)]
    assert all(ambient_speaker(eager, ambient=1.0, since_spoke=5.0, seed=s) == "Echo" for s in range(100))
    fresh = sum(ambient_speaker(CAST, ambient=0.5, since_spoke=5.0, seed=s) is not None for s in range(2000))
    stale = sum(ambient_speaker(CAST, ambient=0.5, since_spoke=3600.0, seed=s) is not None for s in range(2000))
    assert 0 < stale < fresh / 10 and 0.2 < fresh / 2000 < 0.5


def test_ambient_replies_repeat_for_the_same_message() -> None:
    draws = [ambient_speaker(CAST, ambient=0.7, since_spoke=30.0, last="Aria", seed=s) for s in range(300)]
    assert draws == [ambient_speaker(CAST, ambient=0.7, since_spoke=30.0, last="Aria", seed=s) for s in range(300)]
    assert "Aria" not in draws  # never the member who just spoke
