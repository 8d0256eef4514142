"""Control routes that make the sandbox call an application (see ``outgoing.py``).

``POST /_sandbox/interactions/invoke`` (a user runs a slash command; the interaction goes to the
application's interactions endpoint), ``GET /_sandbox/interactions/{interaction_id}`` (what
happened to it), ``POST /_sandbox/applications/{client_id}/ping-interactions-endpoint``,
``POST /_sandbox/users/{user_id}/deauthorize``, ``POST /_sandbox/applications/{client_id}/events``,
``POST /_sandbox/applications/{client_id}/ping-event-webhooks`` and ``GET /_sandbox/events``.
Bad input is ``400`` with tokenward's error envelope naming the field, as in ``control.py``.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from tokenward.errors import NotFoundError, TokenwardError, ValidationError
from tokenward.sandbox import fixtures as fx
from tokenward.sandbox.control import _error, _json_object, _reject_unknown, _snowflake_field
from tokenward.sandbox.errors import DiscordError
from tokenward.sandbox.oauth import revoke_authorization
from tokenward.sandbox.outgoing import (
    EVENT_TYPES,
    SIGNATURES,
    Signature,
    deliver_event,
    deliver_interaction,
    event_subscribed,
    interaction_payload,
    loopback_url_problem,
    send_deauthorized,
    verify_interactions_endpoint,
)
from tokenward.sandbox.state import Application, SandboxState
from tokenward.sandbox.world import Interaction, World

_COMMAND_NAME = re.compile(r"^[-_'\w]{1,32}$", re.UNICODE)
_LOCALE = re.compile(r"^[a-z]{2}(-[A-Z]{2})?$")
MAX_OPTIONS_DEPTH = 3


def _application(state: SandboxState, client_id: str, field: str = "client_id") -> Application:
    app = state.applications.get(client_id)
    if app is None:
        raise NotFoundError(
            "no application with this id",
            details={field: "unknown application; GET /_sandbox/applications lists them"},
        )
    return app


def _signature(data: dict[str, Any]) -> Signature:
    value = data.get("signature", "valid")
    for choice in SIGNATURES:
        if value == choice:
            return choice
    raise ValidationError(
        "signature must be valid, bad or stale",
        fields={"signature": "one of: valid, bad, stale"},
    )


def _infer_type(value: Any) -> int | None:
    if isinstance(value, bool):
        return 5  # BOOLEAN
    if isinstance(value, int):
        return 4  # INTEGER
    if isinstance(value, float):
        return 10  # NUMBER
    if isinstance(value, str):
        return 3  # STRING
    return None


def _options(value: Any, where: str, depth: int = 1) -> list[dict[str, Any]]:
    """Command options as Discord sends them: ``[{name, type, value}]`` or, for a subcommand
    (group), ``[{name, type, options}]``."""
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ValidationError(
            f"{where} must be a list of objects",
            fields={where: "expected a list of {name, value, type?} objects"},
        )
    if depth > MAX_OPTIONS_DEPTH:
        raise ValidationError(
            f"{where} is nested too deeply", fields={where: "at most 3 levels of options"}
        )
    result: list[dict[str, Any]] = []
    for index, item in enumerate(value):
        path = f"{where}[{index}]"
        _reject_unknown(item, {"name", "type", "value", "options", "focused"})
        name = item.get("name")
        if not isinstance(name, str) or not _COMMAND_NAME.match(name):
            raise ValidationError(
                f"{path}.name is not an option name",
                fields={f"{path}.name": "1-32 letters, digits, - _ or '"},
            )
        kind = item.get("type")
        if kind is not None and (isinstance(kind, bool) or not isinstance(kind, int)):
            raise ValidationError(
                f"{path}.type must be an integer",
                fields={f"{path}.type": "an application command option type, 1-11"},
            )
        if kind is not None and not 1 <= kind <= 11:
            raise ValidationError(
                f"{path}.type must be from 1 to 11",
                fields={f"{path}.type": "an application command option type, 1-11"},
            )
        if "options" in item:
            option = {
                "name": name,
                "type": kind or 1,
                "options": _options(item["options"], f"{path}.options", depth + 1),
            }
        elif "value" in item:
            kind = kind or _infer_type(item["value"])
            if kind is None:
                raise ValidationError(
                    f"{path}.value must be a string, number or boolean",
                    fields={f"{path}.value": "a string, number or boolean"},
                )
            option = {"name": name, "type": kind, "value": item["value"]}
        else:
            raise ValidationError(
                f"{path} needs value (or options for a subcommand)",
                fields={f"{path}.value": "required unless options is given"},
            )
        if item.get("focused") is True:
            option["focused"] = True
        result.append(option)
    return result


def _resolved(
    world: World, guild_id: str | None, options: list[dict[str, Any]], where: str = "options"
) -> dict[str, dict[str, Any]]:
    """``data.resolved`` for user (6), channel (7), role (8) and mentionable (9) options, as
    Discord sends it; an id the sandbox does not know is refused."""
    guild = world.guilds.get(guild_id or "")
    result: dict[str, dict[str, Any]] = {}
    for index, option in enumerate(options):
        path = f"{where}[{index}]"
        if "options" in option:
            for key, found in _resolved(
                world, guild_id, option["options"], path + ".options"
            ).items():
                result.setdefault(key, {}).update(found)
            continue
        kind, value = option["type"], str(option.get("value"))
        if kind not in (6, 7, 8, 9):
            continue
        if kind in (6, 9) and world.user_exists(value):
            result.setdefault("users", {})[value] = world.user_object(value)
            if guild is not None and value in guild.members:
                member = world.member_object(guild, value)
                member.pop("user", None)
                result.setdefault("members", {})[value] = member
            option["value"] = value
        elif kind == 7 and value in world.channels:
            channel = world.channels[value]
            result.setdefault("channels", {})[value] = {
                k: channel[k] for k in ("id", "name", "type", "parent_id") if k in channel
            }
            option["value"] = value
        elif kind in (8, 9) and guild is not None and value in guild.roles:
            result.setdefault("roles", {})[value] = dict(guild.roles[value])
            option["value"] = value
        else:
            what = {6: "user", 7: "channel", 8: "role", 9: "user or role"}[kind]
            raise ValidationError(
                f"{path}.value is not a known {what}",
                fields={f"{path}.value": f"the id of a {what} the sandbox knows"},
            )
    return result


def _command(
    world: World, app: Application, name: str, guild_id: str | None
) -> dict[str, Any] | None:
    """The registered command of this name: the guild's first, then the global one."""
    found = None
    for command in world.commands.values():
        if command.get("application_id") != app.client_id or command.get("name") != name:
            continue
        if int(command.get("type", 1)) != 1:
            continue
        if command.get("guild_id") is None:
            found = found or command
        elif command.get("guild_id") == guild_id:
            return command
    return found


