"""Choosing the history window from per-turn costs."""

from __future__ import annotations

from collections.abc import Callable

from bot.prompt.window import SuffixCosts, window_start


def costs(values: list[int]) -> tuple[list[int], Callable[[int], int]]:
    calls: list[int] = []

    def cost(index: int) -> int:
        calls.append(index)
        return values[index]

    return calls, cost


def test_without_anchor_the_newest_turns_that_fit_are_kept() -> None:
    _, cost = costs([5, 5, 5, 5])
    assert window_start(4, cost, available=12) == 2


def test_window_is_contiguous_even_if_an_older_small_turn_would_fit() -> None:
    _, cost = costs([1, 50, 5])
    assert window_start(3, cost, available=10) == 2


def test_newest_turn_is_kept_even_when_it_does_not_fit() -> None:
    _, cost = costs([1, 100])
    assert window_start(2, cost, available=10) == 1


def test_no_turns_gives_an_empty_window() -> None:
    _, cost = costs([])
    assert window_start(0, cost, available=10) == 0


def test_anchor_excludes_older_turns_even_with_room() -> None:
    _, cost = costs([1] * 10)
    assert window_start(10, cost, available=100, anchor=6) == 6


def test_anchored_window_that_overflows_frees_a_share_of_the_token_budget() -> None:
    _, cost = costs([1] * 30)
    # 30 tokens > 25: keep at most 25 - ceil(0.33 * 25) = 16 tokens
    assert window_start(30, cost, available=25, anchor=0, drop_fraction=0.33) == 14


def test_slide_frees_the_same_tokens_for_short_and_long_messages() -> None:
    def freed(size: int) -> int:
        count = 300 // size + 1  # just over a 300-token budget
        _, cost = costs([size] * count)
        start = window_start(count, cost, available=300, anchor=0, drop_fraction=0.25)
        return 300 - size * (count - start)

    assert freed(3) == 75
    assert freed(25) == 75


def test_a_slide_is_one_move_even_when_the_window_overflows_by_much() -> None:
    _, cost = costs([1] * 30)
    # 30 tokens > 15: keep at most 15 - ceil(0.33 * 15) = 10 tokens
    assert window_start(30, cost, available=15, anchor=0, drop_fraction=0.33) == 20


def test_window_over_max_turns_frees_a_share_of_them() -> None:
    _, cost = costs([1] * 40)
    assert window_start(40, cost, available=1000, anchor=0, drop_fraction=0.33, max_turns=30) == 20


def test_anchored_window_within_both_limits_stays() -> None:
    _, cost = costs([1] * 40)
    assert window_start(40, cost, available=40, anchor=10, drop_fraction=0.33, max_turns=30) == 10


def test_anchored_window_never_drops_the_newest_turn() -> None:
    _, cost = costs([1, 1, 100])
    assert window_start(3, cost, available=5, anchor=0, drop_fraction=1.0) == 2


def test_out_of_range_anchor_behaves_like_none() -> None:
    _, cost = costs([5, 5, 5])
    assert window_start(3, cost, available=10, anchor=7) == 1


def test_costs_are_computed_newest_first_each_once_and_only_as_needed() -> None:
    calls, cost = costs([1] * 100)
    sums = SuffixCosts(100, cost)
    assert sums.total(90, limit=1000) == 10
    assert sums.total(95, limit=1000) == 5
    assert sums.total(0, limit=20) > 20
    assert calls == list(range(99, 78, -1))
