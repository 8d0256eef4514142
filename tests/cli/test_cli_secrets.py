"""No token or secret in anything the CLI prints, for people or with ``--json``.

Every CLI test already ends with this check (see ``make_workspace``); this test walks every
command once in its people-facing form as well, over a grant that has been refreshed and rotated.
"""

from __future__ import annotations

import httpx
import pytest

from e2e.processes import register_application, sandbox_secrets, set_redirect_uri

from .conftest import GRACE, Workspace, sandbox_access_token

pytestmark = pytest.mark.slow  # one `tokenward` process per command


def test_no_command_prints_a_token_or_a_secret(workspace: Workspace) -> None:
    ws = workspace
    app = register_application(ws.sandbox_url)
    created = ws.cli.ok(
        "connections",
        "create",
        "--name",
        "discord",
        "--client-id",
        app["client_id"],
        "--client-secret-stdin",
        input=app["client_secret"],
        env={"TOKENWARD_BOT_TOKEN": app["bot_token"]},
    )
    redirect_uri = created.stdout.splitlines()[-1].strip()
    set_redirect_uri(ws.sandbox_url, app["client_id"], redirect_uri)
    ws.apps["discord"] = app
    ws.cli.ok("connections", "list")
    ws.cli.ok("link", "--connection", "discord", "--identifier", "user_1")
    ws.consent("user_1", user_id=GRACE)
    account_id = ws.show("user_1")["id"]
    first_token = sandbox_access_token(ws.sandbox_url, app["client_id"], GRACE)
    ws.refresh(account_id)
    ws.cli.ok("accounts", "list")
    ws.cli.ok("accounts", "show", "--id", account_id)
    ws.cli.ok("keys", "rotate")
    ws.cli.ok("accounts", "delete", "--id", account_id)

    secrets = sandbox_secrets(ws.sandbox_url)
    tokens = httpx.get(f"{ws.sandbox_url}/_sandbox/tokens").json()
    # The check covers what it should: the client secret, the bot token, both access tokens
    # (before and after the refresh), every refresh token and the authorization code.
    for value in (app["client_secret"], app["bot_token"], first_token):
        assert value in secrets
    assert len(tokens["details"]["access_tokens"]) == 2
    assert len(tokens["details"]["refresh_tokens"]) == 2
    assert len(tokens["details"]["codes"]) == 1
    assert ws.cli.leaked(secrets) == []
    # ... and it does catch a value that was printed.
    assert ws.cli.leaked([account_id]) != []