def _first_text_channel(world: World, guild_id: str, user_id: str) -> str | None:
    """The channel of an invocation that names only a guild: #general in Sandbox Hub (as for
    ``POST /_sandbox/interactions``), else the first text channel the user can see."""
    if guild_id == fx.HUB_ID:
        return fx.HUB_GENERAL
    for channel_id, channel in sorted(world.channels.items(), key=lambda kv: int(kv[0])):
        if channel.get("guild_id") != guild_id or channel.get("type") != 0:
            continue
        try:
            if world.channel_permissions(channel, user_id) & fx.VIEW_CHANNEL:
                return channel_id
        except DiscordError:
            continue
    return None


def parse_invoke(
    state: SandboxState, data: dict[str, Any]
) -> tuple[Application, Interaction, dict[str, Any], Signature, bool]:
    """Validate ``POST /_sandbox/interactions/invoke`` and make the interaction (nothing is
    stored when the input is bad)."""
    _reject_unknown(
        data,
        {
            "application_id",
            "command",
            "options",
            "user_id",
            "guild_id",
            "channel_id",
            "signature",
            "locale",
        },
    )
    world = state.world
    application_id = _snowflake_field(data, "application_id", fx.DEFAULT_APPLICATION_ID)
    assert application_id is not None
    app = _application(state, application_id, "application_id")
    name = data.get("command")
    if not isinstance(name, str) or not _COMMAND_NAME.match(name):
        raise ValidationError(
            "command must be a command name",
            fields={"command": "required: 1-32 letters, digits, - _ or ' (e.g. ping)"},
        )
    options = _options(data["options"], "options") if "options" in data else []
    signature = _signature(data)
    locale = data.get("locale", "en-US")
    if not isinstance(locale, str) or not _LOCALE.match(locale):
        raise ValidationError(
            "locale must be a Discord locale", fields={"locale": "e.g. en-US, fr, pt-BR"}
        )
    user_id = _snowflake_field(data, "user_id", fx.ADA_ID)
    assert user_id is not None
    if not world.user_exists(user_id):
        raise NotFoundError("no user with this id", details={"user_id": "unknown user"})
    guild_id = _snowflake_field(data, "guild_id", None)
    channel_id = _snowflake_field(data, "channel_id", None)
    if guild_id is None and channel_id is None:
        guild_id = fx.HUB_ID
    if channel_id is not None:
        channel = world.channels.get(channel_id)
        if channel is None:
            raise NotFoundError("no channel with this id", details={"channel_id": "unknown"})
        channel_guild = channel.get("guild_id")
        if guild_id is not None and channel_guild != guild_id:
            raise ValidationError(
                "the channel is not in that guild",
                fields={"channel_id": f"not a channel of guild {guild_id}"},
            )
        guild_id = None if channel_guild is None else str(channel_guild)
        if guild_id is None:
            people = {r["id"] for r in channel.get("recipients", ())}
            people |= {channel.get("_owner"), channel.get("owner_id")}
            if user_id not in people:
                raise ValidationError(
                    "the user is not in that DM channel",
                    fields={"user_id": f"not a recipient of channel {channel_id}"},
                )
    else:
        assert guild_id is not None
        if guild_id not in world.guilds:
            raise NotFoundError("no guild with this id", details={"guild_id": "unknown guild"})
        channel_id = _first_text_channel(world, guild_id, user_id)
        if channel_id is None:
            raise ValidationError(
                "the user sees no text channel in that guild",
                fields={"channel_id": "give a channel the user can see"},
            )
    if guild_id is not None and user_id not in world.guilds[guild_id].members:
        raise ValidationError(
            "the user is not a member of that guild",
            fields={"user_id": f"not a member of guild {guild_id}"},
        )
    if app.interactions_endpoint_url is None:
        raise ValidationError(
            "the application has no interactions endpoint URL",
            fields={
                "application_id": "set interactions_endpoint_url first (PATCH "
                "/_sandbox/applications/{client_id} or PATCH /api/v10/applications/@me)"
            },
        )
    command = _command(world, app, name, guild_id)
    registered = command is not None
    if command is not None:
        command_id = str(command["id"])
    else:  # an unregistered name still gets a stable id of its own
        digest = hashlib.sha256(f"command:{app.client_id}:{name}".encode()).digest()
        command_id = str(2500000000000000000 + int.from_bytes(digest[:6], "big") % 10**15)
    payload: dict[str, Any] = {"id": command_id, "name": name, "type": 1}
    if command is not None and command.get("guild_id") is not None:
        payload["guild_id"] = command["guild_id"]
    if options:
        payload["options"] = options
        resolved = _resolved(world, guild_id, options)
        if resolved:
            payload["resolved"] = resolved
    interaction = world.new_interaction(app.client_id, guild_id, channel_id, user_id, 2, payload)
    body = interaction_payload(world, app, interaction, locale)
    return app, interaction, body, signature, registered


