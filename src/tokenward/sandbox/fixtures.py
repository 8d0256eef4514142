"""Deterministic fake data: users, guilds, invites, templates, sticker packs, connections and
entitlements. ``GET /_sandbox/fixtures`` exposes all of it so tests and people can find ids and
codes to try. Snowflakes are real-shaped (18–19 digits) and fixed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class FakeUser:
    id: str
    username: str
    global_name: str | None
    email: str
    verified: bool = True
    locale: str = "en-US"
    avatar: str | None = None
    mfa_enabled: bool = False
    premium_type: int = 0
    flags: int = 0
    public_flags: int = 0
    # Guild ids this user is a member of (see ``Fixtures.guilds``).
    guild_ids: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    def public_object(self) -> dict[str, Any]:
        """The user object without the email fields (``identify`` only)."""
        return {
            "id": self.id,
            "username": self.username,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": self.avatar,
            "bot": False,
            "system": False,
            "mfa_enabled": self.mfa_enabled,
            "banner": None,
            "accent_color": None,
            "locale": self.locale,
            "flags": self.flags,
            "public_flags": self.public_flags,
            "premium_type": self.premium_type,
            "avatar_decoration_data": None,
            "collectibles": None,
            "primary_guild": None,
        }


USERS: tuple[FakeUser, ...] = (
    FakeUser(
        id="1100000000000000001",
        username="ada",
        global_name="Ada Lovelace",
        email="ada@example.com",
        avatar="a1b2c3d4e5f60718293a4b5c6d7e8f90",
        mfa_enabled=True,
        guild_ids=("1200000000000000001", "1200000000000000002", "1200000000000000003"),
    ),
    FakeUser(
        id="1100000000000000002",
        username="grace",
        global_name="Grace Hopper",
        email="grace@example.com",
        locale="en-GB",
        guild_ids=("1200000000000000001",),
    ),
    FakeUser(
        id="1100000000000000003",
        username="linus",
        global_name=None,
        email="linus@example.org",
        verified=False,
        locale="fi",
        guild_ids=(),
    ),
)


def user_by_id(user_id: str) -> FakeUser | None:
    for user in USERS:
        if user.id == user_id:
            return user
    return None


# -- helpers ----------------------------------------------------------------------------------

CDN = "https://cdn.discordapp.com"
DEFAULT_APPLICATION_ID = "1300000000000000001"
# Every sandbox application is owned by this user: ``applications.entitlements`` (a developer
# scope) lets only the owner list an application's entitlements.
APPLICATION_OWNER_ID = "1100000000000000001"


def epoch(iso: str) -> float:
    """Seconds since the epoch for an ISO 8601 timestamp with an offset."""
    return datetime.fromisoformat(iso).timestamp()


def avatar_url(user: FakeUser) -> str:
    if user.avatar:
        return f"{CDN}/avatars/{user.id}/{user.avatar}.png"
    return f"{CDN}/embed/avatars/{(int(user.id) >> 22) % 6}.png"


# Permission bits (Discord's bitfield, resources/permissions).
CREATE_INSTANT_INVITE = 1 << 0
KICK_MEMBERS = 1 << 1
BAN_MEMBERS = 1 << 2
ADMINISTRATOR = 1 << 3
MANAGE_CHANNELS = 1 << 4
MANAGE_GUILD = 1 << 5
ADD_REACTIONS = 1 << 6
VIEW_AUDIT_LOG = 1 << 7
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
MANAGE_MESSAGES = 1 << 13
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
MENTION_EVERYONE = 1 << 17
CONNECT = 1 << 20
SPEAK = 1 << 21
MUTE_MEMBERS = 1 << 22
DEAFEN_MEMBERS = 1 << 23
MOVE_MEMBERS = 1 << 24
CHANGE_NICKNAME = 1 << 26
MANAGE_NICKNAMES = 1 << 27
MANAGE_ROLES = 1 << 28
MANAGE_WEBHOOKS = 1 << 29
MANAGE_GUILD_EXPRESSIONS = 1 << 30
USE_APPLICATION_COMMANDS = 1 << 31
REQUEST_TO_SPEAK = 1 << 32
MANAGE_EVENTS = 1 << 33
MANAGE_THREADS = 1 << 34
CREATE_PUBLIC_THREADS = 1 << 35
CREATE_PRIVATE_THREADS = 1 << 36
SEND_MESSAGES_IN_THREADS = 1 << 38
MODERATE_MEMBERS = 1 << 40
CREATE_GUILD_EXPRESSIONS = 1 << 43
CREATE_EVENTS = 1 << 44
SEND_POLLS = 1 << 49
PIN_MESSAGES = 1 << 51
ALL_PERMISSIONS = (1 << 51) - 1
EVERYONE_PERMISSIONS = (
    CREATE_INSTANT_INVITE
    | ADD_REACTIONS
    | VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | CONNECT
    | SPEAK
    | CHANGE_NICKNAME
)

# The default application's bot (``state.DEFAULT_CLIENT_ID``'s bot user): a member of Sandbox
# Hub with every permission but Administrator (its role is the highest), a member of Compiler
# Crew with only reading, sending and reacting, and no member of the other two guilds.
SANDBOX_BOT_ID = "1300000000000000901"
BOT_HUB_PERMISSIONS = ALL_PERMISSIONS & ~ADMINISTRATOR
BOT_CREW_PERMISSIONS = (
    VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY | ADD_REACTIONS | EMBED_LINKS
)


# -- guilds -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Role:
    id: str
    name: str
    permissions: int
    position: int = 0
    color: int = 0
    bot_id: str | None = None  # a bot's managed role (``tags.bot_id``)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "permissions": str(self.permissions),
            "position": self.position,
            "color": self.color,
        }


@dataclass(frozen=True)
class Overwrite:
    """A channel permission overwrite: ``type`` 0 role, 1 member."""

    id: str
    type: int
    allow: int = 0
    deny: int = 0


@dataclass(frozen=True)
class Channel:
    id: str
    name: str
    type: int  # 0 text, 2 voice, 5 announcement, 13 stage, 15 forum
    position: int
    overwrites: tuple[Overwrite, ...] = ()
    topic: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "type": self.type, "position": self.position}


@dataclass(frozen=True)
class ScheduledEvent:
    id: str
    guild_id: str
    channel_id: str
    creator_id: str
    name: str
    description: str
    scheduled_start_time: str
    scheduled_end_time: str
    user_count: int

    def as_dict(self) -> dict[str, Any]:
        creator = user_by_id(self.creator_id)
        return {
            "id": self.id,
            "guild_id": self.guild_id,
            "channel_id": self.channel_id,
            "creator_id": self.creator_id,
            "name": self.name,
            "description": self.description,
            "scheduled_start_time": self.scheduled_start_time,
            "scheduled_end_time": self.scheduled_end_time,
            "privacy_level": 2,
            "status": 1,
            "entity_type": 2,
            "entity_id": None,
            "entity_metadata": None,
            "creator": public_user(creator) if creator else None,
            "user_count": self.user_count,
            "image": None,
        }


@dataclass(frozen=True)
class Guild:
    id: str
    name: str
    owner_id: str
    icon: str | None
    description: str | None
    features: tuple[str, ...]
    member_count: int
    presence_count: int
    roles: tuple[Role, ...]
    channels: tuple[Channel, ...]
    widget_enabled: bool
    # Channel a widget invite points at; None means the widget shows no instant invite.
    widget_invite_code: str | None = None
    # (username, status, activity name or None) of the members the widget shows.
    widget_members: tuple[tuple[str, str, str | None], ...] = ()
    vanity_url_code: str | None = None
    banner: str | None = None
    splash: str | None = None
    verification_level: int = 1
    nsfw_level: int = 0
    premium_subscription_count: int = 0
    events: tuple[ScheduledEvent, ...] = ()

    def role(self, role_id: str) -> Role | None:
        for role in self.roles:
            if role.id == role_id:
                return role
        return None

    def invite_guild(self) -> dict[str, Any]:
        """The partial guild inside an invite object."""
        return {
            "id": self.id,
            "name": self.name,
            "splash": self.splash,
            "banner": self.banner,
            "description": self.description,
            "icon": self.icon,
            "features": list(self.features),
            "verification_level": self.verification_level,
            "vanity_url_code": self.vanity_url_code,
            "nsfw_level": self.nsfw_level,
            "nsfw": False,
            "premium_subscription_count": self.premium_subscription_count,
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.invite_guild(),
            "owner_id": self.owner_id,
            "approximate_member_count": self.member_count,
            "approximate_presence_count": self.presence_count,
            "roles": [role.as_dict() for role in self.roles],
            "channels": [channel.as_dict() for channel in self.channels],
            "widget_enabled": self.widget_enabled,
            "widget_invite_code": self.widget_invite_code,
            "scheduled_events": [event.as_dict() for event in self.events],
        }


def _roles(guild_id: str, base: int, bot_permissions: int | None = None) -> tuple[Role, ...]:
    """@everyone (whose id is the guild's), an admin role and a moderator role; with
    ``bot_permissions``, the sandbox bot's managed role (id ``base + 3``, the highest)."""
    roles = (
        Role(guild_id, "@everyone", EVERYONE_PERMISSIONS, 0),
        Role(str(base + 1), "Admin", EVERYONE_PERMISSIONS | ADMINISTRATOR, 2, 0xE67E22),
        Role(
            str(base + 2),
            "Moderator",
            EVERYONE_PERMISSIONS | KICK_MEMBERS | BAN_MEMBERS | MANAGE_MESSAGES,
            1,
            0x3498DB,
        ),
    )
    if bot_permissions is None:
        return roles
    return (*roles, Role(str(base + 3), "Sandbox App", bot_permissions, 3, 0, SANDBOX_BOT_ID))


# Roles and channels the fixtures refer to by name.
HUB_ID = "1200000000000000001"
CREW_ID = "1200000000000000003"
HUB_ADMIN_ROLE = "1700000000000000101"
HUB_MODERATOR_ROLE = "1700000000000000102"
HUB_BOT_ROLE = "1700000000000000103"
CREW_BOT_ROLE = "1700000000000000303"
HUB_GENERAL = "1600000000000000102"
HUB_STAFF_ONLY = "1600000000000000106"  # the bot cannot see it: 50001
HUB_READ_ONLY = "1600000000000000107"  # the bot may read but not send or react: 50013
HUB_NEWS = "1600000000000000108"  # an announcement channel (crosspost, follow)
HUB_FORUM = "1600000000000000109"  # a forum channel (threads with a first message)
CREW_ANNOUNCEMENTS = "1600000000000000301"


GUILDS: tuple[Guild, ...] = (
    Guild(
        id="1200000000000000001",
        name="Sandbox Hub",
        owner_id="1100000000000000001",
        icon="5f4dcc3b5aa765d61d8327deb882cf99",
        description="The main guild of the tokenward Discord sandbox.",
        features=("COMMUNITY", "NEWS", "INVITE_SPLASH", "VANITY_URL"),
        member_count=1284,
        presence_count=312,
        roles=_roles("1200000000000000001", 1700000000000000100, BOT_HUB_PERMISSIONS),
        channels=(
            Channel("1600000000000000101", "welcome", 0, 0),
            Channel("1600000000000000102", "general", 0, 1, topic="Anything goes."),
            Channel("1600000000000000103", "General Voice", 2, 2),
            Channel("1600000000000000104", "Music", 2, 3),
            Channel("1600000000000000105", "Town Hall", 13, 4),
            Channel(
                HUB_STAFF_ONLY,
                "staff-only",
                0,
                5,
                (
                    Overwrite("1200000000000000001", 0, deny=VIEW_CHANNEL),
                    Overwrite(HUB_ADMIN_ROLE, 0, allow=VIEW_CHANNEL),
                    Overwrite(HUB_BOT_ROLE, 0, deny=VIEW_CHANNEL),
                ),
            ),
            Channel(
                HUB_READ_ONLY,
                "read-only",
                0,
                6,
                (Overwrite(HUB_BOT_ROLE, 0, deny=SEND_MESSAGES | ADD_REACTIONS),),
                topic="Announcements from people; the bot only reads here.",
            ),
            Channel(HUB_NEWS, "news", 5, 7, topic="Follow this channel from other servers."),
            Channel(HUB_FORUM, "help-forum", 15, 8, topic="One thread per question."),
        ),
        widget_enabled=True,
        widget_invite_code="Wdg3tHub",
        widget_members=(
            ("ada", "online", "Visual Studio Code"),
            ("grace", "idle", None),
            ("wumpus", "dnd", "Sandbox Quest"),
            ("clyde", "online", None),
        ),
        vanity_url_code="sandbox-hub",
        banner="b4e5c1d2a3f4e5d6c7b8a9f0e1d2c3b4",
        premium_subscription_count=14,
    ),
    Guild(
        id="1200000000000000002",
        name="Analytical Engine Club",
        owner_id="1100000000000000002",
        icon=None,
        description=None,
        features=(),
        member_count=42,
        presence_count=7,
        roles=_roles("1200000000000000002", 1700000000000000200),
        channels=(
            Channel("1600000000000000201", "notes", 0, 0),
            Channel("1600000000000000202", "Lecture Hall", 2, 1),
        ),
        widget_enabled=False,
    ),
    Guild(
        id="1200000000000000003",
        name="Compiler Crew",
        owner_id="1100000000000000002",
        icon="0cc175b9c0f1b6a831c399e269772661",
        description="Parsers, linkers and the people who love them.",
        features=("COMMUNITY",),
        member_count=268,
        presence_count=51,
        roles=_roles("1200000000000000003", 1700000000000000300, BOT_CREW_PERMISSIONS),
        channels=(
            Channel("1600000000000000301", "announcements", 0, 0),
            Channel("1600000000000000302", "events", 0, 1),
            Channel("1600000000000000303", "Pairing Room", 2, 2),
        ),
        widget_enabled=True,
        widget_invite_code=None,
        widget_members=(("linker", "online", "Debugging"), ("lexer", "idle", None)),
        events=(
            ScheduledEvent(
                id="1250000000000000001",
                guild_id="1200000000000000003",
                channel_id="1600000000000000303",
                creator_id="1100000000000000002",
                name="Compiler Night",
                description="Live-coding a tiny compiler, start to finish.",
                scheduled_start_time="2030-06-01T18:00:00+00:00",
                scheduled_end_time="2030-06-01T21:00:00+00:00",
                user_count=23,
            ),
        ),
    ),
    Guild(
        id="1200000000000000004",
        name="Quiet Corner",
        owner_id="1100000000000000002",
        icon=None,
        description="A small private guild with its widget turned off.",
        features=(),
        member_count=5,
        presence_count=1,
        roles=_roles("1200000000000000004", 1700000000000000400),
        channels=(Channel("1600000000000000401", "lounge", 0, 0),),
        widget_enabled=False,
    ),
)

GUILDS_BY_ID: dict[str, Guild] = {guild.id: guild for guild in GUILDS}


def guild_by_id(guild_id: str) -> Guild | None:
    return GUILDS_BY_ID.get(guild_id)


@dataclass(frozen=True)
class Membership:
    user_id: str
    guild_id: str
    roles: tuple[str, ...]
    nick: str | None
    joined_at: str
    premium_since: str | None = None


MEMBERSHIPS: tuple[Membership, ...] = (
    Membership(
        "1100000000000000001",
        "1200000000000000001",
        ("1700000000000000101",),
        "Countess",
        "2021-03-01T09:30:00.000000+00:00",
        premium_since="2023-05-04T12:00:00.000000+00:00",
    ),
    Membership(
        "1100000000000000001",
        "1200000000000000002",
        ("1700000000000000202",),
        None,
        "2022-07-14T18:05:11.123000+00:00",
    ),
    Membership(
        "1100000000000000001", "1200000000000000003", (), "ada.dev", "2024-01-09T08:00:00+00:00"
    ),
    Membership(
        "1100000000000000002",
        "1200000000000000001",
        ("1700000000000000102",),
        "Amazing Grace",
        "2021-04-12T15:45:00.000000+00:00",
    ),
    # Members only bots see (not OAuth users): wumpus, and the sandbox bot itself.
    Membership("1100000000000000010", HUB_ID, (), None, "2022-02-02T02:02:02.000000+00:00"),
    Membership(SANDBOX_BOT_ID, HUB_ID, (HUB_BOT_ROLE,), None, "2025-01-01T00:00:00.000000+00:00"),
    Membership(SANDBOX_BOT_ID, CREW_ID, (CREW_BOT_ROLE,), None, "2025-01-02T00:00:00.000000+00:00"),
)

# Users a bot meets in guilds but who never sign in through OAuth (not on the consent page).
EXTRA_USERS: tuple[FakeUser, ...] = (
    FakeUser(
        id="1100000000000000010",
        username="wumpus",
        global_name="Wumpus",
        email="wumpus@example.com",
        guild_ids=(HUB_ID,),
    ),
    FakeUser(
        id="1100000000000000011",
        username="spammer",
        global_name=None,
        email="spammer@example.net",
        verified=False,
    ),
)


def any_user_by_id(user_id: str) -> FakeUser | None:
    """A fake user of the consent page or one of :data:`EXTRA_USERS`."""
    found = user_by_id(user_id)
    if found is not None:
        return found
    for user in EXTRA_USERS:
        if user.id == user_id:
            return user
    return None


def membership(user_id: str, guild_id: str) -> Membership | None:
    for item in MEMBERSHIPS:
        if item.user_id == user_id and item.guild_id == guild_id:
            return item
    return None


def memberships_of(user_id: str) -> list[Membership]:
    return [item for item in MEMBERSHIPS if item.user_id == user_id]


def member_permissions(guild: Guild, item: Membership) -> int:
    """The member's guild-level permissions, computed as Discord does (owner and admin: all)."""
    if guild.owner_id == item.user_id:
        return ALL_PERMISSIONS
    everyone = guild.role(guild.id)
    perms = everyone.permissions if everyone else 0
    for role_id in item.roles:
        role = guild.role(role_id)
        if role is not None:
            perms |= role.permissions
    return ALL_PERMISSIONS if perms & ADMINISTRATOR else perms


def public_user(user: FakeUser) -> dict[str, Any]:
    """A user object as other people see it (no locale, email, mfa or premium fields)."""
    full = user.public_object()
    return {
        key: full[key]
        for key in (
            "id",
            "username",
            "discriminator",
            "global_name",
            "avatar",
            "bot",
            "system",
            "banner",
            "accent_color",
            "public_flags",
            "flags",
            "avatar_decoration_data",
            "collectibles",
            "primary_guild",
        )
    }


# -- invites ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Invite:
    code: str
    guild_id: str
    channel_id: str
    inviter_id: str | None
    expires_at: str | None
    # The scheduled event this invite advertises (``?event=`` links); see ``GET /invites``.
    guild_scheduled_event_id: str | None = None
    max_age: int = 0
    uses: int = 0


INVITES: tuple[Invite, ...] = (
    Invite("Hb7xQp2K", "1200000000000000001", "1600000000000000101", "1100000000000000001", None),
    Invite(
        "Tmp24hZz",
        "1200000000000000001",
        "1600000000000000102",
        "1100000000000000002",
        "2099-01-01T00:00:00+00:00",
        max_age=604800,
    ),
    Invite(
        "Old2023x",
        "1200000000000000002",
        "1600000000000000201",
        "1100000000000000002",
        "2024-01-01T00:00:00+00:00",
        max_age=86400,
    ),
    Invite(
        "EvNt2030",
        "1200000000000000003",
        "1600000000000000302",
        "1100000000000000002",
        None,
        guild_scheduled_event_id="1250000000000000001",
    ),
    Invite("Wdg3tHub", "1200000000000000001", "1600000000000000103", None, None),
    Invite("sandbox-hub", "1200000000000000001", "1600000000000000101", None, None),
)

INVITES_BY_CODE: dict[str, Invite] = {invite.code: invite for invite in INVITES}


# -- guild templates --------------------------------------------------------------------------


@dataclass(frozen=True)
class GuildTemplate:
    code: str
    name: str
    description: str | None
    usage_count: int
    creator_id: str
    created_at: str
    updated_at: str
    source_guild_id: str
    is_dirty: bool | None

    def as_dict(self) -> dict[str, Any]:
        creator = user_by_id(self.creator_id)
        guild = GUILDS_BY_ID[self.source_guild_id]
        return {
            "code": self.code,
            "name": self.name,
            "description": self.description,
            "usage_count": self.usage_count,
            "creator_id": self.creator_id,
            "creator": public_user(creator) if creator else None,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "source_guild_id": self.source_guild_id,
            "serialized_source_guild": _serialized_guild(guild),
            "is_dirty": self.is_dirty,
        }


def _serialized_guild(guild: Guild) -> dict[str, Any]:
    """A template's guild snapshot: ids inside are small integer placeholders, not snowflakes."""
    roles = [
        {
            "id": index,
            "name": role.name,
            "permissions": str(role.permissions),
            "color": role.color,
            "colors": {
                "primary_color": role.color,
                "secondary_color": None,
                "tertiary_color": None,
            },
            "hoist": False,
            "mentionable": False,
            "icon": None,
            "unicode_emoji": None,
        }
        for index, role in enumerate(guild.roles)
    ]
    first_channel = len(roles)
    # Templates carry text, voice, category and forum channels (the spec's template types).
    kept = [channel for channel in guild.channels if channel.type in (0, 2, 4, 15)]
    channels: list[dict[str, Any]] = [
        {
            "id": first_channel + index,
            "type": channel.type,
            "name": channel.name,
            "position": channel.position,
            "topic": None,
            "bitrate": 64000,
            "user_limit": 0,
            "nsfw": False,
            "rate_limit_per_user": 0,
            "parent_id": None,
            "default_auto_archive_duration": None,
            "permission_overwrites": [],
            "available_tags": None,
            "template": "",
            "default_reaction_emoji": None,
            "default_thread_rate_limit_per_user": None,
            "default_sort_order": None,
            "default_forum_layout": None,
            "default_tag_setting": None,
            "theme_color": None,
        }
        for index, channel in enumerate(kept)
    ]
    return {
        "name": guild.name,
        "description": guild.description,
        "region": None,
        "verification_level": guild.verification_level,
        "default_message_notifications": 1,
        "explicit_content_filter": 0,
        "preferred_locale": "en-US",
        "afk_channel_id": None,
        "afk_timeout": 300,
        "system_channel_id": str(first_channel),
        "system_channel_flags": 0,
        "icon_hash": guild.icon,
        "roles": roles,
        "channels": channels,
    }


TEMPLATES: tuple[GuildTemplate, ...] = (
    GuildTemplate(
        code="SbxHubTmpl26",
        name="Sandbox Hub starter",
        description="Welcome channel, voice rooms and a moderator role.",
        usage_count=57,
        creator_id="1100000000000000001",
        created_at="2024-02-10T10:00:00+00:00",
        updated_at="2025-11-20T16:30:00+00:00",
        source_guild_id="1200000000000000001",
        is_dirty=None,
    ),
    GuildTemplate(
        code="CrewStart01x",
        name="Compiler Crew",
        description=None,
        usage_count=3,
        creator_id="1100000000000000002",
        created_at="2025-03-03T03:03:03+00:00",
        updated_at="2025-03-03T03:03:03+00:00",
        source_guild_id="1200000000000000003",
        is_dirty=True,
    ),
)

TEMPLATES_BY_CODE: dict[str, GuildTemplate] = {template.code: template for template in TEMPLATES}


# -- sticker packs ----------------------------------------------------------------------------


def _sticker(
    sticker_id: str, pack_id: str, name: str, tags: str, format_type: int, sort: int
) -> dict[str, Any]:
    return {
        "id": sticker_id,
        "pack_id": pack_id,
        "name": name,
        "description": f"{name} sticker",
        "tags": tags,
        "type": 1,
        "format_type": format_type,
        "available": True,
        "sort_value": sort,
    }


STICKER_PACKS: tuple[dict[str, Any], ...] = (
    {
        "id": "1800000000000000001",
        "sku_id": "1400000000000000101",
        "name": "Sandbox Critters",
        "description": "Small animals that live in the sandbox.",
        "cover_sticker_id": "1900000000000000001",
        "banner_asset_id": "1810000000000000001",
        "stickers": [
            _sticker("1900000000000000001", "1800000000000000001", "Wave", "wave", 1, 0),
            _sticker("1900000000000000002", "1800000000000000001", "Nap", "sleep", 2, 1),
            _sticker("1900000000000000003", "1800000000000000001", "Cheer", "party", 3, 2),
        ],
    },
    {
        "id": "1800000000000000002",
        "sku_id": "1400000000000000102",
        "name": "Compiler Errors",
        "description": "For when the build is red.",
        "cover_sticker_id": "1900000000000000004",
        "banner_asset_id": "1810000000000000002",
        "stickers": [
            _sticker("1900000000000000004", "1800000000000000002", "Segfault", "crash", 1, 0),
            _sticker("1900000000000000005", "1800000000000000002", "Works On Mine", "shrug", 4, 1),
        ],
    },
    {
        "id": "1800000000000000003",
        "sku_id": "1400000000000000103",
        "name": "Cozy Corner",
        "description": "Tea, blankets and rain.",
        "cover_sticker_id": "1900000000000000006",
        "banner_asset_id": "1810000000000000003",
        "stickers": [
            _sticker("1900000000000000006", "1800000000000000003", "Tea", "tea", 1, 0),
        ],
    },
)


# -- connections ------------------------------------------------------------------------------


def _connection(
    conn_id: str,
    name: str,
    service: str,
    *,
    verified: bool = True,
    revoked: bool = False,
    visibility: int = 1,
    show_activity: bool = True,
) -> dict[str, Any]:
    return {
        "id": conn_id,
        "name": name,
        "type": service,
        "revoked": revoked,
        "integrations": [],
        "verified": verified,
        "friend_sync": False,
        "show_activity": show_activity,
        "two_way_link": False,
        "visibility": visibility,
    }


CONNECTIONS: dict[str, tuple[dict[str, Any], ...]] = {
    "1100000000000000001": (
        _connection("41771983", "ada_streams", "twitch"),
        _connection("1815", "ada-lovelace", "github"),
        _connection("76561197960287930", "Ada", "steam", show_activity=False),
    ),
    "1100000000000000002": (
        _connection("9112", "ghopper", "github"),
        _connection("UCgr4c3h0pp3r", "Grace Hopper", "youtube", revoked=True),
    ),
    "1100000000000000003": (_connection("1991", "linus-t", "github", visibility=0),),
}


# -- entitlements -----------------------------------------------------------------------------

SKU_SUBSCRIPTION = "1400000000000000001"
SKU_GEMS = "1400000000000000002"
SKU_SEASON_PASS = "1400000000000000003"


@dataclass(frozen=True)
class Entitlement:
    id: str
    sku_id: str
    user_id: str | None
    type: int  # 1 PURCHASE, 3 DEVELOPER_GIFT, 4 TEST_MODE_PURCHASE, 8 APPLICATION_SUBSCRIPTION
    starts_at: str | None
    ends_at: str | None = None
    deleted: bool = False
    consumed: bool = False
    guild_id: str | None = None
    application_id: str = DEFAULT_APPLICATION_ID

    def ended(self, now: float) -> bool:
        return self.ends_at is not None and epoch(self.ends_at) <= now

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "sku_id": self.sku_id,
            "application_id": self.application_id,
            "type": self.type,
            "deleted": self.deleted,
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
            "consumed": self.consumed,
        }
        if self.user_id is not None:
            body["user_id"] = self.user_id
        if self.guild_id is not None:
            body["guild_id"] = self.guild_id
        return body


