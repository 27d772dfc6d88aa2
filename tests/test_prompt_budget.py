"""Fitting the prompt to a token budget: examples, history window, anchors, stable prefix."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from bot.cards.model import Character
from bot.config import PromptConfig
from bot.errors import PromptError
from bot.prompt.builder import build_prompt
from bot.prompt.formats import TEMPLATES, get_template
from bot.prompt.transcript import CUT_MARK
from bot.prompt.types import Prompt, Turn

Counter = Callable[[str], int]


def chars4(text: str) -> int:
    return len(text) // 4 + 1


def words(text: str) -> int:
    return len(text.split())


COUNTERS = [pytest.param(chars4, id="chars4"), pytest.param(words, id="words")]

LONG_EXAMPLE = " ".join(["verse"] * 120)
ARIA = Character(
    name="Aria",
    description="{{char}} is a travelling bard.",
    personality="cheerful",
    scenario="A tavern.",
    mes_example=(
        "<START>\n{{user}}: Hi!\n{{char}}: Hello!\n"
        f"<START>\n{{{{user}}}}: Sing.\n{{{{char}}}}: {LONG_EXAMPLE}"
    ),
)


def turns(count: int, *, start: int = 0) -> list[Turn]:
    speakers = ["Bob", "Carol", "Dan"]
    return [
        Turn(speakers[i % 3], f"message {i} has a few more words in it", str(i))
        if i % 4
        else Turn("Aria", f"reply {i} from the bard herself today", str(i), role="character")
        for i in range(start, start + count)
    ]


def build(
    history: list[Turn],
    *,
    budget: int = 100_000,
    count: Counter = words,
    config: PromptConfig | None = None,
    **kwargs: object,
) -> Prompt:
    return build_prompt(
        ARIA,
        history,
        config=config or PromptConfig(history_messages=200),
        count_tokens=count,
        budget=budget,
        **kwargs,  # type: ignore[arg-type]
    )


def tail_length(name: str = "transcript") -> int:
    return len(get_template(name).open_assistant("[Aria]:"))


# ---------------------------------------------------------------- accounting


@pytest.mark.parametrize("count", COUNTERS)
@pytest.mark.parametrize("budget", [300, 450, 800, 5000])
def test_prompt_fits_the_budget(count: Counter, budget: int) -> None:
    prompt = build(turns(80), budget=budget, count=count)
    assert prompt.token_count <= budget


@pytest.mark.parametrize("count", COUNTERS)
def test_token_count_sums_head_turn_lines_and_tail(count: Counter) -> None:
    prompt = build(turns(20), budget=400, count=count)
    lines = prompt.text[len(prompt.prefix):].split("\n")
    history, tail = lines[:-1], lines[-1]
    assert prompt.prefix_tokens == count(prompt.prefix)
    turn_tokens = sum(count(line + "\n") for line in history)
    assert prompt.token_count == count(prompt.prefix) + turn_tokens + count(tail)


@pytest.mark.parametrize("count", COUNTERS)
def test_as_many_newest_turns_as_fit_are_kept(count: Counter) -> None:
    history = turns(80)
    budget = 500
    prompt = build(history, budget=budget, count=count)
    assert 0 < prompt.turns_dropped < 80
    assert prompt.turns_kept + prompt.turns_dropped == 80
    older = history[prompt.turns_dropped - 1]
    one_more = build([older, *history[prompt.turns_dropped:]], budget=10**6, count=count)
    assert one_more.token_count > budget
    assert prompt.first_turn_id == history[prompt.turns_dropped].id


def test_newest_turn_is_kept_when_nothing_else_fits() -> None:
    history = turns(30)
    prompt = build(history, budget=build([], config=PromptConfig(include_examples=False)).token_count + 12,
                   config=PromptConfig(include_examples=False))
    assert prompt.turns_kept == 1
    assert prompt.text.endswith("[Dan]: message 29 has a few more words in it\n[Aria]:")


@pytest.mark.parametrize("count", COUNTERS)
def test_oversized_newest_turn_is_cut_from_its_start(count: Counter) -> None:
    newest = Turn("Bob", "BEGINNING " + "filler words " * 600 + "THE END", "99")
    budget = 200
    prompt = build([*turns(5), newest], budget=budget, count=count)
    assert prompt.token_count <= budget
    assert prompt.turns_kept == 1
    assert f"\n[Bob]: {CUT_MARK} " in prompt.text
    assert prompt.text.endswith("THE END\n[Aria]:")
    assert "BEGINNING" not in prompt.text


def test_prompt_error_when_the_head_alone_does_not_fit() -> None:
    with pytest.raises(PromptError, match="budget"):
        build(turns(3), budget=20, config=PromptConfig(pin_examples=True))


def test_prompt_error_when_the_system_prompt_alone_overflows() -> None:
    config = PromptConfig(system_prompt="word " * 500, include_examples=False)
    with pytest.raises(PromptError):
        build([], budget=100, config=config)


# ---------------------------------------------------------------- examples


def test_examples_are_kept_when_they_fit() -> None:
    prompt = build(turns(4))
    assert (prompt.examples_kept, prompt.examples_dropped) == (2, 0)
    assert LONG_EXAMPLE in prompt.prefix


def test_examples_are_dropped_last_first_before_the_newest_turns() -> None:
    history = turns(4)
    full = build(history)
    prompt = build(history, budget=full.token_count - 50)
    assert (prompt.examples_kept, prompt.examples_dropped) == (1, 1)
    assert "[Aria]: Hello!" in prompt.prefix and LONG_EXAMPLE not in prompt.prefix
    assert prompt.turns_kept == 4


def test_older_history_goes_before_examples() -> None:
    history = turns(40)
    budget = build(history[-4:]).token_count + 40
    prompt = build(history, budget=budget)
    assert prompt.examples_kept == 2
    assert 4 <= prompt.turns_kept < 40


def test_pinned_examples_are_never_dropped() -> None:
    history = turns(10)
    budget = build([], config=PromptConfig(pin_examples=True)).token_count + 12
    prompt = build(history, budget=budget, config=PromptConfig(pin_examples=True))
    assert prompt.examples_kept == 2
    assert prompt.turns_kept == 1


# ---------------------------------------------------------------- anchored window


def test_anchor_excludes_older_turns_even_with_room() -> None:
    history = turns(10)
    prompt = build(history, anchor="6")
    assert prompt.turns_kept == 4 and prompt.turns_dropped == 6
    assert prompt.first_turn_id == "6"


def test_unknown_anchor_behaves_like_none() -> None:
    history = turns(10)
    assert build(history, anchor="nope", budget=300) == build(history, budget=300)


def _budget_for(history: list[Turn], config: PromptConfig) -> int:
    return build(history, config=config).token_count


def test_anchored_window_that_overflows_frees_a_third_of_the_token_budget_at_once() -> None:
    config = PromptConfig(include_examples=False)
    history = turns(30)
    budget = _budget_for(history[5:], config)  # room for 25 turns
    assert build(history, budget=budget, config=config).turns_kept == 25
    anchored = build(history, budget=budget, config=config, anchor="0")
    available = budget - anchored.prefix_tokens - words("[Aria]:")
    free = budget - anchored.token_count
    longest_turn = max(words(f"[{t.speaker}]: {t.text}") for t in history)
    assert math.ceil(0.33 * available) <= free < math.ceil(0.33 * available) + longest_turn


def test_anchored_window_stays_stable_for_the_following_replies() -> None:
    config = PromptConfig(include_examples=False, post_history_instructions="Be brief.")
    history = turns(30)
    budget = _budget_for(history[5:], config)
    previous = build(history, budget=budget, config=config, anchor="0")
    anchor = previous.first_turn_id
    stable = 0
    for extra in turns(12, start=30):
        history.append(extra)
        current = build(history, budget=budget, config=config, anchor=anchor)
        if current.first_turn_id != anchor:
            break
        shared = previous.text[: previous.text.index("(Note:")]
        assert current.text.startswith(shared)
        previous = current
        stable += 1
    assert stable >= 4
    assert current.first_turn_id != anchor  # the window filled up and moved on once more
    assert current.token_count <= budget


# ---------------------------------------------------------------- stable prefix


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_prefix_is_identical_whatever_the_turns(name: str) -> None:
    config = PromptConfig(format=name)
    prefixes = {
        build(history, config=config, budget=2000).prefix
        for history in (turns(1), turns(30), turns(7, start=100), [Turn("Zed", "x" * 3000, "z")])
    }
    assert len(prefixes) == 1


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_appending_a_turn_only_appends_bytes(name: str) -> None:
    config = PromptConfig(format=name, post_history_instructions="Be brief.")
    history = turns(12)
    before = build(history, config=config)
    note = get_template(name).wrap_note("Be brief.")
    kept = before.text[: len(before.text) - len(note) - tail_length(name)]
    newcomers = (Turn("Eve", "a new face\nwith two lines", "e"), Turn("Aria", "ok", "a", role="character"))
    for new in newcomers:
        after = build([*history, new], config=config)
        assert after.text.startswith(kept)
        assert after.prefix == before.prefix


def test_window_holds_at_most_history_messages_turns() -> None:
    history = turns(80)
    newest = build(history, budget=10**6, config=PromptConfig(history_messages=30))
    assert newest.turns_kept == 30
    anchored = build(history, budget=10**6, config=PromptConfig(history_messages=30),
                     anchor=history[40].id)
    assert anchored.turns_kept <= 30 and anchored.first_turn_id != history[40].id
    assert anchored.turns_kept >= 20  # a third dropped at once, not one at a time
