"""Discord's named hooks, each on its own, and through the catalog."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tokenward.clock import ManualClock, isoformat
from tokenward.providers.discord.hooks import (
    HOOKS,
    ensure_nonce,
    filter_entitlements,
    permission_names,
    user_ref_route,
)
from tokenward.providers.discord.permissions import PERMISSIONS, bitfield
from tokenward.providers.hooks import HookContext
from tokenward.tools.catalog import Catalog
from tokenward.tools.results import ImageResult, TextResult

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def _ctx() -> HookContext:
    return HookContext(clock=ManualClock(start=NOW))


def entitlement(n: int, *, deleted: bool = False, ends_at: Any = None) -> dict[str, Any]:
    return {"id": str(n), "sku_id": "1", "deleted": deleted, "ends_at": ends_at}


class TestUserRefRoute:
    def test_at_me_reads_the_connected_user_with_the_user_token(self) -> None:
        choice = user_ref_route({"user_id": "@me"})
        assert (choice.path, choice.auth, choice.scopes) == ("/users/@me", "user", ("identify",))
        assert choice.note is None

    def test_any_snowflake_needs_the_bot_token(self) -> None:
        choice = user_ref_route({"user_id": "80351110224678912"})
        assert (choice.path, choice.auth, choice.scopes) == ("/users/{user_id}", "bot", ())
        assert choice.note is not None
        assert "only to bot tokens" in choice.note

    def test_registered(self) -> None:
        assert HOOKS.route["user_ref_route"] is user_ref_route


class TestFilterEntitlements:
    def test_user_guild_and_id_window_filters(self) -> None:
        data = [
            {"id": "10", "user_id": "7", "guild_id": None},
            {"id": "20", "user_id": "8", "guild_id": "5"},
            {"id": "30", "user_id": "7", "guild_id": "5"},
            {"id": "x", "user_id": "7"},  # unreadable ID: outside any window
        ]
        ids = lambda args: [e["id"] for e in filter_entitlements(data, args, _ctx())]  # noqa: E731
        assert ids({"user_id": "7"}) == ["10", "30", "x"]
        assert ids({"guild_id": "5"}) == ["20", "30"]
        assert ids({"after": "10"}) == ["20", "30"]
        assert ids({"before": "30"}) == ["10", "20"]
        assert ids({"after": "10", "before": "30", "user_id": "8"}) == ["20"]
        assert ids({"user_id": "7", "limit": 1}) == ["10"]

    def test_no_flags_changes_nothing(self) -> None:
        data = [entitlement(1, deleted=True), entitlement(2, ends_at=isoformat(NOW - 1))]
        assert filter_entitlements(data, {}, _ctx()) == data
        flags_off = {"exclude_deleted": False, "exclude_ended": False}
        assert filter_entitlements(data, flags_off, _ctx()) == data

    def test_exclude_deleted_drops_only_deleted_true(self) -> None:
        data = [
            entitlement(1, deleted=True),
            entitlement(2),
            {"id": "3"},  # no "deleted" field: kept
            {"id": "4", "deleted": "true"},  # not the JSON boolean: kept
        ]
        kept = filter_entitlements(data, {"exclude_deleted": True}, _ctx())
        assert [e["id"] for e in kept] == ["2", "3", "4"]

    def test_exclude_ended_uses_the_given_clock(self) -> None:
        data = [
            entitlement(1, ends_at=isoformat(NOW - 60)),  # ended a minute ago
            entitlement(2, ends_at=isoformat(NOW + 60)),  # ends in a minute
            entitlement(3, ends_at=None),  # never ends
            entitlement(4, ends_at="2025-12-31T23:59:59Z"),  # Z form, past
            entitlement(5, ends_at="2026-01-01T00:00:01"),  # naive means UTC, future
            entitlement(6, ends_at="not a date"),  # unreadable: kept, never guessed away
            entitlement(7, ends_at=isoformat(NOW)),  # ends exactly now: ended
        ]
        kept = filter_entitlements(data, {"exclude_ended": True}, _ctx())
        assert [e["id"] for e in kept] == ["2", "3", "5", "6"]

        # Move the clock: the one that ended in the future has now ended too.
        clock = ManualClock(start=NOW)
        clock.advance(120)
        later = filter_entitlements(data, {"exclude_ended": True}, HookContext(clock=clock))
        assert [e["id"] for e in later] == ["3", "6"]

    def test_limit_keeps_the_first_n_after_filtering(self) -> None:
        data = [entitlement(1, deleted=True)] + [entitlement(n) for n in range(2, 8)]
        kept = filter_entitlements(data, {"exclude_deleted": True, "limit": 3}, _ctx())
        assert [e["id"] for e in kept] == ["2", "3", "4"]
        assert filter_entitlements(data, {"limit": 100}, _ctx()) == data

    def test_non_list_is_returned_unchanged(self) -> None:
        error = {"code": 10002, "message": "Unknown Application"}
        assert filter_entitlements(error, {"limit": 1}, _ctx()) == error

    def test_through_the_catalog(self) -> None:
        catalog = Catalog.load()
        prepared = catalog.prepare(
            "discord_get_current_user_application_entitlements",
            {"application_id": "1", "exclude_deleted": True, "exclude_ended": True, "limit": 1},
            bot_token_available=False,
        )
        data = [
            entitlement(1, deleted=True),
            entitlement(2, ends_at=isoformat(NOW - 1)),
            entitlement(3),
            entitlement(4),
        ]
        result = catalog.finish(prepared, data, clock=ManualClock(start=NOW))
        assert [e["id"] for e in result] == ["3"]

    def test_registered(self) -> None:
        assert HOOKS.result["filter_entitlements"] is filter_entitlements


def test_finish_without_a_hook_returns_the_data() -> None:
    catalog = Catalog.load()
    prepared = catalog.prepare("discord_get_gateway", {}, bot_token_available=False)
    data = {"url": "wss://gateway.discord.gg"}
    assert catalog.finish(prepared, data, clock=ManualClock()) is data


@pytest.mark.parametrize("payload", [b"\x89PNG\r\n\x1a\n\x00", b""])
def test_image_result_round_trips(payload: bytes) -> None:
    image = ImageResult(data=payload, media_type="image/png")
    as_dict = image.to_dict()
    assert as_dict["type"] == "image"
    assert as_dict["media_type"] == "image/png"
    assert base64.b64decode(as_dict["data"]) == payload
    mcp = image.to_mcp_content()
    assert mcp == {"type": "image", "data": as_dict["data"], "mimeType": "image/png"}


def test_text_result_keeps_the_text_and_its_media_type() -> None:
    text = TextResult.decode(b"user_id\n1100000000000000001\n\xff", "text/csv")
    assert text.text == "user_id\n1100000000000000001\n\ufffd"
    assert text.to_dict() == {"type": "text", "media_type": "text/csv", "text": text.text}
    assert text.to_mcp_content() == {"type": "text", "text": text.text}


class TestEnsureNonce:
    def test_adds_a_fresh_nonce_with_enforce_nonce(self) -> None:
        first, second = ensure_nonce({"content": "hi"}), ensure_nonce({"content": "hi"})
        assert first["enforce_nonce"] is True
        assert len(first["nonce"]) <= 25
        assert first["nonce"] != second["nonce"]
        assert first["content"] == "hi"

    def test_keeps_the_callers_choice(self) -> None:
        assert ensure_nonce({"nonce": "mine"}) == {"nonce": "mine"}
        assert ensure_nonce({"enforce_nonce": False}) == {"enforce_nonce": False}
        made = ensure_nonce({"enforce_nonce": True})
        assert made["enforce_nonce"] is True
        assert made["nonce"]

    def test_registered(self) -> None:
        assert HOOKS.input["ensure_nonce"] is ensure_nonce


class TestPermissionNames:
    def test_names_become_the_bitfield_and_win(self) -> None:
        out = permission_names(
            {"permissions": "8", "permissions_names": ["ADMINISTRATOR", "PIN_MESSAGES"]}
        )
        assert out["permissions"] == str(8 | (1 << 51))
        out = permission_names({"allow_names": ["VIEW_CHANNEL"], "deny_names": []})
        assert (out["allow"], out["deny"]) == ("1024", "0")
        assert permission_names({"allow": "5"}) == {"allow": "5"}

    def test_the_table_has_distinct_single_bits(self) -> None:
        values = list(PERMISSIONS.values())
        assert len(set(values)) == len(values)
        assert all(v & (v - 1) == 0 for v in values)
        assert bitfield([]) == "0"
        assert HOOKS.input["permission_names"] is permission_names
