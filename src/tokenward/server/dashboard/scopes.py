"""What each Discord OAuth2 scope lets tokenward do for a user, in a sentence (our words), for
the scope checkboxes of the connection forms."""

from __future__ import annotations

from typing import Final

__all__ = ["COMMON_SCOPES", "describe_scope"]

# The scopes most connections choose from; the rest are listed under them.
COMMON_SCOPES: Final = (
    "identify",
    "email",
    "guilds",
    "guilds.members.read",
    "connections",
    "openid",
    "guilds.join",
    "role_connections.write",
    "applications.commands",
)

_DESCRIPTIONS: Final[dict[str, str]] = {
    "identify": "The user's id, name and avatar (/users/@me). Needed to know who linked.",
    "email": "The user's email address, alongside identify.",
    "guilds": "The list of servers the user is in.",
    "guilds.members.read": "The user's member profile (nickname, roles) in a server they are in.",
    "guilds.join": "Add the user to a server your bot is in.",
    "connections": "The accounts the user linked to Discord (Steam, GitHub, …).",
    "openid": "An OpenID Connect ID token beside the access token.",
    "role_connections.write": "Set the user's linked-role metadata for your application.",
    "applications.commands": "Let the user install your application's commands.",
    "applications.commands.update": "Update your application's commands (client credentials).",
    "applications.commands.permissions.update": "Change who may use your commands in a server.",
    "applications.entitlements": "Read the user's entitlements for your application.",
    "applications.store.update": "Manage your application's store listings.",
    "applications.builds.read": "Read your application's builds.",
    "applications.builds.upload": "Upload builds of your application.",
    "activities.read": "Read the user's activities (needs Discord's approval).",
    "activities.write": "Update the user's activity (needs Discord's approval).",
    "bot": "Add your bot to a server (the bot authorization flow).",
    "dm_channels.read": "Read the user's direct-message channels (needs Discord's approval).",
    "gdm.join": "Join the user to a group DM.",
    "identify.premium": "The user's Nitro status.",
    "messages.read": "Read messages over RPC (local client only).",
    "relationships.read": "The user's friends (needs Discord's approval).",
    "rpc": "Control the user's local Discord client (needs Discord's approval).",
    "rpc.activities.write": "Update activities through RPC.",
    "rpc.notifications.read": "Read notifications through RPC.",
    "rpc.voice.read": "Read voice settings through RPC.",
    "rpc.voice.write": "Change voice settings through RPC.",
    "voice": "Connect to voice on the user's behalf.",
    "webhook.incoming": "Create a webhook in a channel the user picks.",
}


def describe_scope(scope: str) -> str:
    return _DESCRIPTIONS.get(scope, "See Discord's OAuth2 documentation for this scope.")
