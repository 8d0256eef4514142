"""Every catalog tool, run through the tool runner against the sandbox, its answer checked with
``jsonschema`` against the response schema of the Discord operation it calls; and every
destructive tool refused by a connection policy before anything reaches the sandbox.

The tools come from ``Catalog.load_all()``: a new tool without an operation or a recipe fails
here. Each tool's call is arranged by its operation's recipe (``conformance/recipes.py``, shared
with ``conformance/test_every_operation.py``) on a freshly reset sandbox, then turned into the
tool's input (path, query and body values under the tool's parameter names).

One sandbox (rate limits off), one gateway on loopback and one container serve the module. The
``discord_*`` tools run on a ``discord`` connection of the sandbox's default application (its
client and bot token) with ada linked through the real consent page; a reset forgets her
tokens, so a tool that needs them links her again (a new identifier each time, as the stored
account of the last one holds dead tokens). The ``discordbot_*`` tools run on a ``discordbot``
connection with a bot account of the default application's bot token, which survives resets.
"""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import httpx
import pytest
import pytest_asyncio
import yaml

from conformance.recipes import ADA, GENERAL, GRACE, Call, Walker, arrange
from conformance.spec_tools import schema_errors, spec
from integration.gateway_env import Gateway, gateway_settings, start_gateway
from tokenward._serving import BackgroundServer
from tokenward.errors import ToolNotAllowed
from tokenward.providers.models import BODY_ROOT, ParamSpec, ToolSpec
from tokenward.sandbox import SandboxSettings, SandboxState, create_sandbox_app
from tokenward.sandbox.openapi import Operation
from tokenward.server.container import Container
from tokenward.tools import policy
from tokenward.tools.catalog import Catalog
from tokenward.tools.runner import ToolResult
from tokenward.vault.db import upgrade_async

from .env import link

ON_MODULE_LOOP = pytest.mark.asyncio(loop_scope="module")

CATALOGS = Catalog.load_all()
TOOLS = CATALOGS.tools()
OPERATION_OF: dict[str, Operation] = {t: op for op in spec().operations for t in op.tools}
DESTRUCTIVE = [t.name for t in TOOLS if t.annotations.destructive]

USERS = "users"  # discord connection: ada's account
BOTS = "bots"  # discordbot connection: the default application's bot
GUARDED = {"discord": "users-guarded", "discordbot": "bots-guarded"}
BOT_ACCOUNT = "team"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# What a tool's input says that its operation's recipe cannot: a parameter the tool requires and
# the operation does not (the catalog follows Discord's docs and the hosted catalog).
INPUTS: dict[str, Callable[[Walker], dict[str, Any]]] = {
    "discordbot_create_group_dm": lambda w: {
        "access_tokens": [w.bearer(GRACE, ("gdm.join",))["Authorization"].split()[1]]
    },
    "discordbot_create_guild_application_command": lambda w: {"type": 1},
    "discordbot_start_thread_without_message": lambda w: {"channel_id": GENERAL, "type": 11},
}
# Fields of an operation's recipe that a tool leaves to a sibling tool of the same operation.
NOT_SENT: dict[str, set[str]] = {
    "discordbot_start_thread_without_message": {"message"},  # discordbot_start_thread_in_forum…
    "discordbot_create_group_dm": {"recipient_id"},  # discordbot_create_dm
}


@dataclass
class Rig:
    walker: Walker
    gateway: Gateway
    """The gateway that answers the consent page's callback."""
    container: Container
    linked: int = 0
    identifiers: dict[str, str] = field(default_factory=dict)
    """connection name → the identifier ada was last linked under."""

    @property
    def http(self) -> httpx.Client:
        return self.walker.client

    def requests(self) -> dict[str, Any]:
        stats: dict[str, Any] = self.http.get("/_sandbox/stats").raise_for_status().json()
        return dict(stats["requests"])

    async def link_ada(self, connection: str = USERS) -> str:
        """Ada linked to ``connection`` again through the consent page; her new identifier."""
        callbacks = [
            self.container.oauth.redirect_uri(
                (await self.container.vault.get_connection_by_name(name)).id
            )
            for name in (USERS, GUARDED["discord"])
        ]
        client_id = self.walker.state.default_application.client_id
        self.http.patch(
            f"/_sandbox/applications/{client_id}", json={"redirect_uris": callbacks}
        ).raise_for_status()
        self.linked += 1
        identifier = f"ada-{self.linked}"
        await link(self.container, connection, identifier, ADA)
        self.identifiers[connection] = identifier
        return identifier

    async def ready(self, name: str) -> None:
        """Link ada again when ``name`` calls Discord as her (a reset forgot her tokens)."""
        if CATALOGS.get(name).auth in ("user", "user_or_bot"):
            await self.link_ada()

    async def run(self, name: str, tool_input: dict[str, Any], *, guarded: bool = False) -> Any:
        provider = CATALOGS.provider_of(name).name
        connection = GUARDED[provider] if guarded else (USERS if provider == "discord" else BOTS)
        identifier = self.identifiers[connection] if provider == "discord" else BOT_ACCOUNT
        return await self.container.runner.execute(
            name, tool_input, connection_name=connection, identifier=identifier
        )


