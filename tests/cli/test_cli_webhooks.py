"""``tokenward webhooks``: create (secret shown once), list, rotate, deliveries, delete; bad input
is one line naming the field and changes nothing."""

from __future__ import annotations

import pytest

from .conftest import Workspace

pytestmark = pytest.mark.slow  # one `tokenward` process per command


def test_webhook_endpoints_from_the_command_line(workspace: Workspace) -> None:
    cli = workspace.cli
    url = "https://hooks.example.com/tokenward"
    created = cli.json("webhooks", "create", "--url", url, "--events", "discord.event")
    assert created["secret"].startswith("whsec_")
    assert created["url"] == url
    assert created["events"] == ["discord.event"]
    listed = cli.json("webhooks", "list")["webhooks"]
    assert [w["id"] for w in listed] == [created["id"]]
    assert "secret" not in listed[0]
    assert created["secret"] not in cli.ok("webhooks", "list").stdout

    rotated = cli.json("webhooks", "rotate-secret", created["id"])
    assert rotated["secret"].startswith("whsec_")
    assert rotated["secret"] != created["secret"]
    assert cli.json("webhooks", "deliveries", created["id"]) == {"deliveries": []}

    line = cli.error_line("webhooks", "create", "--url", "http://10.0.0.1/hook")
    assert "url" in line
    assert "https" in line
    line = cli.error_line("webhooks", "create", "--url", url, "--events", "account.nope")
    assert "unknown event type(s) account.nope" in line
    assert "not exist" in cli.error_line("webhooks", "delete", "nope")
    assert len(cli.json("webhooks", "list")["webhooks"]) == 1  # the refusals changed nothing

    assert cli.json("webhooks", "delete", created["id"]) == {"deleted": True, "id": created["id"]}
    assert cli.json("webhooks", "list") == {"webhooks": []}