ENTITLEMENTS: tuple[Entitlement, ...] = (
    # ada: active subscription, a deleted purchase, an ended subscription, a consumed and an
    # unconsumed consumable.
    Entitlement(
        "1500000000000000001",
        SKU_SUBSCRIPTION,
        "1100000000000000001",
        8,
        "2025-12-01T00:00:00+00:00",
        "2099-12-01T00:00:00+00:00",
    ),
    Entitlement(
        "1500000000000000002",
        SKU_SEASON_PASS,
        "1100000000000000001",
        1,
        "2025-01-15T00:00:00+00:00",
        deleted=True,
    ),
    Entitlement(
        "1500000000000000003",
        SKU_SUBSCRIPTION,
        "1100000000000000001",
        8,
        "2024-01-01T00:00:00+00:00",
        "2024-02-01T00:00:00+00:00",
    ),
    Entitlement(
        "1500000000000000004",
        SKU_GEMS,
        "1100000000000000001",
        1,
        "2025-06-01T00:00:00+00:00",
        consumed=True,
    ),
    Entitlement(
        "1500000000000000005", SKU_GEMS, "1100000000000000001", 1, "2025-07-01T00:00:00+00:00"
    ),
    # grace: a developer gift and an ended subscription.
    Entitlement(
        "1500000000000000006",
        SKU_SEASON_PASS,
        "1100000000000000002",
        3,
        "2025-02-02T00:00:00+00:00",
    ),
    Entitlement(
        "1500000000000000007",
        SKU_SUBSCRIPTION,
        "1100000000000000002",
        8,
        "2025-05-01T00:00:00+00:00",
        "2025-06-01T00:00:00+00:00",
    ),
    # linus: a consumed test-mode purchase.
    Entitlement(
        "1500000000000000008",
        SKU_GEMS,
        "1100000000000000003",
        4,
        "2025-08-08T00:00:00+00:00",
        consumed=True,
    ),
    # A guild subscription (no user).
    Entitlement(
        "1500000000000000009",
        SKU_SUBSCRIPTION,
        None,
        8,
        "2025-10-01T00:00:00+00:00",
        "2099-10-01T00:00:00+00:00",
        guild_id="1200000000000000001",
    ),
)