def _user_scopes() -> list[str]:
    return sorted(
        {s for t in TOOLS if t.name.startswith("discord_") for s in t.scopes} | {"identify"}
    )


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def rig(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Rig]:
    app = create_sandbox_app(SandboxSettings(rate_limits=False))
    state: SandboxState = app.state.sandbox
    with (
        BackgroundServer(app) as server,
        httpx.Client(base_url=server.url, timeout=30, trust_env=False) as client,
    ):
        walker = Walker(client, state)
        walker.reset()
        settings = gateway_settings(tmp_path_factory.mktemp("gateway"), server.url)
        gateway = start_gateway(settings, server.url)
        try:
            await upgrade_async(settings.effective_database_url)
            container = Container(settings)
            await container.start(migrate=False)
            try:
                default = state.default_application
                for name, allowed in ((USERS, None), (GUARDED["discord"], "discord")):
                    await container.vault.create_connection(
                        name=name,
                        provider="discord",
                        client_id=default.client_id,
                        client_secret=default.client_secret,
                        scopes=_user_scopes(),
                        bot_token=default.bot_token,
                        allowed_tools=_denying(allowed) if allowed else None,
                    )
                for name, allowed in ((BOTS, None), (GUARDED["discordbot"], "discordbot")):
                    await container.vault.create_connection(
                        name=name,
                        provider="discordbot",
                        client_id=None,
                        client_secret=None,
                        scopes=[],
                        allowed_tools=_denying(allowed) if allowed else None,
                    )
                    await container.bot_accounts.create(name, BOT_ACCOUNT, default.bot_token)
                rig = Rig(walker, gateway, container)
                await rig.link_ada(GUARDED["discord"])
                await rig.link_ada(USERS)
                yield rig
            finally:
                await container.close()
        finally:
            gateway.server.stop()


def _denying(provider: str) -> list[str]:
    """Every tool of ``provider`` but its destructive ones, each refused by a rule of its own."""
    names = CATALOGS.catalog(provider).names()
    patterns = ["*"] + [f"!{n}" for n in DESTRUCTIVE if n in names]
    checked = policy.check_patterns(patterns, names)
    assert checked == patterns
    return patterns


# -- turning an operation's call into a tool's input ------------------------------------------


def _coerce(param: ParamSpec, value: Any) -> Any:
    """A path or query value of a recipe (text on the wire) as the parameter's JSON type."""
    types = param.schema_.get("type")
    kinds = types if isinstance(types, list) else [types]
    if isinstance(value, str):
        if "boolean" in kinds and value in ("true", "false"):
            return value == "true"
        if "integer" in kinds and "string" not in kinds and value.isdigit():
            return int(value)
    number = isinstance(value, int) and not isinstance(value, bool)
    if number and "string" in kinds and "integer" not in kinds:
        return str(value)
    return value


def _dig(body: Any, dotted: str) -> tuple[bool, Any]:
    node = body
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return False, None
        node = node[key]
    return True, node


def tool_input(walker: Walker, tool: ToolSpec, call: Call) -> dict[str, Any]:
    """The tool's input for ``call``: each parameter takes the value its wire name has there.
    Every query field and (unless it is a sample) body field of the recipe must be one the tool
    sends: a tool that cannot say what its operation needs fails here."""
    sent = {(p.location, p.wire_name.split(".")[0]) for p in tool.params}
    wanted = {("query", key) for key in call.query}
    if isinstance(call.body, dict) and not call.sampled:
        wanted |= {("body", key) for key in call.body}
    if not any(p.wire == BODY_ROOT for p in tool.params):
        missing = {key for _, key in wanted - sent} - NOT_SENT.get(tool.name, set())
        assert not missing, f"{tool.name} has no parameter for {sorted(missing)}"
    arguments: dict[str, Any] = {}
    for p in tool.params:
        if p.location == "path":
            arguments[p.name] = _coerce(p, call.path[p.wire_name])
        elif p.location == "query" and p.wire_name in call.query:
            arguments[p.name] = _coerce(p, call.query[p.wire_name])
        elif p.location == "body" and call.files is not None:
            part = call.files.get(p.wire_name)
            if p.file is not None:
                files = [f for f in call.files.values() if f[0] is not None]
                assert len(files) == 1, (tool.name, call.files)
                arguments[p.name] = base64.b64encode(files[0][1]).decode("ascii")
            elif part is not None:
                arguments[p.name] = part[1]
        elif p.location == "body" and p.wire == BODY_ROOT:
            arguments[p.name] = call.body
        elif p.location == "body":
            found, value = _dig(call.body, p.wire_name)
            if found:
                arguments[p.name] = value
    if tool.name in INPUTS:
        arguments.update(INPUTS[tool.name](walker))
    return arguments


