"""Guilds, roles, members, bans, invites, webhooks and the audit log, as the sandbox's bot
(``discord-api.md`` §6.1, §6.5): access (50001), permissions and hierarchy (50013), unknown
ids (100xx), and audit-log entries carrying ``X-Audit-Log-Reason``."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from .bot import (
    ADA,
    ADMIN_ROLE,
    APP,
    BOT,
    BOT_ROLE,
    CREW,
    ENGINE,
    GENERAL,
    GRACE,
    HUB,
    LINUS,
    MODERATOR,
    PNG,
    SPAMMER,
    WUMPUS,
    Bot,
    error,
)


def reason(bot: Bot, text: str) -> dict[str, str]:
    return {**bot.headers, "X-Audit-Log-Reason": quote(text)}


def audit_entries(bot: Bot, **query: Any) -> list[dict[str, Any]]:
    log = bot.ok(bot.get(f"/guilds/{HUB}/audit-logs", params=query))
    entries: list[dict[str, Any]] = log["audit_log_entries"]
    return entries


def test_fixtures_list_the_bot_and_its_world(bot: Bot) -> None:
    doc = bot.fixtures
    assert doc["bot"]["user_id"] == BOT
    assert set(doc["bot"]["guilds"]) == {HUB, CREW}
    assert doc["bot"]["not_member_of"] == [ENGINE, "1200000000000000004"]
    assert doc["channels"]["general"] == GENERAL
    assert doc["webhook"]["token"]
    assert doc["messages"][0]["pinned"] is True
    mine = bot.ok(bot.get("/users/@me/guilds"))
    assert [g["id"] for g in mine] == [HUB, CREW]
    assert mine[0]["permissions"] == doc["bot"]["guilds"][HUB]["permissions"]


def test_guild_access(bot: Bot) -> None:
    assert bot.ok(bot.get(f"/guilds/{HUB}"))["name"] == "Sandbox Hub"
    error(bot.get(f"/guilds/{ENGINE}"), 403, 50001)
    error(bot.get("/guilds/1200000000000009999"), 404, 10004)
    error(bot.get(f"/guilds/{ENGINE}/roles"), 403, 50001)
    # Compiler Crew: the bot is a member without Manage Roles or Ban Members.
    error(bot.post(f"/guilds/{CREW}/roles", json={"name": "x"}), 403, 50013)
    error(bot.put(f"/guilds/{CREW}/bans/{ADA}", json={}), 403, 50013)


def test_bot_auth(bot: Bot) -> None:
    error(bot.get("/users/@me", headers={"Authorization": "Bot not-a-token"}), 401, 0)
    error(bot.get(f"/guilds/{HUB}", headers=bot.bearer(ADA, "identify", "guilds")), 401, 0)
    error(bot.get(f"/guilds/{HUB}", headers={}), 401, 0)
    assert bot.ok(bot.get("/users/@me"))["id"] == BOT


def test_role_lifecycle_with_hierarchy_and_audit(bot: Bot) -> None:
    created = bot.ok(
        bot.post(
            f"/guilds/{HUB}/roles",
            json={"name": "Helpers", "permissions": "1024", "color": 3447003},
            headers=reason(bot, "New helpers"),
        )
    )
    assert created["permissions"] == "1024"
    assert created["position"] == 1
    roles = {r["id"]: r for r in bot.ok(bot.get(f"/guilds/{HUB}/roles"))}
    assert created["id"] in roles
    # Administrator is more than the bot has: refused.
    error(bot.post(f"/guilds/{HUB}/roles", json={"name": "x", "permissions": "8"}), 403, 50013)
    # Its own role is not below its highest role: refused.
    error(bot.patch(f"/guilds/{HUB}/roles/{BOT_ROLE}", json={"name": "me"}), 403, 50013)
    edited = bot.ok(bot.patch(f"/guilds/{HUB}/roles/{created['id']}", json={"name": "Helpers+"}))
    assert edited["name"] == "Helpers+"
    assert bot.delete(f"/guilds/{HUB}/roles/{created['id']}").status_code == 204
    error(bot.get(f"/guilds/{HUB}/roles/{created['id']}"), 404, 10011)
    error(bot.delete(f"/guilds/{HUB}/roles/{HUB}"), 400, 50028)  # @everyone
    actions = [(e["action_type"], e["target_id"]) for e in audit_entries(bot)]
    assert (30, created["id"]) in actions
    assert (31, created["id"]) in actions
    assert (32, created["id"]) in actions
    create_entry = next(e for e in audit_entries(bot, action_type=30))
    assert create_entry["reason"] == "New helpers"
    assert create_entry["user_id"] == BOT


def test_member_roles_and_hierarchy(bot: Bot) -> None:
    url = f"/guilds/{HUB}/members/{WUMPUS}/roles/{MODERATOR}"
    assert bot.put(url).status_code == 204
    assert MODERATOR in bot.ok(bot.get(f"/guilds/{HUB}/members/{WUMPUS}"))["roles"]
    assert bot.delete(url).status_code == 204
    error(bot.put(f"/guilds/{HUB}/members/{WUMPUS}/roles/{BOT_ROLE}"), 403, 50013)
    error(bot.put(f"/guilds/{HUB}/members/{LINUS}/roles/{MODERATOR}"), 404, 10007)
    error(bot.put(f"/guilds/{HUB}/members/{WUMPUS}/roles/1700000000000009999"), 404, 10011)
    entry = audit_entries(bot, action_type=25)[0]
    assert entry["target_id"] == WUMPUS
    assert entry["changes"][0]["key"] == "$remove"


def test_kick_ban_unban(bot: Bot) -> None:
    error(bot.delete(f"/guilds/{HUB}/members/{ADA}"), 403, 50013)  # the owner
    kicked = bot.delete(f"/guilds/{HUB}/members/{GRACE}", headers=reason(bot, "Bye"))
    assert kicked.status_code == 204
    error(bot.get(f"/guilds/{HUB}/members/{GRACE}"), 404, 10007)
    banned = bot.put(
        f"/guilds/{HUB}/bans/{WUMPUS}",
        json={"delete_message_seconds": 60},
        headers=reason(bot, "Spam ✋"),
    )
    assert banned.status_code == 204
    ban = bot.ok(bot.get(f"/guilds/{HUB}/bans/{WUMPUS}"))
    assert ban["user"]["id"] == WUMPUS
    assert ban["reason"] == "Spam ✋"
    error(bot.get(f"/guilds/{HUB}/members/{WUMPUS}"), 404, 10007)
    ids = [b["user"]["id"] for b in bot.ok(bot.get(f"/guilds/{HUB}/bans"))]
    assert set(ids) == {SPAMMER, WUMPUS}
    assert bot.delete(f"/guilds/{HUB}/bans/{SPAMMER}").status_code == 204
    error(bot.delete(f"/guilds/{HUB}/bans/{SPAMMER}"), 404, 10026)
    kinds = {(e["action_type"], e["target_id"], e.get("reason")) for e in audit_entries(bot)}
    assert (20, GRACE, "Bye") in kinds
    assert (22, WUMPUS, "Spam ✋") in kinds
    assert (23, SPAMMER, None) in kinds


def test_channel_lifecycle_and_overwrites(bot: Bot) -> None:
    made = bot.ok(bot.post(f"/guilds/{HUB}/channels", json={"name": "ops", "topic": "t"}), 201)
    assert made["guild_id"] == HUB
    url = f"/channels/{made['id']}/permissions/{MODERATOR}"
    assert bot.put(url, json={"type": 0, "allow": "1024", "deny": "2048"}).status_code == 204
    got = bot.ok(bot.get(f"/channels/{made['id']}"))
    assert {"id": MODERATOR, "type": 0, "allow": "1024", "deny": "2048"} in got[
        "permission_overwrites"
    ]
    # Granting Administrator through an overwrite exceeds the bot's own permissions.
    error(bot.put(url, json={"type": 0, "allow": "8"}), 403, 50013)
    assert bot.delete(url).status_code == 204
    renamed = bot.ok(bot.patch(f"/channels/{made['id']}", json={"name": "ops-2"}))
    assert renamed["name"] == "ops-2"
    assert bot.ok(bot.delete(f"/channels/{made['id']}"))["id"] == made["id"]
    error(bot.get(f"/channels/{made['id']}"), 404, 10003)
    actions = [e["action_type"] for e in audit_entries(bot)]
    assert {10, 11, 12, 13, 15} <= set(actions)


def test_invites_create_resolve_revoke(bot: Bot) -> None:
    invite = bot.ok(bot.post(f"/channels/{GENERAL}/invites", json={"max_age": 600, "unique": True}))
    code = invite["code"]
    assert invite["inviter"]["id"] == BOT
    resolved = bot.ok(bot.get(f"/invites/{code}", headers={}))
    assert resolved["channel"]["id"] == GENERAL
    assert code in [i["code"] for i in bot.ok(bot.get(f"/guilds/{HUB}/invites"))]
    assert bot.ok(bot.delete(f"/invites/{code}"))["code"] == code
    error(bot.get(f"/invites/{code}", headers={}), 404, 10006)
    assert [e["action_type"] for e in audit_entries(bot)][:2] == [42, 40]


def test_webhooks_and_execution(bot: Bot) -> None:
    hook = bot.ok(bot.post(f"/channels/{GENERAL}/webhooks", json={"name": "Deploys"}))
    assert hook["token"]
    error(bot.post(f"/channels/{GENERAL}/webhooks", json={"name": "Discord bot"}), 400, 50035)
    url = f"/webhooks/{hook['id']}/{hook['token']}"
    sent = bot.ok(bot.post(url, params={"wait": "true"}, json={"content": "deployed"}, headers={}))
    assert sent["webhook_id"] == hook["id"]
    assert sent["author"]["username"] == "Deploys"
    assert bot.post(url, json={"content": "quiet"}, headers={}).status_code == 204
    edited = bot.ok(bot.patch(f"{url}/messages/{sent['id']}", json={"content": "v2"}, headers={}))
    assert edited["content"] == "v2"
    seeded = bot.fixtures["messages"][0]["id"]  # ada's, not the webhook's
    error(bot.get(f"{url}/messages/{seeded}", headers={}), 404, 10008)
    error(
        bot.post(f"/webhooks/{hook['id']}/wrong-token", json={"content": "x"}, headers={}),
        401,
        50027,
    )
    error(bot.get("/webhooks/2000000000000009999"), 404, 10015)
    by_token = bot.ok(bot.get(url, headers={}))
    assert "user" not in by_token
    assert bot.delete(f"/webhooks/{hook['id']}").status_code == 204
    error(bot.post(url, json={"content": "x"}, headers={}), 404, 10015)
    assert [e["action_type"] for e in audit_entries(bot)][:2] == [52, 50]


def test_emojis_stickers_events(bot: Bot) -> None:
    emoji = bot.ok(bot.post(f"/guilds/{HUB}/emojis", json={"name": "fresh", "image": PNG}), 201)
    error(
        bot.post(f"/guilds/{HUB}/emojis", json={"name": "bad", "image": "not-an-image"}), 400, 50035
    )
    error(bot.get(f"/guilds/{HUB}/emojis/2200000000000009999"), 404, 10014)
    message = bot.send()
    path = (
        f"/channels/{GENERAL}/messages/{message['id']}/reactions/{emoji['name']}:{emoji['id']}/@me"
    )
    assert bot.put(path).status_code == 204
    sticker = bot.ok(
        bot.post(
            f"/guilds/{HUB}/stickers",
            files={
                "name": (None, "castle2"),
                "tags": (None, "castle"),
                "file": ("s.png", b"\x89PNG", "image/png"),
            },
        ),
        201,
    )
    assert sticker["guild_id"] == HUB
    event = bot.ok(
        bot.post(
            f"/guilds/{HUB}/scheduled-events",
            json={
                "name": "Meetup",
                "privacy_level": 2,
                "scheduled_start_time": "2030-01-01T18:00:00+00:00",
                "entity_type": 3,
            },
        ),
        400,
    )
    # An external event needs its location: the spec's schema for entity type 3 requires it.
    assert event["errors"]["entity_metadata"]["_errors"][0]["code"] == "BASE_TYPE_REQUIRED"
    error(bot.get(f"/guilds/{HUB}/scheduled-events/1250000000000009999"), 404, 10070)


def test_bans_need_ban_members_everywhere(bot: Bot) -> None:
    body = bot.ok(bot.post(f"/guilds/{HUB}/bulk-ban", json={"user_ids": [WUMPUS, ADA]}))
    assert body == {"banned_users": [WUMPUS], "failed_users": [ADA]}


def test_application_commands(bot: Bot) -> None:
    url = f"/applications/{APP}/commands"
    made = bot.ok(bot.post(url, json={"name": "hello", "description": "Say hello"}), 201)
    again = bot.ok(bot.post(url, json={"name": "hello", "description": "Say hi"}), 200)
    assert again["id"] == made["id"]
    assert again["description"] == "Say hi"
    error(bot.post(url, json={"name": "Bad Name", "description": "x"}), 400, 50035)
    error(bot.get(f"{url}/2500000000000009999"), 404, 10063)
    error(bot.get("/applications/1300000000000000009/commands"), 404, 10002)
    error(bot.get(f"/applications/{APP}/guilds/{ENGINE}/commands"), 403, 50001)
    # Command permissions need a user's Bearer token (Manage Guild and Manage Roles).
    permissions_url = f"/applications/{APP}/guilds/{HUB}/commands/{made['id']}/permissions"
    body = {"permissions": [{"id": MODERATOR, "type": 1, "permission": True}]}
    error(bot.put(permissions_url, json=body), 401, 0)
    ada = bot.bearer(ADA, "applications.commands.permissions.update")
    set_ = bot.ok(bot.put(permissions_url, json=body, headers=ada))
    assert set_["permissions"] == body["permissions"]
    grace = bot.bearer(GRACE, "applications.commands.permissions.update")
    error(bot.put(permissions_url, json=body, headers=grace), 403, 50013)
    assert audit_entries(bot, action_type=121)[0]["target_id"] == made["id"]


def test_interaction_callback_and_followups(bot: Bot) -> None:
    made = bot.client.post("/_sandbox/interactions", json={"user_id": GRACE}).json()
    callback = f"/interactions/{made['id']}/{made['token']}/callback"
    error(
        bot.post(f"/interactions/{made['id']}/wrong/callback", json={"type": 4}, headers={}),
        404,
        10062,
    )
    answered = bot.post(
        callback,
        params={"with_response": "true"},
        json={"type": 4, "data": {"content": "pong"}},
        headers={},
    )
    body = bot.ok(answered)
    assert body["resource"]["message"]["content"] == "pong"
    error(
        bot.post(callback, json={"type": 4, "data": {"content": "again"}}, headers={}), 400, 40060
    )
    hook = f"/webhooks/{APP}/{made['token']}"
    original = bot.ok(bot.get(f"{hook}/messages/@original", headers={}))
    assert original["id"] == body["resource"]["message"]["id"]
    assert original["interaction_metadata"]["user"]["id"] == GRACE
    followup = bot.ok(bot.post(hook, json={"content": "more"}, headers={}))
    assert bot.ok(bot.get(f"{hook}/messages/{followup['id']}", headers={}))["content"] == "more"
    assert bot.delete(f"{hook}/messages/@original", headers={}).status_code == 204
    error(bot.get(f"{hook}/messages/@original", headers={}), 404, 10008)
    bad = bot.client.post("/_sandbox/interactions", json={"channel_id": "123"})
    assert bad.status_code == 404
    assert bad.json()["error"]["code"] == "NOT_FOUND"


def test_entitlements_skus_and_role_connections(bot: Bot) -> None:
    ents = f"/applications/{APP}/entitlements"
    assert bot.post(f"{ents}/1500000000000000005/consume").status_code == 204  # gems
    error(bot.post(f"{ents}/1500000000000000001/consume"), 400, 40074)  # a subscription
    test = bot.ok(
        bot.post(ents, json={"sku_id": "1400000000000000003", "owner_id": ADA, "owner_type": 2})
    )
    assert test["type"] == 4
    assert bot.delete(f"{ents}/{test['id']}").status_code == 204
    error(bot.get(f"{ents}/{test['id']}"), 404, 10029)
    error(
        bot.post(ents, json={"sku_id": "1400000000000009999", "owner_id": ADA, "owner_type": 2}),
        404,
        10027,
    )
    skus = bot.ok(bot.get(f"/applications/{APP}/skus"))
    assert {s["id"] for s in skus} == set(bot.fixtures["skus"])
    ada = bot.bearer(ADA, "role_connections.write")
    url = f"/users/@me/applications/{APP}/role-connection"
    put = bot.ok(
        bot.put(url, json={"platform_name": "Game", "metadata": {"level": "9"}}, headers=ada)
    )
    assert put["metadata"] == {"level": "9"}
    error(bot.put(url, json={"metadata": {"nope": "1"}}, headers=ada), 400, 50035)
    error(bot.get(url), 401, 0)  # Bearer only


def test_lobbies(bot: Bot) -> None:
    lobby = bot.ok(bot.post("/lobbies", json={"members": [{"id": ADA}]}), 201)
    url = f"/lobbies/{lobby['id']}"
    member = bot.ok(bot.put(f"{url}/members/{GRACE}", json={"metadata": {"team": "red"}}))
    assert member["id"] == GRACE
    ada = bot.bearer(ADA, "identify")
    sent = bot.ok(bot.post(f"{url}/messages", json={"content": "gg"}, headers=ada), 201)
    assert sent["author"]["id"] == ADA
    linus = bot.bearer(LINUS, "identify")
    error(bot.post(f"{url}/messages", json={"content": "hi"}, headers=linus), 403, 50001)
    assert bot.delete(f"{url}/members/@me", headers=ada).status_code == 204
    error(bot.get("/lobbies/2600000000000009999"), 404, 10031)
    assert bot.delete(url).status_code == 204
    error(bot.get(url), 404, 10031)


def test_unknown_ids_give_discords_codes(bot: Bot) -> None:
    error(bot.get(f"/guilds/{HUB}/members/1100000000000009999"), 404, 10007)
    error(bot.get(f"/guilds/{HUB}/roles/1700000000000009999"), 404, 10011)
    error(bot.get(f"/guilds/{HUB}/stickers/2300000000000009999"), 404, 10060)
    error(bot.get("/sticker-packs/1800000000000009999"), 404, 10061)
    error(bot.get(f"/guilds/{HUB}/bans/{ADA}"), 404, 10026)
    error(bot.get("/stage-instances/1600000000000000105"), 404, 10067)
    error(bot.get("/users/1100000000000009999"), 404, 10013)
    error(bot.patch(f"/guilds/{HUB}/members/{ADA}", json={"nick": "x"}), 403, 50013)
    assert ADMIN_ROLE in bot.ok(bot.get(f"/guilds/{HUB}/members/{ADA}"))["roles"]


def test_the_application_description_takes_the_documented_string_and_the_localized_object(
    bot: Bot,
) -> None:
    edited = bot.ok(bot.patch("/applications/@me", json={"description": "Plain text."}))
    assert edited["description"] == "Plain text."
    localized = {"default": "Localized.", "localizations": {"fr": "Localisé."}}
    edited = bot.ok(bot.patch("/applications/@me", json={"description": localized}))
    assert edited["description"] == "Localized."
    assert bot.ok(bot.get("/applications/@me"))["description"] == "Localized."
    error(bot.patch("/applications/@me", json={"description": 7}), 400, 50035)
