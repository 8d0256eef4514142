"""The official Python SDK (``scalekit-sdk-python``, in a virtual environment of its own) against
``tokenward serve --compat-port`` over TLS with the dev CA: the connector page's flow, the
account and tool calls, and an error of each kind."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.processes import sandbox_secrets
from tokenward.sandbox.browser import walk_consent

from .conftest import CONNECTION, CompatStack, start_stack
from .sdks import python_environment, python_sdk

pytestmark = pytest.mark.slow

ADA = "1100000000000000001"
GRACE = "1100000000000000002"
DRIVER = Path(__file__).parent / "data" / "python_sdk_driver.py"


class PythonSdk:
    """The driver process: one JSON command a line in, one JSON answer a line out."""

    def __init__(self, stack: CompatStack) -> None:
        env = python_environment()
        env.update(stack.client_environment())
        self.stack = stack
        self.proc = subprocess.Popen(
            [str(python_sdk()), str(DRIVER)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.transcript: list[str] = []

    def send(self, command: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            stderr = self.proc.stderr.read() if self.proc.stderr is not None else ""
            raise AssertionError(f"the SDK driver ended:\n{stderr}\n{self.stack.gateway.output()}")
        self.transcript.append(line)
        answer: dict[str, Any] = json.loads(line)
        return answer

    def new(self, name: str, client_id: str, client_secret: str) -> dict[str, Any]:
        return self.send({"client": name, "new": [self.stack.compat_url, client_id, client_secret]})

    def ok(self, method: str, client: str = "main", **kwargs: Any) -> Any:
        answer = self.send({"client": client, "call": method, "kwargs": kwargs})
        assert answer["ok"], answer
        return answer["result"]

    def fails(self, method: str, client: str = "main", **kwargs: Any) -> dict[str, Any]:
        answer = self.send({"client": client, "call": method, "kwargs": kwargs})
        assert not answer["ok"], answer
        error: dict[str, Any] = answer["error"]
        return error

    def close(self) -> None:
        with self.proc:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture(scope="module")
def sdk(tls_stack: CompatStack) -> Iterator[PythonSdk]:
    driver = PythonSdk(tls_stack)
    try:
        answer = driver.new("main", tls_stack.client_id, tls_stack.client_secret)
        assert answer["ok"], answer
        yield driver
    finally:
        driver.close()


def authorize(sdk: PythonSdk, identifier: str, user: str = ADA) -> None:
    link = sdk.ok("get_authorization_link", connection_name=CONNECTION, identifier=identifier)
    assert link["link"].startswith(f"{sdk.stack.gateway_url}/connect/")
    assert not link["expiry"].startswith("1970")
    assert walk_consent(link["link"], user_id=user).status_code == 200


def test_the_pages_flow_then_accounts_and_tools(sdk: PythonSdk) -> None:
    authorize(sdk, "user_123")
    user = sdk.ok(
        "request", connection_name=CONNECTION, identifier="user_123", path="/api/users/@me"
    )
    assert user["status_code"] == 200
    assert user["json"]["id"] == ADA
    assert user["json"]["username"] == "ada"

    account = sdk.ok("get_connected_account", connection_name=CONNECTION, identifier="user_123")
    connected = account["connected_account"]
    assert connected["status"] == "ACTIVE"
    assert connected["connector"] == CONNECTION
    assert connected["id"].startswith("ca_")
    token = connected["authorization_details"]["oauth_token"]["access_token"]
    assert token in sandbox_secrets(sdk.stack.sandbox_url)

    guilds = sdk.ok(
        "execute_tool",
        tool_name="discord_list_my_guilds",
        tool_input={"limit": 2},
        identifier="user_123",
        connection_name=CONNECTION,
    )
    assert [g["id"] for g in guilds["data"]["data"]] == [
        "1200000000000000001",
        "1200000000000000002",
    ]
    assert guilds["execution_id"].startswith("exec_")
    me = sdk.ok(
        "execute_tool",
        tool_name="discord_get_my_user",
        tool_input={},
        connected_account_id=connected["id"],
    )
    assert me["data"]["id"] == ADA

    tools = sdk.ok("list_tools", connection_name=CONNECTION)
    names = [t["definition"]["name"] for t in tools["tools"]]
    assert len(names) == 34
    assert "discord_get_my_user" in names
    first = tools["tools"][0]["definition"]
    assert first["input_schema"]["type"] == "object"

    listing = sdk.ok("list_connected_accounts", connection_name=CONNECTION)
    assert "user_123" in [a["identifier"] for a in listing["connected_accounts"]]


def test_get_or_create_then_delete(sdk: PythonSdk) -> None:
    created = sdk.ok(
        "get_or_create_connected_account", connection_name=CONNECTION, identifier="py_new"
    )
    account = created["connected_account"]
    assert account["status"] == "PENDING_AUTH"
    again = sdk.ok(
        "get_or_create_connected_account", connection_name=CONNECTION, identifier="py_new"
    )
    assert again["connected_account"]["id"] == account["id"]

    authorize(sdk, "py_delete", user=GRACE)
    sdk.ok("delete_connected_account", connection_name=CONNECTION, identifier="py_delete")
    gone = sdk.fails("get_connected_account", connection_name=CONNECTION, identifier="py_delete")
    assert gone["type"] == "ScalekitNotFoundException"
    listing = sdk.ok("list_connected_accounts", connection_name=CONNECTION)
    assert "py_delete" not in [a["identifier"] for a in listing["connected_accounts"]]


def test_an_error_of_each_kind(sdk: PythonSdk) -> None:
    missing = sdk.fails("get_connected_account", connection_name=CONNECTION, identifier="nobody")
    assert missing["type"] == "ScalekitNotFoundException"
    assert missing["error_code"] == "ACCOUNT_NOT_FOUND"

    bad = sdk.fails("get_authorization_link", connection_name="no/such/name", identifier="user_123")
    assert bad["type"] == "ScalekitBadRequestException"
    assert bad["error_code"] == "VALIDATION_ERROR"
    assert "connector" in bad["message"]

    authorize(sdk, "py_tool_error")
    tool = sdk.fails(
        "execute_tool",
        tool_name="discord_get_my_guild_member",
        tool_input={"guild_id": "1200000000000000999"},
        identifier="py_tool_error",
        connection_name=CONNECTION,
    )
    assert "ScalekitToolException" in tool["types"], tool
    assert tool["tool_error_code"] == "10004"  # Discord's Unknown Guild


def test_unauthenticated_once_the_api_client_is_deleted(sdk: PythonSdk) -> None:
    stack = sdk.stack
    doomed = stack.cli.json("api-clients", "create", "--name", "doomed")
    answer = sdk.new("doomed", doomed["client_id"], doomed["client_secret"])
    assert answer["ok"], answer
    assert sdk.ok("list_tools", client="doomed", tool_name=["discord_get_my_user"])["tools"]
    stack.cli.ok("api-clients", "delete", doomed["client_id"])

    refused = sdk.new("again", doomed["client_id"], doomed["client_secret"])
    assert not refused["ok"]
    assert refused["error"]["type"] == "ScalekitUnauthorizedException"

    # A running server re-reads its API clients within 30 seconds; the SDK's next call then
    # gets UNAUTHENTICATED, asks for a new token, and is refused.
    deadline = time.monotonic() + 45
    while True:
        answer = sdk.send(
            {"client": "doomed", "call": "list_tools", "kwargs": {"tool_name": ["x"]}}
        )
        if not answer["ok"]:
            break
        assert time.monotonic() < deadline, "the deleted client's token still works"
        time.sleep(1)
    assert answer["error"]["type"] == "ScalekitUnauthorizedException", answer


def test_the_sdk_renews_its_token_and_sends_the_new_one_first(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """With API tokens living 2 seconds, every call after a pause meets an expired token: the
    SDK asks for a new one and retries, sending the new token first and the one its channel was
    built with second; the server must read the first."""
    stack, sandbox = start_stack(
        tmp_path_factory.mktemp("compat-ttl"),
        tls=True,
        extra={"TOKENWARD_API_TOKEN_TTL_SECONDS": "2"},
    )
    driver = PythonSdk(stack)
    try:
        assert driver.new("main", stack.client_id, stack.client_secret)["ok"]
        for _ in range(3):
            time.sleep(2.5)
            tools = driver.ok("list_tools", tool_name=["discord_get_my_user"])
            assert [t["id"] for t in tools["tools"]] == ["tol_discord_get_my_user"]
        time.sleep(2.5)
        missing = driver.fails("get_connected_account", connection_name=CONNECTION, identifier="x")
        assert missing["type"] == "ScalekitNotFoundException"
    finally:
        driver.close()
        stack.gateway.stop()
        sandbox.stop()
