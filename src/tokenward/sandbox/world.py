"""The sandbox's mutable Discord: guilds, channels, messages and everything a bot can change.

One :class:`World` per :class:`~tokenward.sandbox.state.SandboxState`, built from ``fixtures.py``
on start and on ``POST /_sandbox/reset``. Discord objects are kept as the JSON dictionaries the
API returns (completed against the spec's response schemas when answered), plus a few typed
records (:class:`GuildState`, :class:`Member`, :class:`Interaction`) for what the JSON does not
carry (membership, bans, tokens, audit log).

Permissions are computed as Discord documents (resources/permissions, "Permission Hierarchy" and
"Permission Overwrites"): the guild owner has all of them; otherwise @everyone's permissions OR
the member's roles', all of them with Administrator; in a channel, the @everyone overwrite, then
the role overwrites together, then the member's own overwrite (deny before allow at each step);
threads use their parent channel's. A caller who is not in the guild, or cannot see the channel,
gets ``403 50001 Missing Access``; one missing a permission gets ``403 50013 Missing
Permissions``; acting on a role at or above one's own highest role (or on the owner) is 50013 too.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tokenward.clock import isoformat
from tokenward.sandbox import fixtures as fx
from tokenward.sandbox.errors import DiscordError, missing_access, missing_permissions, unknown

if TYPE_CHECKING:
    from tokenward.sandbox.state import Application, SandboxState

THREAD_TYPES = frozenset({10, 11, 12})
TEXT_LIKE = frozenset({0, 5, 10, 11, 12})
VOICE_LIKE = frozenset({2, 13})
NONCE_WINDOW = 300.0  # seconds in which enforce_nonce returns the earlier message (a guess)
INTERACTION_CALLBACK_WINDOW = 3.0
INTERACTION_TOKEN_LIFETIME = 15 * 60.0


@dataclass
class Member:
    user_id: str
    roles: list[str]
    nick: str | None
    joined_at: str
    premium_since: str | None = None
    deaf: bool = False
    mute: bool = False
    communication_disabled_until: str | None = None
    flags: int = 0
    avatar: str | None = None
    banner: str | None = None
    bio: str | None = None


@dataclass
class GuildState:
    data: dict[str, Any]  # the guild object's own fields
    roles: dict[str, dict[str, Any]]
    members: dict[str, Member]
    bans: dict[str, str | None] = field(default_factory=dict)  # user id -> reason
    emojis: dict[str, dict[str, Any]] = field(default_factory=dict)
    stickers: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    event_users: dict[str, list[str]] = field(default_factory=dict)
    audit_log: list[dict[str, Any]] = field(default_factory=list)
    automod: dict[str, dict[str, Any]] = field(default_factory=dict)
    soundboard: dict[str, dict[str, Any]] = field(default_factory=dict)
    integrations: dict[str, dict[str, Any]] = field(default_factory=dict)
    templates: dict[str, dict[str, Any]] = field(default_factory=dict)
    widget: dict[str, Any] = field(default_factory=dict)
    welcome_screen: dict[str, Any] = field(default_factory=dict)
    onboarding: dict[str, Any] = field(default_factory=dict)
    voice_states: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return str(self.data["id"])

    @property
    def owner_id(self) -> str:
        return str(self.data["owner_id"])


@dataclass
class Reaction:
    emoji: dict[str, Any]
    users: list[str] = field(default_factory=list)


@dataclass
class Interaction:
    id: str
    token: str
    application_id: str
    type: int
    guild_id: str | None
    channel_id: str
    user_id: str
    data: dict[str, Any]
    created_at: float
    responded: bool = False
    response_type: int | None = None
    original_id: str | None = None
    followups: list[str] = field(default_factory=list)
    # Set when the sandbox delivered the interaction to the application's interactions endpoint
    # (``POST /_sandbox/interactions/invoke``): the record that call returned.
    delivery: dict[str, Any] | None = None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "token": self.token,
            "application_id": self.application_id,
            "type": self.type,
            "guild_id": self.guild_id,
            "channel_id": self.channel_id,
            "user_id": self.user_id,
            "data": self.data,
            "responded": self.responded,
            "original_message_id": self.original_id,
            "followup_message_ids": list(self.followups),
        }


class World:
    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._last_id = 0
        self.guilds: dict[str, GuildState] = {}
        self.channels: dict[str, dict[str, Any]] = {}
        self.messages: dict[str, dict[str, dict[str, Any]]] = {}
        self.reactions: dict[tuple[str, str], dict[str, Reaction]] = {}
        self.pins: dict[str, dict[str, str]] = {}  # channel -> message -> pinned_at
        self.nonces: dict[tuple[str, str], tuple[str, str, float]] = {}
        self.invites: dict[str, dict[str, Any]] = {}
        self.webhooks: dict[str, dict[str, Any]] = {}
        self.thread_members: dict[str, dict[str, str]] = {}
        self.stage_instances: dict[str, dict[str, Any]] = {}
        self.commands: dict[str, dict[str, Any]] = {}
        self.command_permissions: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        self.interactions: dict[str, Interaction] = {}
        self.app_edits: dict[str, dict[str, Any]] = {}
        self.app_emojis: dict[str, dict[str, dict[str, Any]]] = {}
        self.role_connection_metadata: dict[str, list[dict[str, Any]]] = {}
        self.role_connections: dict[tuple[str, str], dict[str, Any]] = {}
        self.entitlements: dict[str, dict[str, Any]] = {}
        self.skus: dict[str, list[dict[str, Any]]] = {}
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.lobbies: dict[str, dict[str, Any]] = {}
        self.lobby_messages: dict[str, list[dict[str, Any]]] = {}
        self.user_edits: dict[str, dict[str, Any]] = {}
        self.templates: dict[str, dict[str, Any]] = {}  # code -> template record
        self.messages_created = 0
        self.event_deliveries: list[dict[str, Any]] = []  # webhook events sent, oldest first
        self._build()

    # -- ids and time -----------------------------------------------------------------------
    def now(self) -> float:
        return self.state.clock.time()

    def now_iso(self) -> str:
        return isoformat(self.now())

    def new_id(self) -> str:
        """A snowflake from the sandbox clock, strictly greater than every earlier one."""
        ms = max(int(self.now() * 1000) - fx.DISCORD_EPOCH_MS, 0)
        candidate = ms << 22
        self._last_id = max(candidate, self._last_id + 1)
        return str(self._last_id)

    def _seen_id(self, value: str) -> None:
        self._last_id = max(self._last_id, int(value))

    # -- building from the fixtures ---------------------------------------------------------
    def _build(self) -> None:
        for guild in fx.GUILDS:
            self._build_guild(guild)
        for item in fx.MEMBERSHIPS:
            self.guilds[item.guild_id].members[item.user_id] = Member(
                item.user_id, list(item.roles), item.nick, item.joined_at, item.premium_since
            )
        self.guilds[fx.HUB_ID].bans[fx.SPAMMER_ID] = "Posting links to a fake giveaway."
        # Who is in voice: ada in General Voice, the bot on the Town Hall stage (audience).
        self.guilds[fx.HUB_ID].voice_states[fx.ADA_ID] = self._voice_state(
            fx.HUB_ID, "1600000000000000103", fx.ADA_ID, suppress=False
        )
        self.guilds[fx.HUB_ID].voice_states[fx.SANDBOX_BOT_ID] = self._voice_state(
            fx.HUB_ID, "1600000000000000105", fx.SANDBOX_BOT_ID, suppress=True
        )
        for invite in fx.INVITES:
            self.invites[invite.code] = {
                "code": invite.code,
                "guild_id": invite.guild_id,
                "channel_id": invite.channel_id,
                "inviter_id": invite.inviter_id,
                "expires_at": invite.expires_at,
                "guild_scheduled_event_id": invite.guild_scheduled_event_id,
                "max_age": invite.max_age,
                "max_uses": 0,
                "uses": invite.uses,
                "temporary": False,
                "created_at": "2025-01-01T00:00:00+00:00",
            }
        for template in fx.TEMPLATES:
            self.templates[template.code] = template.as_dict()
        for seed in fx.MESSAGES:
            self._seed_message(seed)
        self._seed_expressions()
        self._seed_applications()

    def _build_guild(self, guild: fx.Guild) -> None:
        roles: dict[str, dict[str, Any]] = {}
        for role in guild.roles:
            body: dict[str, Any] = {
                **role.as_dict(),
                "colors": {
                    "primary_color": role.color,
                    "secondary_color": None,
                    "tertiary_color": None,
                },
                "hoist": role.position > 0,
                "managed": role.bot_id is not None,
                "mentionable": False,
                "icon": None,
                "unicode_emoji": None,
                "flags": 0,
            }
            if role.bot_id is not None:
                body["tags"] = {"bot_id": role.bot_id}
            roles[role.id] = body
        data = {
            "id": guild.id,
            "name": guild.name,
            "icon": guild.icon,
            "description": guild.description,
            "splash": guild.splash,
            "discovery_splash": None,
            "banner": guild.banner,
            "home_header": None,
            "features": list(guild.features),
            "owner_id": guild.owner_id,
            "application_id": None,
            "region": "deprecated",
            "afk_channel_id": None,
            "afk_timeout": 300,
            "system_channel_id": guild.channels[0].id if guild.channels else None,
            "system_channel_flags": 0,
            "widget_enabled": guild.widget_enabled,
            "widget_channel_id": None,
            "verification_level": guild.verification_level,
            "default_message_notifications": 1,
            "mfa_level": 0,
            "explicit_content_filter": 2,
            "max_presences": None,
            "max_members": 500000,
            "max_stage_video_channel_users": 50,
            "max_video_channel_users": 25,
            "vanity_url_code": guild.vanity_url_code,
            "premium_tier": 2 if guild.premium_subscription_count >= 7 else 0,
            "premium_subscription_count": guild.premium_subscription_count,
            "preferred_locale": "en-US",
            "rules_channel_id": None,
            "safety_alerts_channel_id": None,
            "public_updates_channel_id": None,
            "premium_progress_bar_enabled": False,
            "nsfw": False,
            "nsfw_level": guild.nsfw_level,
            "incidents_data": None,
            "approximate_member_count": guild.member_count,
            "approximate_presence_count": guild.presence_count,
        }
        state = GuildState(data=data, roles=roles, members={})
        state.widget = {"enabled": guild.widget_enabled, "channel_id": None}
        state.welcome_screen = {"description": guild.description, "welcome_channels": []}
        state.onboarding = {
            "guild_id": guild.id,
            "prompts": [],
            "default_channel_ids": [],
            "enabled": False,
            "mode": 0,
            "below_requirements": False,
        }
        for event in guild.events:
            state.events[event.id] = {**event.as_dict(), "recurrence_rule": None}
            state.event_users[event.id] = [fx.ADA_ID, fx.GRACE_ID]
        self.guilds[guild.id] = state
        for channel in guild.channels:
            self.channels[channel.id] = self._channel_from_fixture(guild.id, channel)
            if channel.type in TEXT_LIKE:
                self.messages[channel.id] = {}

    def _voice_state(
        self, guild_id: str, channel_id: str, user_id: str, *, suppress: bool
    ) -> dict[str, Any]:
        return {
            "guild_id": guild_id,
            "channel_id": channel_id,
            "user_id": user_id,
            "session_id": f"sandbox-voice-{user_id[-4:]}",
            "deaf": False,
            "mute": False,
            "self_deaf": False,
            "self_mute": False,
            "self_video": False,
            "suppress": suppress,
            "request_to_speak_timestamp": None,
        }

    def _channel_from_fixture(self, guild_id: str, channel: fx.Channel) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": channel.id,
            "type": channel.type,
            "guild_id": guild_id,
            "name": channel.name,
            "position": channel.position,
            "flags": 0,
            "parent_id": None,
            "permission_overwrites": [
                {"id": o.id, "type": o.type, "allow": str(o.allow), "deny": str(o.deny)}
                for o in channel.overwrites
            ],
            "nsfw": False,
            "last_message_id": None,
        }
        if channel.type in TEXT_LIKE or channel.type == 15:
            body["topic"] = channel.topic
            body["rate_limit_per_user"] = 0
        if channel.type in VOICE_LIKE:
            body["bitrate"] = 64000
            body["user_limit"] = 0
            body["rtc_region"] = None
        if channel.type == 15:
            body.update(
                available_tags=[],
                default_reaction_emoji=None,
                default_sort_order=None,
                default_forum_layout=0,
                default_thread_rate_limit_per_user=0,
            )
        return body

    def _seed_message(self, seed: fx.SeedMessage) -> None:
        message = self.message_object(
            seed.channel_id,
            seed.id,
            self.user_object(seed.author_id),
            content=seed.content,
            timestamp=seed.timestamp,
        )
        self.messages[seed.channel_id][seed.id] = message
        self.channels[seed.channel_id]["last_message_id"] = seed.id
        self._seen_id(seed.id)
        if seed.pinned:
            self.pins.setdefault(seed.channel_id, {})[seed.id] = seed.timestamp
        for emoji, users in seed.reactions:
            key, body = self.parse_emoji_any(emoji)
            self.reactions.setdefault((seed.channel_id, seed.id), {})[key] = Reaction(
                body, list(users)
            )

    def _seed_expressions(self) -> None:
        for guild_id, emoji_id, name in fx.EMOJIS:
            self.guilds[guild_id].emojis[emoji_id] = {
                "id": emoji_id,
                "name": name,
                "roles": [],
                "require_colons": True,
                "managed": False,
                "animated": False,
                "available": True,
                "user": self.user_object(fx.ADA_ID),
            }
        for guild_id, sticker_id, name, tags in fx.STICKERS:
            self.guilds[guild_id].stickers[sticker_id] = {
                "id": sticker_id,
                "name": name,
                "tags": tags,
                "type": 2,
                "format_type": 1,
                "description": "A castle made of sand.",
                "available": True,
                "guild_id": guild_id,
                "user": self.user_object(fx.ADA_ID),
            }
        hub = self.guilds[fx.HUB_ID]
        hub.automod[fx.HUB_AUTOMOD_RULE] = {
            "id": fx.HUB_AUTOMOD_RULE,
            "guild_id": fx.HUB_ID,
            "name": "No fake giveaways",
            "creator_id": fx.ADA_ID,
            "event_type": 1,
            "trigger_type": 1,
            "trigger_metadata": {"keyword_filter": ["free nitro"], "regex_patterns": []},
            "actions": [{"type": 1, "metadata": {}}],
            "enabled": True,
            "exempt_roles": [fx.HUB_ADMIN_ROLE],
            "exempt_channels": [],
        }
        hub.soundboard[fx.SOUNDBOARD_SOUND_ID] = {
            "name": "airhorn",
            "sound_id": fx.SOUNDBOARD_SOUND_ID,
            "volume": 1.0,
            "emoji_id": None,
            "emoji_name": "\N{POSTAL HORN}",
            "guild_id": fx.HUB_ID,
            "available": True,
            "user": self.user_object(fx.ADA_ID),
        }
        hub.integrations[fx.HUB_INTEGRATION_ID] = {
            "id": fx.HUB_INTEGRATION_ID,
            "type": "discord",
            "name": "Sandbox App",
            "account": {"id": fx.SANDBOX_BOT_ID, "name": "Sandbox App"},
            "enabled": True,
            "application": {
                "id": fx.DEFAULT_APPLICATION_ID,
                "name": "Sandbox App",
                "icon": None,
                "description": "An application registered in the tokenward Discord sandbox.",
                "type": None,
                "cover_image": None,
                "primary_sku_id": None,
                "bot": self.user_object(fx.SANDBOX_BOT_ID),
            },
            "scopes": ["bot", "applications.commands"],
            "user": self.user_object(fx.ADA_ID),
        }
        hook: dict[str, Any] = {
            "id": fx.HUB_WEBHOOK_ID,
            "type": 1,
            "guild_id": fx.HUB_ID,
            "channel_id": fx.HUB_GENERAL,
            "name": fx.HUB_WEBHOOK_NAME,
            "avatar": None,
            "application_id": None,
            "token": secrets.token_urlsafe(48),
            "user": self.user_object(fx.ADA_ID),
        }
        self.webhooks[fx.HUB_WEBHOOK_ID] = hook

    def _seed_applications(self) -> None:
        app_id = fx.DEFAULT_APPLICATION_ID
        self.commands[fx.GLOBAL_COMMAND_ID] = {
            "id": fx.GLOBAL_COMMAND_ID,
            "application_id": app_id,
            "version": fx.GLOBAL_COMMAND_ID,
            "default_member_permissions": None,
            "type": 1,
            "name": "ping",
            "description": "Check that the bot answers.",
            "dm_permission": True,
            "contexts": None,
            "integration_types": [0],
            "options": [],
            "nsfw": False,
        }
        self.commands[fx.HUB_COMMAND_ID] = {
            "id": fx.HUB_COMMAND_ID,
            "application_id": app_id,
            "guild_id": fx.HUB_ID,
            "version": fx.HUB_COMMAND_ID,
            "default_member_permissions": str(fx.KICK_MEMBERS),
            "type": 1,
            "name": "report",
            "description": "Report a message to the moderators.",
            "options": [],
            "nsfw": False,
        }
        self.command_permissions[(app_id, fx.HUB_ID, fx.HUB_COMMAND_ID)] = [
            {"id": fx.HUB_MODERATOR_ROLE, "type": 1, "permission": True}
        ]
        self.role_connection_metadata[app_id] = [
            {
                "type": 2,
                "key": "level",
                "name": "Level",
                "description": "The player's level in the sandbox game.",
            }
        ]
        self.role_connections[(app_id, fx.ADA_ID)] = {
            "platform_name": "Sandbox Game",
            "platform_username": "ada",
            "metadata": {"level": "42"},
        }
        for entitlement in fx.ENTITLEMENTS:
            self.entitlements[entitlement.id] = {
                **entitlement.as_dict(),
                "user_id": entitlement.user_id,
                "guild_id": entitlement.guild_id,
            }
        self.skus[app_id] = [
            {
                "id": sku_id,
                "type": sku_type,
                "application_id": app_id,
                "name": name,
                "slug": slug,
                "flags": 128 if sku_type == 5 else 4,
            }
            for sku_id, sku_type, name, slug in fx.SKUS
        ]
        self.subscriptions[fx.SUBSCRIPTION_ID] = {
            "id": fx.SUBSCRIPTION_ID,
            "user_id": fx.ADA_ID,
            "sku_ids": [fx.SKU_SUBSCRIPTION],
            "renewal_sku_ids": [fx.SKU_SUBSCRIPTION],
            "entitlement_ids": ["1500000000000000001"],
            "current_period_start": "2026-01-01T00:00:00+00:00",
            "current_period_end": "2099-12-01T00:00:00+00:00",
            "status": 0,
            "canceled_at": None,
        }
        self.lobbies[fx.LOBBY_ID] = {
            "id": fx.LOBBY_ID,
            "application_id": app_id,
            "metadata": {"mode": "co-op"},
            "members": [
                {"id": fx.ADA_ID, "metadata": None, "flags": 1},
                {"id": fx.GRACE_ID, "metadata": None, "flags": 0},
            ],
            "linked_channel": None,
            "flags": 0,
            "secret": None,
            "idle_timeout_seconds": 300,
        }
        self.lobby_messages[fx.LOBBY_ID] = []

    # -- users ------------------------------------------------------------------------------
    def application_of_bot(self, user_id: str) -> Application | None:
        for app in self.state.applications.values():
            if app.bot_user_id == user_id:
                return app
        return None

    def user_object(self, user_id: str) -> dict[str, Any]:
        """The public user object of a fake user, a sandbox bot or (unknown) a placeholder."""
        user = fx.any_user_by_id(user_id)
        if user is not None:
            body = fx.public_user(user)
            body.setdefault("public_flags", user.public_flags)
            body.setdefault("flags", user.flags)
            body.setdefault("primary_guild", None)
            body.setdefault("global_name", user.global_name)
        else:
            app = self.application_of_bot(user_id)
            name = app.name if app is not None else f"user-{user_id[-4:]}"
            body = {
                "id": user_id,
                "username": name,
                "discriminator": f"{int(user_id) % 10000:04d}" if app else "0",
                "global_name": None,
                "avatar": None,
                "bot": app is not None,
                "system": False,
                "banner": None,
                "accent_color": None,
                "public_flags": 0,
                "flags": 0,
                "avatar_decoration_data": None,
                "collectibles": None,
                "primary_guild": None,
            }
        body.update(self.user_edits.get(user_id, {}))
        return body

    def user_exists(self, user_id: str) -> bool:
        return (
            fx.any_user_by_id(user_id) is not None or self.application_of_bot(user_id) is not None
        )

    # -- guild access and permissions -------------------------------------------------------
    def guild(self, guild_id: str) -> GuildState:
        found = self.guilds.get(guild_id)
        if found is None:
            raise unknown(10004, "Guild")
        return found

    def member_guild(self, guild_id: str, user_id: str | None) -> GuildState:
        """The guild, if ``user_id`` is a member (else 50001); unknown guild: 10004."""
        guild = self.guild(guild_id)
        if user_id is None or user_id not in guild.members:
            raise missing_access()
        return guild

    def base_permissions(self, guild: GuildState, user_id: str) -> int:
        if user_id == guild.owner_id:
            return fx.ALL_PERMISSIONS
        member = guild.members.get(user_id)
        if member is None:
            return 0
        everyone = guild.roles.get(guild.id)
        perms = int(everyone["permissions"]) if everyone else 0
        for role_id in member.roles:
            role = guild.roles.get(role_id)
            if role is not None:
                perms |= int(role["permissions"])
        return fx.ALL_PERMISSIONS if perms & fx.ADMINISTRATOR else perms

    def channel_permissions(self, channel: dict[str, Any], user_id: str) -> int:
        guild_id = channel.get("guild_id")
        if guild_id is None:  # a DM: recipients may read and send
            return (
                fx.VIEW_CHANNEL
                | fx.SEND_MESSAGES
                | fx.READ_MESSAGE_HISTORY
                | fx.ADD_REACTIONS
                | fx.EMBED_LINKS
                | fx.ATTACH_FILES
                | fx.PIN_MESSAGES
            )
        guild = self.guilds[str(guild_id)]
        perms = self.base_permissions(guild, user_id)
        if perms == fx.ALL_PERMISSIONS:
            return perms
        if channel.get("type") in THREAD_TYPES and channel.get("parent_id") in self.channels:
            channel = self.channels[str(channel["parent_id"])]
        overwrites = {o["id"]: o for o in channel.get("permission_overwrites") or ()}
        everyone = overwrites.get(guild.id)
        if everyone is not None:
            perms = (perms & ~int(everyone["deny"])) | int(everyone["allow"])
        member = guild.members.get(user_id)
        roles = member.roles if member else []
        allow = deny = 0
        for role_id in roles:
            item = overwrites.get(role_id)
            if item is not None and int(item.get("type", 0)) == 0:
                allow |= int(item["allow"])
                deny |= int(item["deny"])
        perms = (perms & ~deny) | allow
        own = overwrites.get(user_id)
        if own is not None and int(own.get("type", 1)) == 1:
            perms = (perms & ~int(own["deny"])) | int(own["allow"])
        return perms

    def require_guild_permission(self, guild: GuildState, user_id: str, *perms: int) -> None:
        """50013 unless the member has every one of ``perms`` in the guild."""
        have = self.base_permissions(guild, user_id)
        for perm in perms:
            if have & perm != perm:
                raise missing_permissions()

    def require_any_guild_permission(self, guild: GuildState, user_id: str, *perms: int) -> None:
        have = self.base_permissions(guild, user_id)
        if not any(have & perm == perm for perm in perms):
            raise missing_permissions()

    def channel(self, channel_id: str) -> dict[str, Any]:
        found = self.channels.get(channel_id)
        if found is None:
            raise unknown(10003, "Channel")
        return found

    def visible_channel(self, channel_id: str, user_id: str | None) -> dict[str, Any]:
        """The channel if ``user_id`` can see it: 10003 unknown, 50001 no access."""
        channel = self.channel(channel_id)
        if user_id is None:
            raise missing_access()
        guild_id = channel.get("guild_id")
        if guild_id is None:
            if (
                user_id not in {r["id"] for r in channel.get("recipients", ())}
                and channel.get("owner_id") != user_id
            ):
                raise missing_access()
            return channel
        guild = self.guilds[str(guild_id)]
        if user_id not in guild.members:
            raise missing_access()
        if not self.channel_permissions(channel, user_id) & fx.VIEW_CHANNEL:
            raise missing_access()
        if channel.get("type") == 12 and not self._private_thread_visible(channel, user_id):
            raise missing_access()
        return channel

    def _private_thread_visible(self, channel: dict[str, Any], user_id: str) -> bool:
        if user_id in self.thread_members.get(str(channel["id"]), {}):
            return True
        return bool(self.channel_permissions(channel, user_id) & fx.MANAGE_THREADS)

    def require_channel_permission(
        self, channel: dict[str, Any], user_id: str, *perms: int
    ) -> None:
        have = self.channel_permissions(channel, user_id)
        for perm in perms:
            if have & perm != perm:
                raise missing_permissions()

    def highest_position(self, guild: GuildState, user_id: str) -> int:
        if user_id == guild.owner_id:
            return 1 << 30
        member = guild.members.get(user_id)
        if member is None:
            return -1
        positions = [int(guild.roles[r]["position"]) for r in member.roles if r in guild.roles]
        return max(positions, default=0)

    def require_above_role(self, guild: GuildState, user_id: str, role_id: str) -> None:
        """50013 unless ``user_id``'s highest role is above the role (hierarchy)."""
        role = guild.roles[role_id]
        if user_id != guild.owner_id and self.highest_position(guild, user_id) <= int(
            role["position"]
        ):
            raise missing_permissions()

    def require_above_member(self, guild: GuildState, user_id: str, target_id: str) -> None:
        """50013 when acting on the owner or on someone whose highest role is not lower."""
        if target_id == guild.owner_id:
            raise missing_permissions()
        if user_id == guild.owner_id or user_id == target_id:
            return
        if self.highest_position(guild, user_id) <= self.highest_position(guild, target_id):
            raise missing_permissions()

    # -- objects ----------------------------------------------------------------------------
    def role_object(self, guild: GuildState, role_id: str) -> dict[str, Any]:
        return dict(guild.roles[role_id])

    def sorted_roles(self, guild: GuildState) -> list[dict[str, Any]]:
        return sorted(
            (dict(role) for role in guild.roles.values()),
            key=lambda r: (int(r["position"]), int(r["id"])),
        )

    def member_object(self, guild: GuildState, user_id: str) -> dict[str, Any]:
        member = guild.members.get(user_id)
        if member is None:
            raise unknown(10007, "Member")
        return {
            "user": self.user_object(user_id),
            "nick": member.nick,
            "avatar": member.avatar,
            "banner": member.banner,
            "roles": list(member.roles),
            "joined_at": member.joined_at,
            "premium_since": member.premium_since,
            "deaf": member.deaf,
            "mute": member.mute,
            "flags": member.flags,
            "pending": False,
            "communication_disabled_until": member.communication_disabled_until,
            "avatar_decoration_data": None,
            "collectibles": None,
        }

    def guild_object(self, guild: GuildState, with_counts: bool = False) -> dict[str, Any]:
        body = {k: v for k, v in guild.data.items() if not k.startswith("approximate_")}
        body["roles"] = self.sorted_roles(guild)
        body["emojis"] = list(guild.emojis.values())
        body["stickers"] = list(guild.stickers.values())
        body["widget_enabled"] = guild.widget["enabled"]
        body["widget_channel_id"] = guild.widget["channel_id"]
        if with_counts:
            body["approximate_member_count"] = guild.data["approximate_member_count"]
            body["approximate_presence_count"] = guild.data["approximate_presence_count"]
        return body

    def message_object(
        self,
        channel_id: str,
        message_id: str,
        author: dict[str, Any],
        *,
        content: str = "",
        timestamp: str | None = None,
        message_type: int = 0,
    ) -> dict[str, Any]:
        return {
            "id": message_id,
            "channel_id": channel_id,
            "type": message_type,
            "content": content,
            "author": author,
            "mentions": [],
            "mention_roles": [],
            "mention_everyone": False,
            "attachments": [],
            "embeds": [],
            "components": [],
            "timestamp": timestamp or self.now_iso(),
            "edited_timestamp": None,
            "flags": 0,
            "pinned": False,
            "tts": False,
        }

    def render_message(self, message: dict[str, Any], viewer: str | None = None) -> dict[str, Any]:
        """A stored message with its reactions and pin state, as the API answers it."""
        body = dict(message)
        channel_id = str(message["channel_id"])
        body["pinned"] = str(message["id"]) in self.pins.get(channel_id, {})
        reactions = self.reactions.get((channel_id, str(message["id"])), {})
        if reactions:
            body["reactions"] = [
                {
                    "emoji": dict(reaction.emoji),
                    "count": len(reaction.users),
                    "count_details": {"burst": 0, "normal": len(reaction.users)},
                    "burst_colors": [],
                    "me_burst": False,
                    "me": viewer in reaction.users,
                }
                for reaction in reactions.values()
                if reaction.users
            ]
        return body

    def message(self, channel_id: str, message_id: str) -> dict[str, Any]:
        found = self.messages.get(channel_id, {}).get(message_id)
        if found is None:
            raise unknown(10008, "Message")
        return found

    def store_message(self, message: dict[str, Any]) -> dict[str, Any]:
        channel_id = str(message["channel_id"])
        self.messages.setdefault(channel_id, {})[str(message["id"])] = message
        channel = self.channels.get(channel_id)
        if channel is not None:
            channel["last_message_id"] = message["id"]
            if channel.get("type") in THREAD_TYPES:
                channel["message_count"] = int(channel.get("message_count", 0)) + 1
                channel["total_message_sent"] = int(channel.get("total_message_sent", 0)) + 1
        self.messages_created += 1
        return message

    # -- emoji in paths ---------------------------------------------------------------------
    def parse_emoji_any(self, text: str) -> tuple[str, dict[str, Any]]:
        """``(key, emoji object)`` for ``name:id`` or a Unicode emoji, without access checks."""
        if ":" in text:
            name, _, emoji_id = text.rpartition(":")
            name = name.removeprefix("a:")
            return emoji_id, {"id": emoji_id, "name": name or None, "animated": False}
        return text, {"id": None, "name": text}

    def parse_emoji(self, text: str, user_id: str | None) -> tuple[str, dict[str, Any]]:
        """An emoji path segment: custom ``name:id`` (the emoji must exist in a guild the caller
        is in) or a Unicode emoji (percent-encoded UTF-8 on the wire); else 10014."""
        if not text or len(text) > 100:
            raise unknown(10014, "Emoji")
        if ":" in text:
            name, _, emoji_id = text.rpartition(":")
            if not emoji_id.isdigit() or not name:
                raise unknown(10014, "Emoji")
            for guild in self.guilds.values():
                emoji = guild.emojis.get(emoji_id)
                if emoji is not None and (user_id is None or user_id in guild.members):
                    return emoji_id, {
                        "id": emoji_id,
                        "name": emoji["name"],
                        "animated": bool(emoji.get("animated")),
                    }
            for emojis in self.app_emojis.values():
                if emoji_id in emojis:
                    item = emojis[emoji_id]
                    return emoji_id, {"id": emoji_id, "name": item["name"], "animated": False}
            raise unknown(10014, "Emoji")
        if text.isascii():  # Unicode emoji are never plain ASCII (a guess at Discord's rule)
            raise unknown(10014, "Emoji")
        return text, {"id": None, "name": text}

    # -- audit log --------------------------------------------------------------------------
    def audit(
        self,
        guild: GuildState,
        action_type: int,
        user_id: str | None,
        target_id: str | None,
        reason: str | None,
        changes: Iterable[tuple[str, Any, Any]] = (),
        options: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "id": self.new_id(),
            "action_type": action_type,
            "user_id": user_id,
            "target_id": target_id,
        }
        listed = [
            {"key": key, **({"old_value": old} if old is not None else {}), "new_value": new}
            for key, old, new in changes
        ]
        if listed:
            entry["changes"] = listed
        if options:
            entry["options"] = options
        if reason is not None:
            entry["reason"] = reason
        guild.audit_log.append(entry)
        return entry

    # -- interactions -----------------------------------------------------------------------
    def new_interaction(
        self,
        application_id: str,
        guild_id: str | None,
        channel_id: str,
        user_id: str,
        interaction_type: int,
        data: dict[str, Any],
    ) -> Interaction:
        interaction = Interaction(
            id=self.new_id(),
            token="aW50ZXJhY3Rpb24" + secrets.token_urlsafe(64),
            application_id=application_id,
            type=interaction_type,
            guild_id=guild_id,
            channel_id=channel_id,
            user_id=user_id,
            data=data,
            created_at=self.now(),
        )
        self.interactions[interaction.id] = interaction
        return interaction

    def interaction_by_token(self, application_id: str, token: str) -> Interaction | None:
        for interaction in self.interactions.values():
            if interaction.application_id == application_id and secrets.compare_digest(
                interaction.token, token
            ):
                return interaction
        return None

    def fixtures_extra(self) -> dict[str, Any]:
        """What ``GET /_sandbox/fixtures`` adds about the bot's world (tokens included)."""
        hook = self.webhooks.get(fx.HUB_WEBHOOK_ID)
        return {
            "bot": {
                "application_id": fx.DEFAULT_APPLICATION_ID,
                "user_id": fx.SANDBOX_BOT_ID,
                "guilds": {
                    fx.HUB_ID: {
                        "role_id": fx.HUB_BOT_ROLE,
                        "permissions": str(fx.BOT_HUB_PERMISSIONS),
                    },
                    fx.CREW_ID: {
                        "role_id": fx.CREW_BOT_ROLE,
                        "permissions": str(fx.BOT_CREW_PERMISSIONS),
                    },
                },
                "not_member_of": ["1200000000000000002", "1200000000000000004"],
            },
            "channels": {
                "general": fx.HUB_GENERAL,
                "staff_only_no_access": fx.HUB_STAFF_ONLY,
                "read_only_no_send": fx.HUB_READ_ONLY,
                "news": fx.HUB_NEWS,
                "forum": fx.HUB_FORUM,
                "crew_announcements": fx.CREW_ANNOUNCEMENTS,
                "voice": "1600000000000000103",
                "stage": "1600000000000000105",
                "other_guild_no_access": "1600000000000000201",
            },
            "roles": {
                "hub_admin": fx.HUB_ADMIN_ROLE,
                "hub_moderator": fx.HUB_MODERATOR_ROLE,
                "hub_bot": fx.HUB_BOT_ROLE,
                "crew_bot": fx.CREW_BOT_ROLE,
            },
            "user_ids": {
                "ada": fx.ADA_ID,
                "grace": fx.GRACE_ID,
                "linus": "1100000000000000003",
                "wumpus": fx.WUMPUS_ID,
                "spammer_banned_from_hub": fx.SPAMMER_ID,
            },
            "messages": [
                {
                    "id": seed.id,
                    "channel_id": seed.channel_id,
                    "author_id": seed.author_id,
                    "content": seed.content,
                    "pinned": seed.pinned,
                    "reactions": [emoji for emoji, _ in seed.reactions],
                }
                for seed in fx.MESSAGES
            ],
            "webhook": None
            if hook is None
            else {
                "id": hook["id"],
                "token": hook["token"],
                "channel_id": hook["channel_id"],
                "name": hook["name"],
            },
            "emojis": [
                {"guild_id": g, "id": i, "name": n, "path": f"{n}:{i}"} for g, i, n in fx.EMOJIS
            ],
            "stickers": [{"guild_id": g, "id": i, "name": n} for g, i, n, _ in fx.STICKERS],
            "scheduled_events": ["1250000000000000001"],
            "automod_rules": [fx.HUB_AUTOMOD_RULE],
            "application_commands": {"global": fx.GLOBAL_COMMAND_ID, "hub": fx.HUB_COMMAND_ID},
            "lobby": fx.LOBBY_ID,
            "soundboard_sound": fx.SOUNDBOARD_SOUND_ID,
            "integration": fx.HUB_INTEGRATION_ID,
            "skus": [sku_id for sku_id, *_ in fx.SKUS],
            "subscription": fx.SUBSCRIPTION_ID,
            "bans": {fx.HUB_ID: [fx.SPAMMER_ID]},
        }


def unknown_interaction() -> DiscordError:
    return unknown(10062, "interaction")
