"""discord.py, a real client nobody here wrote, as a bot against the sandbox over HTTP only
(no gateway): log in with a sandbox bot token, send a message, react, create a role; the
sandbox's state shows each write."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest

from .bot import BOT, GENERAL, HUB, Bot

with warnings.catch_warnings():
    # discord.py imports the standard library's deprecated ``audioop`` for voice, unused here.
    warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)
    import discord
    from discord.http import Route

THUMBS = "\N{THUMBS UP SIGN}"


@pytest.fixture
def discord_base(bot: Bot) -> Iterator[str]:
    """Point discord.py's HTTP base at the sandbox for one test, then put it back."""
    saved = Route.BASE
    Route.BASE = str(bot.client.base_url).rstrip("/") + "/api/v10"
    try:
        yield Route.BASE
    finally:
        Route.BASE = saved


async def test_discord_py_writes_as_a_bot(bot: Bot, discord_base: str) -> None:
    client = discord.Client(intents=discord.Intents.none())
    try:
        await client.login(bot.state.default_application.bot_token)
        assert client.user is not None
        assert client.user.id == int(BOT)
        assert client.user.bot

        channel = await client.fetch_channel(int(GENERAL))
        assert isinstance(channel, discord.TextChannel)
        message = await channel.send("Hello from discord.py")
        assert message.author.id == int(BOT)
        await message.add_reaction(THUMBS)

        guild = await client.fetch_guild(int(HUB))
        role = await guild.create_role(
            name="From discord.py",
            permissions=discord.Permissions(send_messages=True, view_channel=True),
            colour=discord.Colour(0x2ECC71),
            reason="Made by discord.py",
        )
        assert role.name == "From discord.py"

        # A wrong token is discord.py's LoginFailure (the sandbox answers 401).
        other = discord.Client(intents=discord.Intents.none())
        with pytest.raises(discord.LoginFailure):
            await other.login("not-a-bot-token")
        await other.close()
    finally:
        await client.close()

    # The sandbox's state shows each write.
    stored = {m["id"]: m for m in bot.messages(GENERAL)}
    assert stored[str(message.id)]["content"] == "Hello from discord.py"
    reactions = stored[str(message.id)]["reactions"]
    assert [(r["emoji"]["name"], r["count"]) for r in reactions] == [(THUMBS, 1)]
    roles = {r["id"]: r for r in bot.ok(bot.get(f"/guilds/{HUB}/roles"))}
    made = roles[str(role.id)]
    assert made["name"] == "From discord.py"
    assert (
        int(made["permissions"]) == discord.Permissions(send_messages=True, view_channel=True).value
    )
    assert made["color"] == 0x2ECC71
    log = bot.ok(bot.get(f"/guilds/{HUB}/audit-logs", params={"action_type": 30}))
    assert log["audit_log_entries"][0]["target_id"] == str(role.id)
    assert log["audit_log_entries"][0]["reason"] == "Made by discord.py"
    by_token = bot.client.get("/_sandbox/stats").json()["requests"]["by_route"]
    assert by_token["POST /api/v10/channels/{channel_id}/messages"] == 1
    assert (
        by_token[
            "PUT /api/v10/channels/{channel_id}/messages/{message_id}/reactions/{emoji_name}/@me"
        ]
        == 1
    )
