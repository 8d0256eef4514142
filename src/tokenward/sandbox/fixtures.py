"""Deterministic fake data: users, guilds, invites, templates, sticker packs, connections and
entitlements. ``GET /_sandbox/fixtures`` exposes all of it so tests and people can find ids and
codes to try. Snowflakes are real-shaped (18–19 digits) and fixed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
