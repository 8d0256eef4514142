"""Connected accounts that hold a bot token (providers without OAuth: ``discordbot``).

``BotAccounts.create`` is what ``POST /api/v1/connected-accounts``, ``tokenward accounts create
--bot-token-stdin`` and the SDK's ``create_connected_account(bot_token=)`` do:

1. the connection must be one whose accounts hold bot tokens (an OAuth connection's accounts are
   linked through authorization links instead);
2. the token's shape is checked (printable ASCII without spaces: it goes into a header);
3. the token is checked with the provider: ``GET /users/@me`` with ``Authorization: Bot <token>``,
   through the proxy core (path guard, rate limiter, retries of that read). A 401 or 403 is a
   400 ``VALIDATION_ERROR`` naming ``credentials.bot_token``; Discord unreachable is a 502. In
   either case nothing is written;
4. only then the account is stored, encrypted like every secret, ``ACTIVE``, with the bot's user
   id as ``provider_user_id`` (an existing account of the same bot gets the new token, e.g.
   after a reset in the Developer Portal; one of another bot is refused).

The token is never returned, logged or put in an event.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable

from tokenward.connectors import WHOAMI_PATH, Connector, Connectors
from tokenward.errors import ReauthorizationRequired, UpstreamUnavailable, ValidationError
from tokenward.oauth.service import validate_identifier
from tokenward.proxy.accounts import AccountDirectory
from tokenward.proxy.client import Credential, ProviderClient, StaticCredentials
from tokenward.vault.repository import AccountRecord, Vault

log = logging.getLogger("tokenward.accounts")

BOT_TOKEN_FIELD = "credentials.bot_token"
_TOKEN_SHAPE = re.compile(r"[\x21-\x7e]{16,512}")


def _bad_token(reason: str) -> ValidationError:
    return ValidationError(f"{BOT_TOKEN_FIELD}: {reason}", fields={BOT_TOKEN_FIELD: reason})


class BotAccounts:
    def __init__(
        self,
        vault: Vault,
        connectors: Connectors,
        clients: Callable[[Connector], ProviderClient],
        directory: AccountDirectory,
    ) -> None:
        self.vault = vault
        self.connectors = connectors
        self.clients = clients
        self.directory = directory

    async def create(
        self, connection_name: str, identifier: str, bot_token: str
    ) -> tuple[AccountRecord, bool]:
        """Check ``bot_token`` with the provider, then store the account (see the module doc).
        Returns ``(account, created)``; ``created`` is false when an account of the same bot got
        its new token."""
        connection = await self.vault.get_connection_by_name(connection_name)
        connector = self.connectors.provider(connection.provider)
        if connector.uses_oauth:
            reason = (
                f"connection {connection_name!r} (provider {connection.provider}) links accounts "
                "through authorization links, not bot tokens: use POST "
                "/api/v1/connected-accounts/authorization-link"
            )
            raise ValidationError(reason, fields={"connection_name": reason})
        validate_identifier(identifier)
        if not isinstance(bot_token, str) or not _TOKEN_SHAPE.fullmatch(bot_token):
            raise _bad_token("must be a bot token: 16 to 512 printable characters, no spaces")
        user = await self._whoami(connector, bot_token)
        account, created = await self.vault.store_bot_account(
            connection.id,
            identifier,
            bot_token=bot_token,
            provider_user_id=user["id"],
            username=user.get("username"),
        )
        self.directory.forget(connection.id, identifier)
        log.info(
            "account %s (connection %r) %s; it acts as Discord user %s",
            account.id,
            connection_name,
            "created" if created else "stored with its new token",
            account.provider_user_id,
        )
        return account, created

    async def _whoami(self, connector: Connector, bot_token: str) -> dict[str, str]:
        """The bot user behind ``bot_token``: ``{"id", "username"?}``."""
        credential = Credential("bot", bot_token, "", connector.account_scheme)
        client = self.clients(connector)
        try:
            response = await client.request(
                "GET",
                connector.api_prefix + WHOAMI_PATH,
                credentials=StaticCredentials(credential),
            )
        except ReauthorizationRequired:
            raise _bad_token(
                f"{connector.display_name} refused it (401): the token is wrong, was reset in "
                "the Developer Portal, or the bot was deleted; nothing was stored"
            ) from None
        if response.status == 403:
            raise _bad_token(f"{connector.display_name} refused it (403); nothing was stored")
        if response.status != 200:
            raise UpstreamUnavailable(
                f"{connector.display_name} answered {response.status} while checking the bot "
                "token; nothing was stored, try again",
                details={"status": response.status, "retry_after": 1.0},
            )
        try:
            body = json.loads(response.content)
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("id"), str):
            raise UpstreamUnavailable(
                f"{connector.display_name} answered the token check with an unexpected body; "
                "nothing was stored",
                details={"status": response.status},
            )
        if body.get("bot") is not True:
            raise _bad_token("it is not a bot's token (the user it belongs to is no bot)")
        username = body.get("username")
        found = {"id": body["id"]}
        if isinstance(username, str):
            found["username"] = username[:100]
        return found
