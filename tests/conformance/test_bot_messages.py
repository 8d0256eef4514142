"""Messages as a bot: sending, nonce/enforce_nonce, the dropped answer, limits, reactions with
emoji path segments, pins, threads (``discord-api.md`` §6.2, §6.3)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

from tokenward.clock import ManualClock
from tokenward.sandbox import SandboxSettings

from .bot import (
    ADA,
    BOT,
    CREW_ANNOUNCEMENTS,
    ENGINE_NOTES,
    FORUM,
    GENERAL,
    NEWS,
    READ_ONLY,
    STAFF_ONLY,
    Bot,
    error,
    serve,
)

THUMBS = "\N{THUMBS UP SIGN}"


def test_bot_sends_a_message_that_is_stored(bot: Bot) -> None:
    message = bot.send(content=f"hi <@{ADA}>")
    assert message["author"]["id"] == BOT
    assert message["author"]["bot"] is True
    assert message["channel_id"] == GENERAL
    assert [user["id"] for user in message["mentions"]] == [ADA]
    listed = bot.ok(bot.get(f"/channels/{GENERAL}/messages", params={"limit": 1}))
    assert [m["id"] for m in listed] == [message["id"]]
    got = bot.ok(bot.get(f"/channels/{GENERAL}/messages/{message['id']}"))
    assert got["content"] == f"hi <@{ADA}>"


def test_enforce_nonce_returns_the_earlier_message(bot: Bot) -> None:
    first = bot.send(content="once", nonce="retry-1", enforce_nonce=True)
    again = bot.send(content="once", nonce="retry-1", enforce_nonce=True)
    assert again["id"] == first["id"]
    assert [m["nonce"] for m in bot.messages(GENERAL) if m.get("nonce") == "retry-1"] == ["retry-1"]


def test_a_nonce_without_enforce_nonce_creates_twice(bot: Bot) -> None:
    first = bot.send(content="twice", nonce="n-2")
    second = bot.send(content="twice", nonce="n-2")
    assert first["id"] != second["id"]
    assert len([m for m in bot.messages(GENERAL) if m.get("nonce") == "n-2"]) == 2


@pytest.fixture
def clocked() -> Iterator[tuple[Bot, ManualClock]]:
    clock = ManualClock()
    for item in serve(SandboxSettings(rate_limits=False), clock):
        yield item, clock


def test_the_nonce_window_is_five_minutes(clocked: tuple[Bot, ManualClock]) -> None:
    bot, clock = clocked
    first = bot.send(nonce=7, enforce_nonce=True)
    clock.advance(299)
    assert bot.send(nonce=7, enforce_nonce=True)["id"] == first["id"]
    clock.advance(2)
    assert bot.send(nonce=7, enforce_nonce=True)["id"] != first["id"]


def test_dropped_answer_after_the_message_exists_then_retry_is_exactly_once(bot: Bot) -> None:
    route = f"/api/v10/channels/{GENERAL}/messages"
    rule = {"route": route, "method": "POST", "drop_connection": True, "after_handler": True}
    created = bot.client.post("/_sandbox/faults", json={**rule, "count": 1})
    assert created.status_code == 201, created.text
    body = {"content": "exactly once", "nonce": "drop-1", "enforce_nonce": True}
    with pytest.raises(httpx.HTTPError):  # the answer is cut off mid-body
        bot.post(f"/channels/{GENERAL}/messages", json=body).read()
    stored = [m for m in bot.messages(GENERAL) if m.get("nonce") == "drop-1"]
    assert len(stored) == 1  # the sandbox created it before dropping the connection
    retried = bot.send(**body)
    assert retried["id"] == stored[0]["id"]
    assert len([m for m in bot.messages(GENERAL) if m.get("nonce") == "drop-1"]) == 1
    # A GET of the same route is not affected by a POST-only rule.
    assert bot.get(f"/channels/{GENERAL}/messages").status_code == 200


def test_after_handler_status_keeps_the_effect(bot: Bot) -> None:
    route = f"/api/v10/channels/{GENERAL}/messages"
    bot.client.post(
        "/_sandbox/faults",
        json={"route": route, "method": "POST", "status": 503, "after_handler": True, "count": 1},
    ).raise_for_status()
    before = len(bot.messages(GENERAL))
    error(bot.post(f"/channels/{GENERAL}/messages", json={"content": "x"}), 503, 0)
    assert len(bot.messages(GENERAL)) == before + 1


def test_message_limits_and_the_error_tree(bot: Bot) -> None:
    url = f"/channels/{GENERAL}/messages"
    body = error(bot.post(url, json={"content": "x" * 2001}), 400, 50035)
    assert body["message"] == "Invalid Form Body"
    assert body["errors"]["content"]["_errors"][0]["code"] == "BASE_TYPE_MAX_LENGTH"
    error(bot.post(url, json={}), 400, 50006)
    nested = {"embeds": [{"title": "ok"}, {"fields": [{"name": "only a name"}]}], "nonce": "n" * 26}
    body = error(bot.post(url, json=nested), 400, 50035)
    assert body["errors"]["embeds"]["1"]["fields"]["0"]["value"]["_errors"] == [
        {"code": "BASE_TYPE_REQUIRED", "message": "This field is required"}
    ]
    assert body["errors"]["nonce"]["_errors"][0]["code"] == "BASE_TYPE_MAX_LENGTH"
    big = {"embeds": [{"description": "d" * 4000}, {"description": "d" * 2001}]}
    body = error(bot.post(url, json=big), 400, 50035)
    assert body["errors"]["embeds"]["_errors"][0]["code"] == "MAX_EMBED_SIZE_EXCEEDED"
    bad_json = bot.post(
        url, content=b"{not json", headers={**bot.headers, "Content-Type": "application/json"}
    )
    error(bad_json, 400, 50109)
    assert bot.messages(GENERAL) == [m for m in bot.messages(GENERAL) if m["content"] != "x"]


def test_access_and_permissions(bot: Bot) -> None:
    error(bot.get(f"/channels/{STAFF_ONLY}"), 403, 50001)
    error(bot.post(f"/channels/{STAFF_ONLY}/messages", json={"content": "x"}), 403, 50001)
    error(bot.post(f"/channels/{READ_ONLY}/messages", json={"content": "x"}), 403, 50013)
    assert bot.get(f"/channels/{READ_ONLY}/messages").status_code == 200
    error(bot.get(f"/channels/{ENGINE_NOTES}/messages"), 403, 50001)
    error(bot.get("/channels/1600000000000009999"), 404, 10003)
    error(bot.get(f"/channels/{GENERAL}/messages/1600000000000009999"), 404, 10008)
    error(bot.get("/channels/not-a-snowflake"), 400, 50035)
    # In Compiler Crew the bot may send but not manage messages.
    seeded = next(m for m in bot.fixtures["messages"] if m["channel_id"] == CREW_ANNOUNCEMENTS)
    bot.send(CREW_ANNOUNCEMENTS)
    error(bot.delete(f"/channels/{CREW_ANNOUNCEMENTS}/messages/{seeded['id']}"), 403, 50013)


def test_editing_someone_elses_message_is_refused(bot: Bot) -> None:
    grace = bot.fixtures["messages"][1]
    url = f"/channels/{GENERAL}/messages/{grace['id']}"
    error(bot.patch(url, json={"content": "mine now"}), 403, 50005)
    mine = bot.send()
    edited = bot.ok(bot.patch(f"/channels/{GENERAL}/messages/{mine['id']}", json={"content": "v2"}))
    assert edited["content"] == "v2"
    assert edited["edited_timestamp"] is not None


def test_deleting_another_users_message_is_audited(bot: Bot) -> None:
    grace = bot.fixtures["messages"][1]
    reason = quote("Off topic, sorry ✋")
    response = bot.delete(
        f"/channels/{GENERAL}/messages/{grace['id']}",
        headers={**bot.headers, "X-Audit-Log-Reason": reason},
    )
    assert response.status_code == 204
    error(bot.get(f"/channels/{GENERAL}/messages/{grace['id']}"), 404, 10008)
    log = bot.ok(bot.get("/guilds/1200000000000000001/audit-logs", params={"action_type": 72}))
    entry = log["audit_log_entries"][0]
    assert entry["user_id"] == BOT
    assert entry["target_id"] == grace["author_id"]
    assert entry["reason"] == "Off topic, sorry ✋"
    assert entry["options"]["channel_id"] == GENERAL


# -- reactions ----------------------------------------------------------------------------------


def test_reactions_with_unicode_and_custom_emoji_segments(bot: Bot) -> None:
    message = bot.send()
    base = f"/channels/{GENERAL}/messages/{message['id']}/reactions"
    # httpx percent-encodes the UTF-8 of the emoji, as Discord requires.
    assert bot.put(f"{base}/{THUMBS}/@me").status_code == 204
    assert bot.put(f"{base}/{quote(THUMBS)}/@me").status_code == 204  # the same reaction
    emoji = bot.fixtures["emojis"][0]
    assert bot.put(f"{base}/{emoji['path']}/@me").status_code == 204
    got = bot.ok(bot.get(f"/channels/{GENERAL}/messages/{message['id']}"))
    reactions = {(r["emoji"]["id"], r["emoji"]["name"]): r for r in got["reactions"]}
    assert reactions[(None, THUMBS)]["count"] == 1
    assert reactions[(None, THUMBS)]["me"] is True
    assert reactions[(emoji["id"], emoji["name"])]["count"] == 1
    users = bot.ok(bot.get(f"{base}/{THUMBS}"))
    assert [u["id"] for u in users] == [BOT]
    assert bot.delete(f"{base}/{THUMBS}/@me").status_code == 204
    assert bot.ok(bot.get(f"{base}/{THUMBS}")) == []
    error(bot.put(f"{base}/nosuch:1234567890123456789/@me"), 404, 10014)
    error(bot.put(f"{base}/thumbsup/@me"), 404, 10014)


def test_joining_a_reaction_and_removing_someone_elses(bot: Bot) -> None:
    grace = bot.fixtures["messages"][1]
    base = f"/channels/{GENERAL}/messages/{grace['id']}/reactions"
    assert bot.put(f"{base}/{THUMBS}/@me").status_code == 204  # joins ada's reaction
    assert {u["id"] for u in bot.ok(bot.get(f"{base}/{THUMBS}"))} == {ADA, BOT}
    assert bot.delete(f"{base}/{THUMBS}/{ADA}").status_code == 204
    assert {u["id"] for u in bot.ok(bot.get(f"{base}/{THUMBS}"))} == {BOT}


def test_a_new_reaction_needs_add_reactions(bot: Bot) -> None:
    """In #read-only the bot's role is denied Send Messages and Add Reactions: a message posted
    there through a webhook can be read, not reacted to."""
    hook = bot.ok(bot.post(f"/channels/{READ_ONLY}/webhooks", json={"name": "Notices"}))
    posted = bot.ok(
        bot.post(
            f"/webhooks/{hook['id']}/{hook['token']}",
            params={"wait": "true"},
            json={"content": "Read me"},
            headers={},
        )
    )
    base = f"/channels/{READ_ONLY}/messages/{posted['id']}/reactions"
    error(bot.put(f"{base}/{THUMBS}/@me"), 403, 50013)
    assert bot.ok(bot.get(f"/channels/{READ_ONLY}/messages/{posted['id']}"))["content"] == "Read me"


# -- pins and threads --------------------------------------------------------------------------


def test_pins(bot: Bot) -> None:
    message = bot.send(content="pin me")
    assert bot.put(f"/channels/{GENERAL}/messages/pins/{message['id']}").status_code == 204
    pins = bot.ok(bot.get(f"/channels/{GENERAL}/messages/pins"))
    assert pins["items"][0]["message"]["id"] == message["id"]
    assert pins["items"][0]["message"]["pinned"] is True
    notices = [m for m in bot.messages(GENERAL) if m["type"] == 6]
    assert notices[-1]["message_reference"]["message_id"] == message["id"]
    assert bot.delete(f"/channels/{GENERAL}/messages/pins/{message['id']}").status_code == 204
    ids = [
        item["message"]["id"]
        for item in bot.ok(bot.get(f"/channels/{GENERAL}/messages/pins"))["items"]
    ]
    assert message["id"] not in ids


def test_threads_from_messages_and_in_forums(bot: Bot) -> None:
    message = bot.send(content="discuss")
    url = f"/channels/{GENERAL}/messages/{message['id']}/threads"
    thread = bot.ok(bot.post(url, json={"name": "Discussion"}), 201)
    assert thread["id"] == message["id"]
    assert thread["type"] == 11
    assert thread["parent_id"] == GENERAL
    error(bot.post(url, json={"name": "Again"}), 400, 160004)
    reply = bot.send(thread["id"], content="in the thread")
    assert reply["channel_id"] == thread["id"]
    assert bot.delete(f"/channels/{thread['id']}/thread-members/@me").status_code == 204
    assert bot.put(f"/channels/{thread['id']}/thread-members/@me").status_code == 204
    forum = bot.ok(
        bot.post(f"/channels/{FORUM}/threads", json={"name": "Q", "message": {"content": "Help?"}}),
        201,
    )
    assert forum["message"]["id"] == forum["id"]
    error(bot.post(f"/channels/{FORUM}/threads", json={"name": "Q"}), 400, 50035)
    error(bot.post(f"/channels/{FORUM}/messages", json={"content": "x"}), 400, 50008)


def test_crosspost_only_in_announcement_channels(bot: Bot) -> None:
    news = bot.send(NEWS, content="release")
    posted = bot.ok(bot.post(f"/channels/{NEWS}/messages/{news['id']}/crosspost"))
    assert posted["flags"] & 1
    error(bot.post(f"/channels/{NEWS}/messages/{news['id']}/crosspost"), 400, 40033)
    plain = bot.send()
    error(bot.post(f"/channels/{GENERAL}/messages/{plain['id']}/crosspost"), 400, 50024)