def _route(op: Operation) -> str:
    return f"{op.method} /api/v10{op.path}"


# -- every tool --------------------------------------------------------------------------------


def _check_answer(op: Operation, result: ToolResult) -> None:
    if result.image is not None:
        assert result.image.media_type in op.media_types.values(), result.image.media_type
        assert result.image.data.startswith(PNG_SIGNATURE)
        return
    if result.text is not None:
        assert result.text.media_type in op.media_types.values(), result.text.media_type
        assert result.text.text.startswith("user_id")
        return
    if result.data is None:
        assert None in op.responses.values(), f"{op.id} documents no empty answer"
        return
    schemas = [s for s in op.responses.values() if s is not None]
    assert schemas, f"{op.id} documents no JSON answer, the tool returned {result.data!r:.200}"
    errors = [schema_errors(s, result.data) for s in schemas]
    assert any(e == [] for e in errors), errors[0][:10]


@ON_MODULE_LOOP
@pytest.mark.parametrize("name", [t.name for t in TOOLS])
async def test_the_tool_answers_with_its_operations_schema(rig: Rig, name: str) -> None:
    tool = CATALOGS.get(name)
    op = OPERATION_OF.get(name)
    assert op is not None, f"{name} calls no operation of the sandbox's spec copy"
    assert tool.operation in (None, op.id)
    rig.walker.reset()
    await rig.ready(name)
    call = arrange(rig.walker, op)
    before = rig.requests()["by_route"].get(_route(op), 0)
    result = await rig.run(name, tool_input(rig.walker, tool, call))
    assert rig.requests()["by_route"].get(_route(op), 0) == before + 1
    _check_answer(op, result)


def test_every_tool_of_the_catalog_is_walked() -> None:
    names = [t.name for t in TOOLS]
    assert len(names) == 255
    assert sum(n.startswith("discord_") for n in names) == 34
    assert sum(n.startswith("discordbot_") for n in names) == 221
    assert set(OPERATION_OF) == set(names)  # the spec copy names no tool the catalogs lack


# -- destructive tools are refused by policy ---------------------------------------------------


def test_the_destructive_tools_are_those_the_generated_catalogs_mark() -> None:
    marked: list[str] = []
    for provider in ("discord", "discordbot"):
        text = (resources.files("tokenward.providers") / provider / "tools.yaml").read_text()
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        for entry in yaml.load(text, Loader=loader)["tools"]:
            if entry["annotations"].get("destructive"):
                marked.append(entry["name"])
    assert len(DESTRUCTIVE) > 0
    assert sorted(DESTRUCTIVE) == sorted(marked)


@ON_MODULE_LOOP
@pytest.mark.parametrize("name", DESTRUCTIVE)
async def test_a_policy_refuses_the_destructive_tool_and_sends_nothing(rig: Rig, name: str) -> None:
    tool = CATALOGS.get(name)
    op = OPERATION_OF[name]
    rig.walker.reset()
    call = arrange(rig.walker, op)
    arguments = tool_input(rig.walker, tool, call)
    CATALOGS.prepare(name, arguments, bot_token_available=True)  # a call that would be sent
    before = rig.requests()
    with pytest.raises(ToolNotAllowed) as caught:
        await rig.run(name, arguments, guarded=True)
    rule = f"!{name}"
    assert caught.value.details["policy"] == policy.CONNECTION_POLICY
    assert caught.value.details["rule"] == rule
    assert repr(rule) in caught.value.message
    after = rig.requests()
    assert after["total"] == before["total"]
    assert after["by_route"].get(_route(op), 0) == before["by_route"].get(_route(op), 0) == 0


@ON_MODULE_LOOP
async def test_the_guarded_connections_run_what_they_allow(rig: Rig) -> None:
    rig.walker.reset()
    me = await rig.run("discordbot_get_current_user", {}, guarded=True)
    assert me.data["bot"] is True
    identifier = await rig.link_ada(GUARDED["discord"])
    assert re.fullmatch(r"ada-\d+", identifier)
    user = await rig.run("discord_get_my_user", {}, guarded=True)
    assert user.data["id"] == ADA
