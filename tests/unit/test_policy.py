"""Tool policy (issue 10): allowed_tools patterns, the last match decides; read-only sessions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokenward.errors import ValidationError
from tokenward.tools.policy import check_patterns, decide, read_only_refusal, refusal

TOOLS = [
    "discordbot_get_current_user",
    "discordbot_create_guild_ban",
    "discordbot_remove_guild_ban",
    "discordbot_delete_message",
    "discordbot_create_message",
]


@pytest.mark.parametrize(
    ("patterns", "tool", "allowed", "rule"),
    [
        (None, "discordbot_create_guild_ban", True, None),
        ([], "discordbot_get_current_user", False, None),
        (["*", "!*_ban*"], "discordbot_create_guild_ban", False, "!*_ban*"),
        (["*", "!*_ban*"], "discordbot_remove_guild_ban", False, "!*_ban*"),
        (["*", "!*_ban*"], "discordbot_create_message", True, "*"),
        (["!*_ban*"], "discordbot_create_message", True, None),  # deny rules only
        (["!*_ban*"], "discordbot_create_guild_ban", False, "!*_ban*"),
        (["discordbot_get_*"], "discordbot_delete_message", False, None),  # an allow-list
        (["discordbot_get_*"], "discordbot_get_current_user", True, "discordbot_get_*"),
        (  # the last match wins: deletions refused, one let back in
            ["*", "!*_delete_*", "discordbot_delete_message"],
            "discordbot_delete_message",
            True,
            "discordbot_delete_message",
        ),
        (
            ["discordbot_delete_message", "!*_delete_*"],
            "discordbot_delete_message",
            False,
            "!*_delete_*",
        ),
        (
            ["discordbot_[cr]*_guild_ban"],
            "discordbot_remove_guild_ban",
            True,
            "discordbot_[cr]*_guild_ban",
        ),
    ],
)
def test_the_last_matching_pattern_decides(
    patterns: list[str] | None, tool: str, allowed: bool, rule: str | None
) -> None:
    decision = decide(patterns, tool)
    assert (decision.allowed, decision.rule) == (allowed, rule)


def test_a_refusal_names_the_rule_and_the_policy() -> None:
    error = refusal(["*", "!*_ban*"], "discordbot_create_guild_ban", connection_name="bots")
    assert error is not None
    assert (error.code, error.status) == ("TOOL_NOT_ALLOWED", 403)
    assert error.details["rule"] == "!*_ban*"
    assert error.details["policy"] == "connection.allowed_tools"
    assert "'!*_ban*'" in error.message
    assert refusal(["*", "!*_ban*"], "discordbot_create_message", connection_name="bots") is None
    none_matched = refusal(["discordbot_get_*"], "discordbot_create_message", connection_name="b")
    assert none_matched is not None
    assert none_matched.details["rule"] is None
    session = read_only_refusal("discordbot_create_message", read_only_tool=False)
    assert session is not None
    assert session.details == {
        "tool_name": "discordbot_create_message",
        "policy": "mcp_session.read_only",
        "rule": "read_only",
        "hint": "This session may only run read-only tools; do not retry.",
    }
    assert read_only_refusal("discordbot_get_current_user", read_only_tool=True) is None


@pytest.mark.parametrize(
    ("patterns", "reason"),
    [
        (["*", "!*_bann*"], "matches none"),
        (["Discordbot_*"], "not a glob"),
        (["discord bot"], "not a glob"),
        (["!"], "not a glob"),
        (["x" * 129], "at most 128"),
        (["*"] * 201, "at most 200"),
    ],
)
def test_bad_patterns_are_refused_naming_the_field(patterns: list[str], reason: str) -> None:
    with pytest.raises(ValidationError) as caught:
        check_patterns(patterns, TOOLS)
    assert reason in caught.value.fields["allowed_tools"]


def test_good_patterns_come_back_as_given() -> None:
    assert check_patterns(None, TOOLS) is None
    assert check_patterns([], TOOLS) == []
    assert check_patterns("*, !*_ban*", TOOLS) == ["*", "!*_ban*"]


@given(
    st.lists(st.sampled_from(["*", "!*", "*_ban*", "!*_ban*", "discordbot_get_*", "!*_delete_*"])),
    st.sampled_from(TOOLS),
)
def test_a_deny_rule_at_the_end_always_refuses(patterns: list[str], tool: str) -> None:
    """Whatever comes before, a final deny rule matching the tool refuses it, naming that rule."""
    decision = decide([*patterns, "!" + tool], tool)
    assert (decision.allowed, decision.rule) == (False, "!" + tool)