def interaction_record(world: World, interaction: Interaction) -> dict[str, Any]:
    """What ``GET /_sandbox/interactions/{interaction_id}`` answers."""

    def rendered(message_id: str | None) -> dict[str, Any] | None:
        if message_id is None:
            return None
        message = world.messages.get(interaction.channel_id, {}).get(message_id)
        return None if message is None else world.render_message(message)

    original = rendered(interaction.original_id)
    return {
        "interaction": interaction.public(),
        "response_type": interaction.response_type,
        "delivery": interaction.delivery,
        "original_message": original,
        "original_pending": bool(original and int(original.get("flags") or 0) & 128),
        "followups": [m for m in (rendered(i) for i in interaction.followups) if m is not None],
    }


def _authorization_data(
    state: SandboxState, app: Application, kind: str, user_id: str
) -> dict[str, Any]:
    """``data`` of APPLICATION_AUTHORIZED (a user install: ``integration_type`` 1, the scopes of
    the user's live grants) or APPLICATION_DEAUTHORIZED (only ``user``)."""
    data: dict[str, Any] = {"user": state.world.user_object(user_id)}
    if kind == "APPLICATION_AUTHORIZED":
        scopes: list[str] = []
        for grant in state.grants.values():
            if grant.user_id == user_id and grant.client_id == app.client_id and not grant.revoked:
                scopes.extend(s for s in grant.scopes if s not in scopes)
        data = {"integration_type": 1, "scopes": scopes, **data}
    return data


