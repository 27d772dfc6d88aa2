"""Whether a message is for the character: the pure routing rules, no Discord needed."""

from __future__ import annotations

from bot.access import Place
from bot.config import AccessLists
from bot.routing import (
    CastMember,
    Incoming,
    Route,
    RouteSettings,
    decide,
    named_members,
    out_of_character,
    route,
    says_any,
)

NAMES = ["Aria", "the bard"]
HERE = Place(user_id=7, guild_id=1, channel_ids=(10,))


def message(content: str = "hello", **facts: object) -> Incoming:
    return Incoming(content=content, place=facts.pop("place", HERE), **facts)  # type: ignore[arg-type]


def test_a_mention_is_answered() -> None:
    assert route(message(mentions_us=True), RouteSettings(), NAMES) is Route.ANSWER


def test_a_reply_to_the_character_is_answered() -> None:
    assert route(message(replies_to_us=True), RouteSettings(), NAMES) is Route.ANSWER


def test_plain_talk_is_only_listened_to() -> None:
    assert route(message("nice weather"), RouteSettings(), NAMES) is Route.LISTEN


def test_a_wake_word_is_answered_as_a_whole_word_only() -> None:
    assert route(message("hey aria, a song?"), RouteSettings(), NAMES) is Route.ANSWER
    assert route(message("ask THE BARD"), RouteSettings(), NAMES) is Route.ANSWER
    assert route(message("malaria is no joke"), RouteSettings(), NAMES) is Route.LISTEN


def test_wake_words_switched_off_leave_only_mentions() -> None:
    off = RouteSettings(wake_words=False)
    assert route(message("hey aria"), off, NAMES) is Route.LISTEN
    assert route(message("hey aria", mentions_us=True), off, NAMES) is Route.ANSWER


def test_dms_follow_allow_dms() -> None:
    assert route(message(direct=True), RouteSettings(), NAMES) is Route.ANSWER
    assert route(message(direct=True), RouteSettings(allow_dms=False), NAMES) is Route.LISTEN


def test_out_of_character_lines_are_ignored_even_with_a_mention() -> None:
    assert route(message("<@1> // brb", mentions_us=True), RouteSettings(), NAMES) is Route.IGNORE
    assert route(message("((ooc)) aria?"), RouteSettings(), NAMES) is Route.IGNORE
    assert route(message("// x", mentions_us=True), RouteSettings(ooc_prefixes=()), NAMES) is Route.ANSWER


def test_other_bots_are_ignored_unless_allowed() -> None:
    assert route(message(mentions_us=True, from_bot=True), RouteSettings(), NAMES) is Route.IGNORE
    assert route(message(mentions_us=True, from_bot=True), RouteSettings(respond_to_bots=True), NAMES) is Route.ANSWER


def test_our_own_webhook_messages_and_system_messages_are_ignored() -> None:
    assert route(message("Aria!", from_our_webhook=True), RouteSettings(), NAMES) is Route.IGNORE
    assert route(message(mentions_us=True, ordinary=False), RouteSettings(), NAMES) is Route.IGNORE


def test_access_rules_refuse_an_addressed_message_but_still_listen() -> None:
    denied = RouteSettings(access=AccessLists(deny_channels=[10]))
    assert route(message(mentions_us=True), denied, NAMES) is Route.REFUSED
    assert route(message("just talk"), denied, NAMES) is Route.LISTEN


def test_out_of_character_and_whole_words_helpers() -> None:
    assert out_of_character("  <@12> <@!34>  // later", ["//"])
    assert not out_of_character("a // b", ["//"])
    assert says_any("Captain Brass!", ["captain brass"]) and not says_any("brassy", ["brass"])


SCENE = [
    CastMember("Aria", ("Aria", "barkeep")),
    CastMember("Captain Brass", ("Captain Brass", "captain")),
    CastMember("Professor Quill", ("Professor Quill", "professor", "quill")),
]


def test_a_scene_message_is_for_the_member_it_names_first() -> None:
    decision = decide(message("quill, then the captain: thoughts?"), RouteSettings(), SCENE)
    assert decision.route is Route.ANSWER and decision.addressed == ("Professor Quill", "Captain Brass")


def test_a_reply_to_a_members_message_is_for_that_member() -> None:
    decision = decide(message("and you, Aria?", replies_to_us=True, replied_character="Captain Brass"),
                      RouteSettings(), SCENE)
    assert decision.addressed == ("Captain Brass",)


def test_a_mention_naming_nobody_is_for_the_director() -> None:
    decision = decide(message("anyone?", mentions_us=True), RouteSettings(), SCENE)
    assert decision.route is Route.ANSWER and decision.addressed == ()


def test_naming_a_member_without_wake_words_only_listens() -> None:
    assert decide(message("the captain is late"), RouteSettings(wake_words=False), SCENE).route is Route.LISTEN


def test_members_are_named_as_whole_words_only() -> None:
    assert named_members("the professorship and caption", SCENE) == ()