# -- what the bot finds in its guilds --------------------------------------------------------

DISCORD_EPOCH_MS = 1_420_070_400_000


def snowflake_at(iso: str, sequence: int = 0) -> str:
    """The snowflake Discord would give an object created at ``iso`` (worker 0)."""
    ms = int(epoch(iso) * 1000) - DISCORD_EPOCH_MS
    return str((ms << 22) | (sequence & 0xFFF))


@dataclass(frozen=True)
class SeedMessage:
    channel_id: str
    author_id: str
    content: str
    timestamp: str
    pinned: bool = False
    reactions: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (emoji path form, user ids)

    @property
    def id(self) -> str:
        return snowflake_at(self.timestamp)


ADA_ID = "1100000000000000001"
GRACE_ID = "1100000000000000002"
WUMPUS_ID = "1100000000000000010"
SPAMMER_ID = "1100000000000000011"

MESSAGES: tuple[SeedMessage, ...] = (
    SeedMessage(
        HUB_GENERAL,
        ADA_ID,
        "Welcome to Sandbox Hub! Read the pinned messages first.",
        "2025-03-01T09:00:00.000000+00:00",
        pinned=True,
    ),
    SeedMessage(
        HUB_GENERAL,
        GRACE_ID,
        "Has anyone tried the new compiler yet?",
        "2025-03-01T09:05:00.000000+00:00",
        reactions=(("\N{THUMBS UP SIGN}", (ADA_ID,)), ("sandbox:2200000000000000001", (ADA_ID,))),
    ),
    SeedMessage(
        HUB_GENERAL,
        SANDBOX_BOT_ID,
        "Hello from the sandbox bot.",
        "2025-03-01T09:10:00.000000+00:00",
    ),
    SeedMessage(
        HUB_NEWS,
        ADA_ID,
        "Release 1.0 is out.",
        "2025-03-02T12:00:00.000000+00:00",
    ),
    SeedMessage(
        CREW_ANNOUNCEMENTS,
        GRACE_ID,
        "Compiler Night is on the calendar.",
        "2025-03-03T18:00:00.000000+00:00",
    ),
)

