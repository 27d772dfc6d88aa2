"""OpenAI chat messages as a character's turns (pure)."""

from __future__ import annotations

from bot.serve.turns import messages_to_conversation


def _user(text: str, name: str | None = None) -> dict:
    return {"role": "user", "content": text, **({"name": name} if name else {})}


def test_each_role_becomes_its_kind_of_turn():
    messages = [
        {"role": "system", "content": "Rain outside."},
        _user("hi", "Ann"),
        {"role": "assistant", "content": "Welcome!"},
        _user("hello"),
    ]

    turns = messages_to_conversation(messages, "Aria").turns

    assert [(t.role, t.speaker, t.text) for t in turns] == [
        ("system", "System", "Rain outside."),
        ("user", "Ann", "hi"),
        ("character", "Aria", "Welcome!"),
        ("user", "user", "hello"),
    ]


def test_the_one_person_speaking_is_the_prompts_user():
    conversation = messages_to_conversation([_user("a", "Ann"), _user("b", "Ann")], "Aria")

    assert conversation.user_name == "Ann"


def test_with_several_people_speaking_the_prompts_user_is_left_to_the_config():
    conversation = messages_to_conversation([_user("a", "Ann"), _user("b", "Zed")], "Aria")

    assert conversation.user_name is None


def test_without_a_user_message_there_is_no_prompt_user():
    conversation = messages_to_conversation([{"role": "system", "content": "Begin."}], "Aria")

    assert conversation.user_name is None


def test_a_trailing_assistant_message_is_the_replys_start_not_a_turn():
    conversation = messages_to_conversation([_user("a"), {"role": "assistant", "content": "Once"}], "Aria")

    assert conversation.prefill == "Once"
    assert [t.text for t in conversation.turns] == ["a"]


def test_blank_messages_are_left_out():
    turns = messages_to_conversation(
        [_user("  "), _user("a"), {"role": "assistant", "content": ""}], "Aria"
    ).turns

    assert [t.text for t in turns] == ["a"]


def test_ids_are_the_same_when_the_same_history_is_sent_again():
    messages = [_user("a", "Ann"), _user("b", "Ann")]

    first = messages_to_conversation(messages, "Aria").turns
    again = messages_to_conversation([*messages, _user("c", "Ann")], "Aria").turns

    assert [t.id for t in first] == [t.id for t in again[:2]]


def test_ids_survive_the_client_dropping_its_oldest_messages():
    messages = [_user("a", "Ann"), _user("b", "Ann"), _user("c", "Ann")]

    whole = messages_to_conversation(messages, "Aria").turns
    trimmed = messages_to_conversation(messages[1:], "Aria").turns

    assert [t.id for t in trimmed] == [t.id for t in whole[1:]]


def test_repeated_identical_messages_get_different_ids():
    turns = messages_to_conversation([_user("ha", "Ann"), _user("ha", "Ann")], "Aria").turns

    assert turns[0].id != turns[1].id
