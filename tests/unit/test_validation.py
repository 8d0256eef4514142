"""Tool input validation: strict types, every bad field named, URL forms, and agreement with
the exported JSON Schemas."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from tokenward.errors import ValidationError
from tokenward.providers.models import ParamSpec, ToolSpec
from tokenward.tools.catalog import Catalog
from tokenward.tools.schemas import input_schema, openai_tool
from tokenward.tools.validation import (
    FORMATS,
    INVITE_INPUT_PATTERN,
    MESSAGE_PARTS,
    SNOWFLAKE_MAX,
    SNOWFLAKE_PATTERN,
    TEMPLATE_INPUT_PATTERN,
    USER_REF_PATTERN,
    bounded_digits_pattern,
    normalize_invite_code,
    normalize_template_code,
    strip_nulls,
    validate_input,
)

CATALOG = Catalog.load()


def tool(name: str) -> ToolSpec:
    return CATALOG.get(name)


def bad_fields(name: str, tool_input: object) -> dict[str, str]:
    with pytest.raises(ValidationError) as info:
        validate_input(tool(name), tool_input)
    assert info.value.code == "VALIDATION_ERROR"
    assert info.value.details == {"fields": info.value.fields}
    for field, reason in info.value.fields.items():
        assert f"{field}: {reason}" in info.value.message
    return info.value.fields


# ---------------------------------------------------------------------------- the basics


def test_every_bad_field_is_reported_at_once() -> None:
    fields = bad_fields(
        "discord_list_my_guilds",
        {"after": "abc", "before": 5, "limit": 0, "with_counts": "yes", "page": 2},
    )
    assert set(fields) == {"after", "before", "limit", "with_counts", "page"}
    assert "snowflake" in fields["after"]
    assert fields["before"].endswith("got a number")
    assert fields["limit"] == "must be between 1 and 200"
    assert fields["with_counts"] == "must be true or false, got a string"
    assert fields["page"].startswith("unknown parameter")
    assert "before, after, limit, with_counts" in fields["page"]


def test_message_names_the_tool() -> None:
    with pytest.raises(ValidationError) as info:
        validate_input(tool("discord_get_guild_widget"), {})
    assert info.value.message == "discord_get_guild_widget: invalid input: guild_id: is required"


def test_unknown_field_on_a_tool_without_parameters() -> None:
    fields = bad_fields("discord_get_gateway", {"x": 1})
    assert fields == {"x": "unknown parameter (this tool accepts: none)"}


@pytest.mark.parametrize("value", [[], "guild", 3, None, ("a",)])
def test_input_must_be_an_object(value: object) -> None:
    fields = bad_fields("discord_get_gateway", value)
    assert list(fields) == ["tool_input"]
    assert fields["tool_input"].startswith("must be a JSON object")


def test_required_null_is_reported_as_required() -> None:
    assert bad_fields("discord_get_guild_widget", {"guild_id": None}) == {
        "guild_id": "is required (got null)"
    }


def test_optional_null_is_refused_unless_stripped() -> None:
    t = tool("discord_list_my_guilds")
    fields = bad_fields(t.name, {"limit": None})
    assert fields == {"limit": "must be an integer, got null"}
    assert validate_input(t, strip_nulls(t, {"limit": None})) == {}


def test_strip_nulls_keeps_required_and_unknown_nulls() -> None:
    t = tool("discord_resolve_invite")
    stripped = strip_nulls(
        t, {"invite_code": None, "with_counts": None, "with_expiration": True, "zzz": None}
    )
    assert stripped == {"invite_code": None, "with_expiration": True, "zzz": None}
    assert strip_nulls(t, ["not", "a", "dict"]) == ["not", "a", "dict"]


def test_absent_optionals_stay_absent() -> None:
    assert validate_input(tool("discord_list_my_guilds"), {}) == {}


def test_normalised_values_are_returned_in_declaration_order() -> None:
    out = validate_input(
        tool("discord_resolve_invite"),
        {"with_counts": True, "invite_code": "https://discord.gg/abc"},
    )
    assert list(out.items()) == [("invite_code", "abc"), ("with_counts", True)]


# ---------------------------------------------------------------------------- types


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (5, True),
        (5.0, True),  # JSON Schema counts 5.0 as an integer; so do we
        ("5", False),
        (True, False),
        (5.5, False),
        (float("inf"), False),
        (float("nan"), False),
        (None, False),
        ([5], False),
    ],
)
def test_integers_are_strict(value: object, ok: bool) -> None:
    t = tool("discord_list_my_guilds")
    if ok:
        out = validate_input(t, {"limit": value})
        assert out == {"limit": 5}
        assert type(out["limit"]) is int
    else:
        assert "must be an integer" in bad_fields(t.name, {"limit": value})["limit"]


@pytest.mark.parametrize(
    ("limit", "reason"),
    [(0, "must be between 1 and 100"), (101, "must be between 1 and 100"), (-5, None)],
)
def test_integer_ranges(limit: int, reason: str | None) -> None:
    name = "discord_get_current_user_application_entitlements"
    fields = bad_fields(name, {"application_id": "1", "limit": limit})
    assert fields["limit"] == (reason or "must be between 1 and 100")
    for good in (1, 100):
        assert validate_input(tool(name), {"application_id": "1", "limit": good})["limit"] == good


def test_one_sided_ranges_say_which_side() -> None:
    spec = tool("discord_list_my_guilds")
    at_least = spec.model_copy(
        update={
            "params": (
                ParamSpec(
                    name="n",
                    location="query",
                    description="a count, at least one",
                    schema={"type": "integer", "minimum": 1},
                ),
            )
        }
    )
    at_most = spec.model_copy(
        update={
            "params": (
                ParamSpec(
                    name="n",
                    location="query",
                    description="a count, at most ten",
                    schema={"type": "integer", "maximum": 10},
                ),
            )
        }
    )
    with pytest.raises(ValidationError) as low:
        validate_input(at_least, {"n": 0})
    assert low.value.fields == {"n": "must be at least 1"}
    with pytest.raises(ValidationError) as high:
        validate_input(at_most, {"n": 11})
    assert high.value.fields == {"n": "must be at most 10"}


@pytest.mark.parametrize("value", ["true", "false", 1, 0, None, "True"])
def test_booleans_are_json_booleans(value: object) -> None:
    fields = bad_fields("discord_list_my_guilds", {"with_counts": value})
    assert fields["with_counts"].startswith("must be true or false")


def test_enum_is_exact() -> None:
    t = tool("discord_get_guild_widget_png")
    for style in ("shield", "banner1", "banner2", "banner3", "banner4"):
        assert validate_input(t, {"guild_id": "1", "style": style})["style"] == style
    for wrong in ("Shield", "banner5", "", " shield", 1):
        fields = bad_fields(t.name, {"guild_id": "1", "style": wrong})
        assert "shield, banner1, banner2, banner3, banner4" in fields["style"]


@pytest.mark.parametrize(
    "value",
    ["0", "1", "80351110224678912", "18446744073709551615", "00000000000000000001"],
)
def test_valid_snowflakes(value: str) -> None:
    assert validate_input(tool("discord_get_guild_widget"), {"guild_id": value}) == {
        "guild_id": value
    }


@pytest.mark.parametrize(
    ("value", "reason_part"),
    [
        ("18446744073709551616", "no greater than 18446744073709551615"),
        ("99999999999999999999", "no greater than"),
        ("123456789012345678901", "1 to 20 digits"),
        ("", "1 to 20 digits"),
        ("-1", "1 to 20 digits"),
        (" 1", "1 to 20 digits"),
        ("1\n", "1 to 20 digits"),
        ("１２３", "1 to 20 digits"),  # full-width digits are not ASCII digits
        ("0x10", "1 to 20 digits"),
        ("@me", "1 to 20 digits"),
        (80351110224678912, "got a number"),
    ],
)
def test_invalid_snowflakes(value: object, reason_part: str) -> None:
    fields = bad_fields("discord_get_guild_widget", {"guild_id": value})
    assert reason_part in fields["guild_id"]


def test_user_ref() -> None:
    t = tool("discord_get_user")
    assert validate_input(t, {"user_id": "@me"}) == {"user_id": "@me"}
    assert validate_input(t, {"user_id": "42"}) == {"user_id": "42"}
    for wrong in ("me", "@ME", "@me ", "@you", "18446744073709551616", ""):
        assert '"@me" or a Discord user ID' in bad_fields(t.name, {"user_id": wrong})["user_id"]


# ---------------------------------------------------------------------------- codes and URLs


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("hTKzmak", "hTKzmak"),
        ("discord-developers", "discord-developers"),
        ("ab", "ab"),
        ("discord.gg/hTKzmak", "hTKzmak"),
        ("https://discord.gg/hTKzmak", "hTKzmak"),
        ("http://discord.gg/hTKzmak/", "hTKzmak"),
        ("https://discord.gg/hTKzmak?event=123", "hTKzmak"),
        ("discord.com/invite/hTKzmak", "hTKzmak"),
        ("https://discord.com/invite/hTKzmak", "hTKzmak"),
        ("https://www.discord.com/invite/hTKzmak", "hTKzmak"),
        ("discordapp.com/invite/hTKzmak", "hTKzmak"),
        ("https://discordapp.com/invite/hTKzmak?x=1&y=2", "hTKzmak"),
        ("hTKzmak#fragment", "hTKzmak"),
    ],
)
def test_invite_forms(value: str, code: str) -> None:
    assert normalize_invite_code(value) == code
    for name in ("discord_resolve_invite", "discord_get_invite_deprecated"):
        assert validate_input(tool(name), {"invite_code": value})["invite_code"] == code


@pytest.mark.parametrize(
    "value",
    [
        "a",
        "x" * 33,
        "abc def",
        "abc/def",
        "../etc",
        "discord.gg/",
        "https://evil.example/invite/abc",
        "https://discord.gg.evil.example/abc",
        "https://discord.com/template/abc",  # a template link is not an invite
        "discord.new/abc",
        "ftp://discord.gg/abc",
        "https://discord.gg/abc/def",
        "abc%2F..",
        "",
    ],
)
def test_invalid_invites(value: str) -> None:
    assert normalize_invite_code(value) is None
    fields = bad_fields("discord_resolve_invite", {"invite_code": value})
    assert "invite code" in fields["invite_code"]


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("hgM48av5Q69A", "hgM48av5Q69A"),
        ("discord.new/hgM48av5Q69A", "hgM48av5Q69A"),
        ("https://discord.new/hgM48av5Q69A", "hgM48av5Q69A"),
        ("https://discord.com/template/hgM48av5Q69A", "hgM48av5Q69A"),
        ("discordapp.com/template/hgM48av5Q69A?ref=x", "hgM48av5Q69A"),
    ],
)
def test_template_forms(value: str, code: str) -> None:
    assert normalize_template_code(value) == code
    t = tool("discord_get_guild_template")
    assert validate_input(t, {"template_code": value}) == {"template_code": code}


@pytest.mark.parametrize(
    "value",
    ["h", "discord.gg/hgM48av5Q69A", "https://discord.com/invite/abc", "a b", "x" * 33],
)
def test_invalid_templates(value: str) -> None:
    assert normalize_template_code(value) is None
    fields = bad_fields("discord_get_guild_template", {"template_code": value})
    assert "template code" in fields["template_code"]


# ---------------------------------------------------------------------------- patterns


def _fits(text: str) -> bool:
    return len(text) <= 20 and text.isascii() and text.isdigit() and int(text) <= SNOWFLAKE_MAX


@given(st.integers(min_value=0, max_value=2**70), st.integers(min_value=0, max_value=3))
@example(SNOWFLAKE_MAX, 0)
@example(SNOWFLAKE_MAX + 1, 0)
@example(10**19, 0)
@example(10**19 - 1, 1)
def test_snowflake_pattern_is_exactly_the_64_bit_bound(number: int, zeros: int) -> None:
    text = "0" * zeros + str(number)
    assert bool(re.fullmatch(SNOWFLAKE_PATTERN, text)) == _fits(text)
    assert bool(re.search(SNOWFLAKE_PATTERN, text)) == _fits(text)


@given(st.integers(min_value=1, max_value=10**25))
def test_bounded_digits_pattern_for_any_bound(bound: int) -> None:
    pattern = "^" + bounded_digits_pattern(bound) + "$"
    width = len(str(bound))
    for candidate in (bound - 1, bound, bound + 1, 0, 10 ** (width - 1), 10**width - 1):
        if candidate < 0:
            continue
        text = str(candidate).zfill(width) if candidate < bound else str(candidate)
        expected = len(text) <= width and int(text) <= bound
        assert bool(re.fullmatch(pattern, text)) == expected, (bound, text)


CODE_CHARS = st.text(
    alphabet="abcXYZ019-_./:?#%@ ", min_size=0, max_size=40
)  # no newline: Python's `$` also matches before a final "\n"


@given(CODE_CHARS)
def test_invite_schema_pattern_agrees_with_validation(text: str) -> None:
    assert bool(re.search(INVITE_INPUT_PATTERN, text)) == (normalize_invite_code(text) is not None)


@given(
    st.sampled_from(
        [
            "",
            "discord.gg/",
            "https://discord.gg/",
            "discord.com/invite/",
            "http://www.discordapp.com/invite/",
            "https://evil.com/invite/",
            "discord.new/",
        ]
    ),
    st.text(alphabet="aZ9-", min_size=0, max_size=34),
    st.sampled_from(["", "/", "?x=1", "#a", "/x"]),
)
def test_invite_url_forms_agree(prefix: str, code: str, suffix: str) -> None:
    text = prefix + code + suffix
    expected_ok = (
        prefix
        in {
            "",
            "discord.gg/",
            "https://discord.gg/",
            "discord.com/invite/",
            "http://www.discordapp.com/invite/",
        }
        and 2 <= len(code) <= 32
        and suffix != "/x"
    )
    assert (normalize_invite_code(text) is not None) == expected_ok
    assert bool(re.search(INVITE_INPUT_PATTERN, text)) == expected_ok
    if expected_ok:
        assert normalize_invite_code(text) == code


@given(CODE_CHARS)
def test_template_schema_pattern_agrees_with_validation(text: str) -> None:
    ok = normalize_template_code(text) is not None
    assert bool(re.search(TEMPLATE_INPUT_PATTERN, text)) == ok


@given(st.text(alphabet="@me0123456789 ", max_size=22))
def test_user_ref_pattern_agrees_with_validation(text: str) -> None:
    t = tool("discord_get_user")
    try:
        validate_input(t, {"user_id": text})
        ok = True
    except ValidationError:
        ok = False
    assert bool(re.search(USER_REF_PATTERN, text)) == ok


# ------------------------------------------------- the exported schemas agree with validation

SAMPLES: dict[str, list[Any]] = {
    "snowflake": [
        "0",
        "613425648685547541",
        "18446744073709551615",
        "18446744073709551616",
        "abc",
        "",
        613425648685547541,
        None,
        True,
    ],
    "user_ref": ["@me", "42", "me", "@me ", 42, None],
    "boolean": [True, False, "true", 1, 0, None],
    "invite_code": ["abc", "https://discord.gg/abc?x=1", "a", "https://evil.example/x", 5, None],
    "template_code": ["hgM48av5Q69A", "discord.new/abc", "discord.gg/abc", "a", None],
    "emoji": ["👍", "party:42", "<a:x:1>", "thumbsup", "", None, 1],
    "enum": ["shield", "banner4", "Shield", "", None, 0, 1, 4, 99],
    "integer": [1, 50, 100, 200, 0, 201, 101, -1, "5", 5.0, 5.5, True, None, 2**70],
    "number": [0, 0.5, 1, 2, -1, "1", None, True],
    "string": ["x", "", "1", "x" * 3000, 5, None],
    "array": [[], ["1"], ["1", "1"], [1], "x", None, [None], [{}]],
    "object": [{}, {"x": 1}, {"x": "y"}, "x", [], None],
    "base64_file": ["AAAA", "iVBORw0KGgoAAAAA", "not base64", "", None],
}
VALIDATING = Catalog.load_all()


def semantic_type(param: ParamSpec) -> str:
    if param.kind is not None:
        return param.kind
    if param.schema_.get("format") == "snowflake":
        return "snowflake"
    if "enum" in param.schema_:
        return "enum"
    return param.type or "object"


def _validates(t: ToolSpec, tool_input: object) -> bool:
    try:
        validate_input(t, tool_input)
    except ValidationError:
        return False
    return True


def _load_examples() -> Any:
    path = Path(__file__).resolve().parents[1] / "specs" / "examples.py"
    spec = importlib.util.spec_from_file_location("catalog_examples", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


EXAMPLES = _load_examples()
SCALARS = ("string", "integer", "number", "boolean")


def _cross_field(t: ToolSpec, name: str) -> bool:
    """Parameters whose validity also depends on other fields (Discord's message rules and the
    two names of the audit-log reason), where the schema alone cannot agree."""
    message = t.message is not None and (
        (t.message.at is None and name in MESSAGE_PARTS) or name == t.message.at
    )
    return message or name in ("reason", "audit_log_reason")


@pytest.mark.parametrize("t", VALIDATING.tools(), ids=lambda t: t.name)
def test_schema_and_validation_agree_on_every_parameter(t: ToolSpec) -> None:
    plain = Draft202012Validator(input_schema(t), format_checker=FORMATS)
    strict = Draft202012Validator(openai_tool(t)["function"]["parameters"], format_checker=FORMATS)
    base = EXAMPLES.minimal_input(t)
    assert plain.is_valid(base)
    assert _validates(t, base)
    # The strict form writes the same JSON for scalars; compare it when nothing else is given.
    comparable = all(t.param_type(q) in SCALARS for q in t.params if q.required)
    for p in t.params:
        if _cross_field(t, p.name):
            continue
        for value in SAMPLES[semantic_type(p)]:
            candidate = {**base, p.name: value}
            expected = _validates(t, candidate)
            if p.kind == "base64_file":
                # The schema checks base64 syntax; validation also the file's type and size.
                assert plain.is_valid(candidate) or not expected, (p.name, value)
            else:
                assert plain.is_valid(candidate) == expected, (p.name, value)
            if comparable and t.param_type(p) in SCALARS:
                # OpenAI strict: every key present, optional ones null when not given.
                full = {q.name: candidate.get(q.name) for q in t.params}
                # Strict mode cannot say lengths (minLength/maxLength are dropped), so it may
                # accept what validation then refuses with a reason; never the reverse.
                if _validates(t, strip_nulls(t, full)):
                    assert strict.is_valid(full), (p.name, value)
    assert not plain.is_valid({**base, "unknown": 1})
    assert not _validates(t, {**base, "unknown": 1})


# ---------------------------------------------- Discord's own limits, on the catalog's tools

CHANNEL = "1100000000000000001"


def bot_fields(name: str, tool_input: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationError) as info:
        validate_input(VALIDATING.get(name), tool_input)
    for field, reason in info.value.fields.items():
        assert f"{field}: {reason}" in info.value.message
    return info.value.fields


def test_a_new_message_needs_something_to_show() -> None:
    fields = bot_fields("discordbot_create_message", {"channel_id": CHANNEL})
    assert fields == {
        "content": "a message needs at least one of content, embeds, sticker_ids, components, "
        "poll, attachments (Discord refuses an empty message)"
    }
    fields = bot_fields(
        "discordbot_execute_webhook", {"webhook_id": CHANNEL, "webhook_token": "t", "content": ""}
    )
    assert "at least one of content, embeds, components, poll" in fields["content"]
    forum = {"channel_id": CHANNEL, "name": "Release notes"}
    assert (
        "content, embeds, sticker_ids"
        in bot_fields("discordbot_start_thread_in_forum_channel", forum)["content"]
    )
    # An edit may change a single field, or none of the message parts (flags only).
    edit = VALIDATING.get("discordbot_edit_message")
    assert validate_input(edit, {"channel_id": CHANNEL, "message_id": CHANNEL, "flags": 4})


@pytest.mark.parametrize(
    "tool",
    [
        "discordbot_create_message",
        "discordbot_edit_message",
        "discordbot_execute_webhook",
        "discordbot_edit_webhook_message",
        "discordbot_edit_original_interaction_response",
        "discordbot_start_thread_in_forum_channel",
    ],
)
def test_message_content_is_at_most_2000_characters(tool: str) -> None:
    t = VALIDATING.get(tool)
    base = {p.name: EXAMPLES.param_example(t, p) for p in t.params if p.required}
    assert validate_input(t, {**base, "content": "x" * 2000})["content"] == "x" * 2000
    fields = bot_fields(tool, {**base, "content": "x" * 2001})
    assert fields == {"content": "must be at most 2000 characters, got 2001"}


def test_embed_limits_each_part_and_all_together() -> None:
    tool = "discordbot_create_message"
    embed = {
        "title": "t" * 257,
        "color": 2**24,
        "fields": [{"name": "n", "value": "v" * 1025}],
        "footer": {"text": "f" * 2049},
        "author": {"name": "a" * 257},
    }
    assert bot_fields(tool, {"channel_id": CHANNEL, "embeds": [embed]}) == {
        "embeds[0].title": "must be at most 256 characters, got 257",
        "embeds[0].color": "must be between 0 and 16777215",
        "embeds[0].author.name": "must be at most 256 characters, got 257",
        "embeds[0].footer.text": "must be at most 2048 characters, got 2049",
        "embeds[0].fields[0].value": "must be at most 1024 characters, got 1025",
    }
    assert bot_fields(tool, {"channel_id": CHANNEL, "embeds": [{}] * 11}) == {
        "embeds": "must have at most 10 items, got 11"
    }
    together = [{"description": "d" * 4096}, {"title": "t" * 256, "description": "d" * 1649}]
    assert (
        "6001 characters" in bot_fields(tool, {"channel_id": CHANNEL, "embeds": together})["embeds"]
    )
    together[1]["description"] = "d" * 1648
    validate_input(VALIDATING.get(tool), {"channel_id": CHANNEL, "embeds": together})


def test_nested_message_fields_are_named_by_their_path() -> None:
    tool = "discordbot_create_message"
    fields = bot_fields(
        tool,
        {
            "channel_id": CHANNEL,
            "content": "x",
            "nonce": "n" * 26,
            "sticker_ids": ["12a"],
            "allowed_mentions": {"parse": ["users", "nobody"]},
            "message_reference": {},
            "embeds": [{"timestamp": "yesterday", "url": "not a url"}],
            "components": [{"type": 1, "components": [{"type": 2, "style": 9, "custom_id": "a"}]}],
        },
    )
    assert fields == {
        "nonce": "must be at most 25 characters, got 26",
        "sticker_ids[0]": "must be a Discord ID (snowflake): a string of 1 to 20 digits",
        "allowed_mentions.parse[1]": "must be one of users, roles, everyone",
        "message_reference.message_id": "is required",
        "embeds[0].url": "must be an absolute URL",
        "embeds[0].timestamp": "must be an ISO 8601 date and time, e.g. 2026-01-31T18:00:00Z",
        "components[0].components[0].style": "must be one of 1, 2, 3, 4, 5, 6",
    }
    unknown_kind = bot_fields(tool, {"channel_id": CHANNEL, "components": [{"type": 99}]})
    assert unknown_kind == {"components[0].type": "must be one of 1, 9, 10, 12, 13, 14, 17"}


def test_a_union_is_explained_by_the_branch_the_value_fits() -> None:
    tool = "discordbot_create_interaction_response"
    base = {"interaction_id": CHANNEL, "interaction_token": "t", "type": 4}
    assert bot_fields(tool, {**base, "data": {"content": "x" * 2001}}) == {
        "data.content": "must be at most 2000 characters, got 2001"
    }
    assert bot_fields(tool, {**base, "data": {"content": "x", "embeds": [{"title": 5}]}}) == {
        "data.embeds[0].title": "must be a string or null, got a number"
    }
    assert bot_fields(tool, {**base, "type": 3, "data": {}}) == {
        "type": "must be one of 1, 4, 5, 6, 7, 8, 9, 12, 13"
    }


def test_unknown_parameters_are_refused_but_dropped_ones_are_accepted() -> None:
    invite = VALIDATING.get("discordbot_resolve_invite")
    assert validate_input(invite, {"invite_code": "abc", "with_expiration": False}) == {
        "invite_code": "abc",
        "with_expiration": False,
    }
    fields = bot_fields(
        "discordbot_create_guild_ban", {"guild_id": CHANNEL, "user_id": CHANNEL, "reason": "x"}
    )
    assert fields["reason"].startswith("unknown parameter (this tool accepts: guild_id, user_id")


def test_null_clears_a_nullable_field_but_never_a_required_one() -> None:
    member = VALIDATING.get("discordbot_modify_guild_member")
    lifted = validate_input(
        member, {"guild_id": CHANNEL, "user_id": CHANNEL, "communication_disabled_until": None}
    )
    assert lifted["communication_disabled_until"] is None
    assert bot_fields(
        "discordbot_modify_guild_member",
        {"guild_id": CHANNEL, "user_id": CHANNEL, "communication_disabled_until": "tomorrow"},
    ) == {
        "communication_disabled_until": "must be an ISO 8601 date and time, e.g. "
        "2026-01-31T18:00:00Z"
    }
    assert bot_fields("discordbot_create_dm", {"recipient_id": None}) == {
        "recipient_id": "is required (got null)"
    }


def test_reasons_never_repeat_the_value() -> None:
    """A value can be a secret (a webhook token): reasons say what is wrong, not what was sent."""
    secret = "s3cr3t-" * 100
    with pytest.raises(ValidationError) as info:
        validate_input(
            VALIDATING.get("discordbot_execute_webhook"),
            {"webhook_id": secret, "webhook_token": secret, "content": secret},
        )
    assert secret[:20] not in info.value.message
    assert all(secret[:20] not in reason for reason in info.value.fields.values())