def routes(state: SandboxState) -> list[BaseRoute]:
    async def invoke(request: Request) -> Response:
        try:
            data = await _json_object(request)
            app, interaction, payload, signature, registered = parse_invoke(state, data)
        except TokenwardError as exc:
            return _error(exc)
        record = await deliver_interaction(state, app, interaction, payload, signature)
        record["command_registered"] = registered
        return JSONResponse(record)

    async def get_interaction(request: Request) -> Response:
        interaction = state.world.interactions.get(request.path_params["interaction_id"])
        if interaction is None:
            return _error(
                NotFoundError("no interaction with this id", details={"interaction_id": "unknown"})
            )
        return JSONResponse(interaction_record(state.world, interaction))

    async def ping_interactions(request: Request) -> Response:
        try:
            app = _application(state, request.path_params["client_id"])
            data = await _json_object(request, optional=True)
            _reject_unknown(data, {"url"})
            url = data.get("url", app.interactions_endpoint_url)
            if url is None:
                raise ValidationError(
                    "the application has no interactions endpoint URL",
                    fields={"url": "give url, or set the application's interactions_endpoint_url"},
                )
            problem = loopback_url_problem(url) if isinstance(url, str) else "expected a string"
            if problem is not None:
                raise ValidationError(f"url: {problem}", fields={"url": problem})
        except TokenwardError as exc:
            return _error(exc)
        return JSONResponse(await verify_interactions_endpoint(state, app, url))

    async def deauthorize(request: Request) -> Response:
        user_id = request.path_params["user_id"]
        try:
            data = await _json_object(request)
            _reject_unknown(data, {"client_id"})
            client_id = _snowflake_field(data, "client_id", None)
            if client_id is None:
                raise ValidationError(
                    "client_id is required", fields={"client_id": "required: the application"}
                )
            app = _application(state, client_id)
            if not state.world.user_exists(user_id):
                raise NotFoundError("no user with this id", details={"user_id": "unknown user"})
        except TokenwardError as exc:
            return _error(exc)
        live = [
            g
            for g in state.grants.values()
            if g.user_id == user_id and g.client_id == client_id and not g.revoked
        ]
        revoke_authorization(state, user_id, client_id)
        event, skipped = await send_deauthorized(state, app, user_id, bool(live))
        return JSONResponse(
            {
                "user_id": user_id,
                "client_id": client_id,
                "revoked_grants": len(live),
                "event": event,
                "event_skipped": skipped,
            }
        )

    def _events_target(app: Application, data: dict[str, Any]) -> str:
        url = data.get("url", app.event_webhooks_url)
        if url is None:
            raise ValidationError(
                "the application has no event webhooks URL",
                fields={"url": "give url, or set the application's event_webhooks_url"},
            )
        problem = loopback_url_problem(url) if isinstance(url, str) else "expected a string"
        if problem is not None:
            raise ValidationError(f"url: {problem}", fields={"url": problem})
        return str(url)

    async def send_event(request: Request) -> Response:
        try:
            app = _application(state, request.path_params["client_id"])
            data = await _json_object(request)
            _reject_unknown(
                data, {"type", "data", "user_id", "signature", "url", "raised_seconds_ago"}
            )
            kind = data.get("type")
            if kind not in EVENT_TYPES:
                raise ValidationError(
                    "type must be a webhook event type",
                    fields={"type": "one of: " + ", ".join(EVENT_TYPES)},
                )
            user_id = _snowflake_field(data, "user_id", None)
            if user_id is not None:
                if "data" in data:
                    raise ValidationError(
                        "give data or user_id, not both",
                        fields={"user_id": "not allowed together with data"},
                    )
                if kind not in ("APPLICATION_AUTHORIZED", "APPLICATION_DEAUTHORIZED"):
                    raise ValidationError(
                        "user_id builds only APPLICATION_(DE)AUTHORIZED data",
                        fields={"user_id": "only with APPLICATION_AUTHORIZED or _DEAUTHORIZED"},
                    )
                if not state.world.user_exists(user_id):
                    raise NotFoundError("no user with this id", details={"user_id": "unknown"})
                body = _authorization_data(state, app, str(kind), user_id)
            else:
                body = data.get("data", {})
            if not isinstance(body, dict):
                raise ValidationError("data must be an object", fields={"data": "an object"})
            signature = _signature(data)
            url = _events_target(app, data)
            late = data.get("raised_seconds_ago", 0)
            in_range = isinstance(late, int | float) and 0 <= late <= 86400
            if isinstance(late, bool) or not in_range:
                raise ValidationError(
                    "raised_seconds_ago must be a number of seconds from 0 to 86400",
                    fields={"raised_seconds_ago": "seconds between 0 and 86400"},
                )
        except TokenwardError as exc:
            return _error(exc)
        record = await deliver_event(
            state, app, str(kind), body, signature, url, raised_seconds_ago=float(late)
        )
        record["subscribed"] = event_subscribed(app, str(kind))
        return JSONResponse(record)

    async def ping_events(request: Request) -> Response:
        try:
            app = _application(state, request.path_params["client_id"])
            data = await _json_object(request, optional=True)
            _reject_unknown(data, {"signature", "url"})
            signature = _signature(data)
            url = _events_target(app, data)
        except TokenwardError as exc:
            return _error(exc)
        return JSONResponse(await deliver_event(state, app, None, None, signature, url))

    async def list_events(request: Request) -> Response:
        application_id = request.query_params.get("application_id")
        items = [
            d
            for d in state.world.event_deliveries
            if application_id is None or d["application_id"] == application_id
        ]
        return JSONResponse({"deliveries": items})

    return [
        Route("/_sandbox/interactions/invoke", invoke, methods=["POST"]),
        Route("/_sandbox/interactions/{interaction_id}", get_interaction, methods=["GET"]),
        Route(
            "/_sandbox/applications/{client_id}/ping-interactions-endpoint",
            ping_interactions,
            methods=["POST"],
        ),
        Route("/_sandbox/users/{user_id}/deauthorize", deauthorize, methods=["POST"]),
        Route("/_sandbox/applications/{client_id}/events", send_event, methods=["POST"]),
        Route(
            "/_sandbox/applications/{client_id}/ping-event-webhooks", ping_events, methods=["POST"]
        ),
        Route("/_sandbox/events", list_events, methods=["GET"]),
    ]