# A webhook in #general (its token is made per sandbox, listed by ``GET /_sandbox/fixtures``).
HUB_WEBHOOK_ID = "2000000000000000001"
HUB_WEBHOOK_NAME = "Sandbox Hook"

# Custom emojis: ``sandbox`` in Sandbox Hub (reaction path ``sandbox:2200000000000000001``).
EMOJIS: tuple[tuple[str, str, str], ...] = (
    (HUB_ID, "2200000000000000001", "sandbox"),
    (HUB_ID, "2200000000000000002", "party_parrot"),
)
STICKERS: tuple[tuple[str, str, str, str], ...] = (
    (HUB_ID, "2300000000000000001", "Sandcastle", "castle"),
)
HUB_AUTOMOD_RULE = "2400000000000000001"
GLOBAL_COMMAND_ID = "2500000000000000001"  # /ping, global, of the default application
HUB_COMMAND_ID = "2500000000000000002"  # /report, Sandbox Hub only
LOBBY_ID = "2600000000000000001"  # a lobby of the default application: ada and grace
SOUNDBOARD_SOUND_ID = "2700000000000000001"
HUB_INTEGRATION_ID = "2800000000000000001"
SUBSCRIPTION_ID = "2900000000000000001"  # ada's subscription to SKU_SUBSCRIPTION

# SKUs of the default application: (id, type, name, slug). Types: 2 durable, 3 consumable,
# 5 subscription, 6 subscription group.
SKUS: tuple[tuple[str, int, str, str], ...] = (
    ("1400000000000000001", 5, "Sandbox Plus", "sandbox-plus"),
    ("1400000000000000002", 3, "Bag of Gems", "bag-of-gems"),
    ("1400000000000000003", 2, "Season Pass", "season-pass"),
)


# -- the document -----------------------------------------------------------------------------


def fixtures_document() -> dict[str, Any]:
    """Every fake object, JSON-safe, for ``GET /_sandbox/fixtures``."""
    return {
        "users": [
            {**user.public_object(), "email": user.email, "verified": user.verified}
            for user in USERS
        ],
        "extra_users": [{**public_user(user), "email": user.email} for user in EXTRA_USERS],
        "guilds": [guild.as_dict() for guild in GUILDS],
        "memberships": [
            {
                "user_id": item.user_id,
                "guild_id": item.guild_id,
                "roles": list(item.roles),
                "nick": item.nick,
                "joined_at": item.joined_at,
                "premium_since": item.premium_since,
            }
            for item in MEMBERSHIPS
        ],
        "invites": [
            {
                "code": invite.code,
                "guild_id": invite.guild_id,
                "channel_id": invite.channel_id,
                "inviter_id": invite.inviter_id,
                "expires_at": invite.expires_at,
                "guild_scheduled_event_id": invite.guild_scheduled_event_id,
            }
            for invite in INVITES
        ],
        "templates": [template.as_dict() for template in TEMPLATES],
        "sticker_packs": [dict(pack) for pack in STICKER_PACKS],
        "connections": {user_id: list(items) for user_id, items in CONNECTIONS.items()},
        "entitlements": [entitlement.as_dict() for entitlement in ENTITLEMENTS],
        "application_owner_id": APPLICATION_OWNER_ID,
    }
