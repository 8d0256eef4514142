"""The OAuth lifecycle end to end: link → sandbox consent → callback → vault, and the refusals.

A real gateway (uvicorn on a loopback port) talks to the real sandbox; the test drives the
browser side with ``tokenward.sandbox.browser.walk_consent`` and inspects the vault the way a
second process would.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tokenward.clock import ManualClock
from tokenward.config import Settings
from tokenward.errors import ReauthorizationRequired, UpstreamUnavailable
from tokenward.oauth.refresh import TokenManager
from tokenward.sandbox.browser import consent_callback_url, walk_consent
from tokenward.server.container import Container
from tokenward.vault.models import AccountStatus

from .gateway_env import (
    Gateway,
    gateway_settings,
    local_container,
    make_connection,
    sandbox_secrets,
    sandbox_stats,
    start_gateway,
)

ADA = "1100000000000000001"
GRACE = "1100000000000000002"


def callback_of(visited: list[str]) -> str:
    return next(u for u in visited if "/sso/v1/oauth/" in u)


async def link_account(
    container: Container, gateway: Gateway, identifier: str = "user_123", user: str = ADA
) -> str:
    connection = (await container.vault.list_connections())[0]
    link = await container.oauth.create_link(connection.name, identifier)
    result = await asyncio.to_thread(walk_consent, link.link, user_id=user)
    assert result.status_code == 200, result.text
    return link.account.id


async def test_link_consent_callback_makes_the_account_active(
    container: Container, gateway: Gateway
) -> None:
    connection, _app = await make_connection(container, gateway.sandbox_url)
    link = await container.oauth.create_link("discord", "user_123")
    assert link.link.startswith(f"{gateway.url}/connect/")
    assert link.account.status == AccountStatus.PENDING_AUTH

    result = await asyncio.to_thread(walk_consent, link.link, user_id=GRACE)

    assert result.status_code == 200
    assert "Discord connected" in result.text
    assert "Grace Hopper" in result.text
    # The link went to the sandbox's authorize URL with PKCE S256 and a 256-bit state.
    authorize = next(u for u in result.visited if "/oauth2/authorize" in u)
    query = parse_qs(urlsplit(authorize).query)
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) == 43
    assert len(query["state"][0]) >= 43
    assert query["redirect_uri"] == [container.oauth.redirect_uri(connection.id)]
    account = await container.vault.get_account(link.account.id)
    assert account.status == AccountStatus.ACTIVE
    assert account.provider_user_id == GRACE
    assert set(account.granted_scopes) >= {"identify", "guilds"}
    assert account.access_token is not None
    assert account.refresh_token is not None
    kinds = [e.kind for e in await container.vault.list_events(account_id=account.id)]
    assert "account.linked" in kinds


async def test_cancel_leaves_the_account_pending_and_says_so(
    container: Container, gateway: Gateway
) -> None:
    await make_connection(container, gateway.sandbox_url)
    link = await container.oauth.create_link("discord", "user_cancel")

    result = await asyncio.to_thread(walk_consent, link.link, action="cancel")

    assert result.status_code == 200
    assert "Authorization cancelled" in result.text
    assert "You cancelled" in result.text
    account = await container.vault.get_account(link.account.id)
    assert account.status == AccountStatus.PENDING_AUTH
    assert account.access_token is None


async def test_replayed_state_is_refused_and_changes_nothing(
    container: Container, gateway: Gateway
) -> None:
    await make_connection(container, gateway.sandbox_url)
    link = await container.oauth.create_link("discord", "user_replay")
    result = await asyncio.to_thread(walk_consent, link.link)
    assert result.status_code == 200
    before = await container.vault.get_account(link.account.id)
    grants_before = sandbox_stats(gateway.sandbox_url)["grants"]["authorization_code"]

    # Replayed from another browser (no binding cookie): refused.
    replay = result.reload(callback_of(result.visited), with_cookies=False)
    assert replay.status_code == 400
    assert "started in another browser" in replay.text
    assert "What to do" in replay.text
    # Replayed in the same browser (a reload): the stored result again, nothing exchanged.
    reload = result.reload(callback_of(result.visited))
    assert reload.status_code == 200
    assert "Discord connected" in reload.text
    after = await container.vault.get_account(link.account.id)
    assert after.version == before.version
    assert after.access_token == before.access_token
    assert sandbox_stats(gateway.sandbox_url)["grants"]["authorization_code"] == grants_before


async def test_expired_state_is_refused(tmp_path: Path, sandbox_url: str) -> None:
    settings = gateway_settings(tmp_path, sandbox_url, link_ttl_seconds=1)
    gw = start_gateway(settings, sandbox_url)
    try:
        async with local_container(settings) as container:
            await make_connection(container, sandbox_url)
            link = await container.oauth.create_link("discord", "user_late")
            # Open the link (its page shows), let it expire, then press on.
            opened = httpx.get(link.link)
            assert opened.status_code == 200
            assert "Continue to Discord" in opened.text
            await asyncio.sleep(1.2)
            late = await asyncio.to_thread(walk_consent, link.link)
            # The link itself has expired too: the gateway says so instead of redirecting.
            assert late.status_code == 404
            assert "expired" in late.text
            account = await container.vault.get_account(link.account.id)
            assert account.status == AccountStatus.PENDING_AUTH
    finally:
        gw.server.stop()


async def test_state_expiring_during_consent_is_refused(tmp_path: Path, sandbox_url: str) -> None:
    settings = gateway_settings(tmp_path, sandbox_url, link_ttl_seconds=1)
    gw = start_gateway(settings, sandbox_url)
    try:
        async with local_container(settings) as container:
            await make_connection(container, sandbox_url)
            link = await container.oauth.create_link("discord", "user_slow")
            callback_url = await asyncio.to_thread(consent_callback_url, link.link, pause=1.2)
            callback = callback_url.get()
            assert callback.status_code == 400
            assert "expired" in callback.text
            account = await container.vault.get_account(link.account.id)
            assert account.status == AccountStatus.PENDING_AUTH
            assert account.access_token is None
    finally:
        gw.server.stop()


async def test_foreign_state_and_unknown_connection_are_refused(
    container: Container, gateway: Gateway
) -> None:
    first, _ = await make_connection(container, gateway.sandbox_url, name="first")
    second, _ = await make_connection(container, gateway.sandbox_url, name="second")
    link = await container.oauth.create_link("first", "user_x")
    callback_url = await asyncio.to_thread(consent_callback_url, link.link)
    assert f"/sso/v1/oauth/{first.id}/callback" in callback_url.url

    foreign = callback_url.get(callback_url.url.replace(first.id, second.id))
    assert foreign.status_code == 400
    assert "does not match" in foreign.text

    unknown = callback_url.get(callback_url.url.replace(first.id, "00000000000000000000000000"))
    assert unknown.status_code == 404
    assert "Unknown connection" in unknown.text

    forged = callback_url.get(
        f"{gateway.url}/sso/v1/oauth/{first.id}/callback?code=x&state={'y' * 43}"
    )
    assert forged.status_code == 400
    account = await container.vault.get_account(link.account.id)
    assert account.status == AccountStatus.PENDING_AUTH

    # Nothing was consumed by the refusals: the real callback still completes.
    ok = callback_url.get()
    assert ok.status_code == 200, ok.text
    account = await container.vault.get_account(link.account.id)
    assert account.status == AccountStatus.ACTIVE


async def test_code_rejected_by_discord_shows_a_page_and_changes_nothing(
    container: Container, gateway: Gateway
) -> None:
    await make_connection(container, gateway.sandbox_url)
    link = await container.oauth.create_link("discord", "user_badcode")
    callback_url = await asyncio.to_thread(consent_callback_url, link.link)
    parts = urlsplit(callback_url.url)
    query = parse_qs(parts.query)
    tampered = parts._replace(query=f"code=not-a-real-code&state={query['state'][0]}").geturl()

    response = callback_url.get(tampered)

    assert response.status_code == 400
    assert "Discord did not accept the sign-in" in response.text
    assert "invalid_grant" in response.text
    account = await container.vault.get_account(link.account.id)
    assert account.status == AccountStatus.PENDING_AUTH
    assert account.access_token is None


async def test_user_verify_url_waits_for_the_application(
    container: Container, gateway: Gateway
) -> None:
    await make_connection(container, gateway.sandbox_url)
    link = await container.oauth.create_link(
        "discord", "user_v", user_verify_url="http://127.0.0.1:9/verify?x=1", state="app-state"
    )
    callback_url = await asyncio.to_thread(consent_callback_url, link.link)
    final = callback_url.get(follow=False).final
    assert final.status_code == 302
    target = urlsplit(final.headers["location"])
    assert target.path == "/verify"
    params = parse_qs(target.query)
    assert params["x"] == ["1"]
    assert params["state"] == ["app-state"]
    auth_request_id = params["auth_request_id"][0]
    account = await container.vault.get_account(link.account.id)
    assert account.status == AccountStatus.PENDING_VERIFICATION

    from tokenward.errors import ValidationError

    with pytest.raises(ValidationError):
        await container.oauth.verify(auth_request_id, "someone_else")
    assert (await container.vault.get_account(account.id)).status == (
        AccountStatus.PENDING_VERIFICATION
    )
    verified = await container.oauth.verify(auth_request_id, "user_v")
    assert verified.status == AccountStatus.ACTIVE


def expired_manager(container: Container, *, max_attempts: int = 4) -> TokenManager:
    """A TokenManager whose clock is eight days ahead: every token is due for refresh."""
    clock = ManualClock(start=time.time() + 8 * 86400)
    return TokenManager(
        container.vault,
        container.oauth.endpoints,
        clock,
        max_attempts=max_attempts,
        backoff_base=0.01,
        backoff_cap=0.05,
    )


async def test_500_concurrent_reads_of_an_expired_token_refresh_once(
    container: Container, gateway: Gateway
) -> None:
    await make_connection(container, gateway.sandbox_url)
    account_id = await link_account(container, gateway)
    old = await container.vault.get_account(account_id)
    httpx.post(f"{gateway.sandbox_url}/_sandbox/tokens/expire").raise_for_status()
    before = sandbox_stats(gateway.sandbox_url)["grants"]["refresh_token"]
    manager = expired_manager(container)

    grants = await asyncio.gather(*(manager.grant(account_id) for _ in range(500)))

    assert sandbox_stats(gateway.sandbox_url)["grants"]["refresh_token"] == before + 1
    tokens = {g.access_token for g in grants}
    assert len(tokens) == 1
    new_token = tokens.pop()
    assert old.access_token is not None
    assert new_token != old.access_token.get_secret_value()
    me = httpx.get(
        f"{gateway.sandbox_url}/api/v10/users/@me", headers={"Authorization": f"Bearer {new_token}"}
    )
    assert me.status_code == 200
    assert me.json()["id"] == ADA
    stored = await container.vault.get_account(account_id)
    assert stored.version == old.version + 1
    assert stored.refresh_token != old.refresh_token


async def test_invalid_grant_marks_the_account_expired_with_a_reason(
    container: Container, gateway: Gateway
) -> None:
    _connection, app = await make_connection(container, gateway.sandbox_url)
    account_id = await link_account(container, gateway)
    account = await container.vault.get_account(account_id)
    assert account.refresh_token is not None
    # The user removes the app in Discord: the grant is revoked.
    httpx.post(
        f"{gateway.sandbox_url}/api/oauth2/token/revoke",
        data={"token": account.refresh_token.get_secret_value()},
        auth=(app["client_id"], app["client_secret"]),
    ).raise_for_status()
    manager = expired_manager(container)

    with pytest.raises(ReauthorizationRequired) as info:
        await manager.grant(account_id)

    assert "send them a new authorization link" in info.value.message
    account = await container.vault.get_account(account_id)
    assert account.status == AccountStatus.EXPIRED
    assert account.status_reason is not None
    assert "invalid_grant" in account.status_reason


@pytest.mark.parametrize(
    "fault",
    [{"status": 503}, {"drop_connection": True}],
    ids=["503", "dropped-connection"],
)
async def test_transient_refresh_failures_retry_and_keep_the_account_active(
    container: Container, gateway: Gateway, fault: dict[str, object]
) -> None:
    await make_connection(container, gateway.sandbox_url)
    account_id = await link_account(container, gateway)
    httpx.post(
        f"{gateway.sandbox_url}/_sandbox/faults",
        json={"route": "/api/oauth2/token", "count": 2, **fault},
    ).raise_for_status()
    before = sandbox_stats(gateway.sandbox_url)["grants"]["refresh_token"]
    manager = expired_manager(container)

    grant = await manager.grant(account_id)

    assert sandbox_stats(gateway.sandbox_url)["grants"]["refresh_token"] == before + 1
    account = await container.vault.get_account(account_id)
    assert account.status == AccountStatus.ACTIVE
    assert account.access_token is not None
    assert grant.access_token == account.access_token.get_secret_value()
    events = await container.vault.list_events(account_id=account_id)
    assert sum(1 for e in events if e.kind == "account.refresh_failed") == 2


async def test_refresh_that_keeps_failing_gives_up_but_stays_active(
    container: Container, gateway: Gateway
) -> None:
    await make_connection(container, gateway.sandbox_url)
    account_id = await link_account(container, gateway)
    httpx.post(
        f"{gateway.sandbox_url}/_sandbox/faults",
        json={"route": "/api/oauth2/token", "status": 503},
    ).raise_for_status()
    manager = expired_manager(container, max_attempts=3)
    try:
        with pytest.raises(UpstreamUnavailable):
            await manager.grant(account_id)
    finally:
        httpx.delete(f"{gateway.sandbox_url}/_sandbox/faults").raise_for_status()
    account = await container.vault.get_account(account_id)
    assert account.status == AccountStatus.ACTIVE
    assert account.refresh_lease_owner is None


async def test_delete_revokes_at_discord(container: Container, gateway: Gateway) -> None:
    await make_connection(container, gateway.sandbox_url)
    account_id = await link_account(container, gateway)
    account = await container.vault.get_account(account_id)
    assert account.access_token is not None
    token = account.access_token.get_secret_value()
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{gateway.sandbox_url}/api/v10/users/@me", headers=headers).status_code == 200

    outcome = await container.oauth.delete_account(account_id)

    assert outcome.revoked
    assert httpx.get(f"{gateway.sandbox_url}/api/v10/users/@me", headers=headers).status_code == 401
    assert await container.vault.find_account(account.connection_id, account.identifier) is None


async def test_delete_reports_a_revoke_failure(container: Container, gateway: Gateway) -> None:
    await make_connection(container, gateway.sandbox_url)
    account_id = await link_account(container, gateway)
    httpx.post(
        f"{gateway.sandbox_url}/_sandbox/faults",
        json={"route": "/api/oauth2/token/revoke", "status": 503},
    ).raise_for_status()
    from tokenward.errors import ConflictError

    try:
        with pytest.raises(ConflictError) as info:
            await container.oauth.delete_account(account_id)
    finally:
        httpx.delete(f"{gateway.sandbox_url}/_sandbox/faults").raise_for_status()
    assert info.value.code == "REVOKE_FAILED"
    assert (await container.vault.get_account(account_id)).status == AccountStatus.ACTIVE


async def test_no_token_or_secret_reaches_the_database_logs_or_events(
    container: Container, gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await make_connection(container, gateway.sandbox_url)
    account_id = await link_account(container, gateway)
    httpx.post(f"{gateway.sandbox_url}/_sandbox/tokens/expire").raise_for_status()
    await expired_manager(container).grant(account_id)
    second = await link_account(container, gateway, "second")  # the same Discord user
    await container.oauth.delete_account(second, revoke_siblings=True)

    secrets_issued = sandbox_secrets(gateway.sandbox_url)
    assert len(secrets_issued) >= 6
    db_bytes = b""
    for path in Path(gateway.settings.data_dir).glob("tokenward.db*"):
        db_bytes += path.read_bytes()
    events = await container.vault.list_events(limit=1000)
    event_text = repr([(e.kind, e.data) for e in events])
    # The test's own scripted browser logs its URLs through httpx (codes included, as any
    # browser history would); everything the gateway, the database layer and the HTTP client
    # of the gateway log is checked.
    gateway_logs = "\n".join(
        r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))
    )
    assert "aiosqlite" in {r.name for r in caplog.records}  # the database layer was captured
    for secret in secrets_issued:
        assert secret.encode() not in db_bytes
        assert secret not in gateway_logs
        assert secret not in event_text


def _run_workers(
    settings_env: dict[str, str], account_id: str, processes: int, each: int
) -> list[str]:
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, **settings_env}
    start_at = time.time() + 2.5
    script = str(Path(__file__).with_name("refresh_worker.py"))
    procs = [
        subprocess.Popen(
            [sys.executable, script, str(start_at), account_id, str(each)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    tokens: list[str] = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        tokens.extend(json.loads(out.strip().splitlines()[-1]))
    return tokens


def _env_of(settings: Settings) -> dict[str, str]:
    env = {
        "TOKENWARD_DATA_DIR": str(settings.data_dir),
        "TOKENWARD_ENCRYPTION_KEYS": settings.encryption_keys or "",
        "TOKENWARD_PUBLIC_URL": settings.public_url,
        "TOKENWARD_DISCORD_BASE_URL": settings.discord_base_url,
    }
    if settings.database_url:
        env["TOKENWARD_DATABASE_URL"] = settings.database_url
    return env


async def _four_processes_refresh_once(settings: Settings, sandbox_url: str) -> None:
    gw = start_gateway(settings, sandbox_url)
    try:
        async with local_container(settings) as container:
            await make_connection(container, sandbox_url)
            account_id = await link_account(container, gw)
            httpx.post(f"{sandbox_url}/_sandbox/tokens/expire").raise_for_status()
            before = sandbox_stats(sandbox_url)["grants"]["refresh_token"]

            tokens = await asyncio.to_thread(_run_workers, _env_of(settings), account_id, 4, 50)

            assert sandbox_stats(sandbox_url)["grants"]["refresh_token"] == before + 1
            assert len(set(tokens)) == 1
            stored = await container.vault.get_account(account_id)
            assert stored.access_token is not None
            assert tokens[0] == stored.access_token.get_secret_value()
            assert stored.status == AccountStatus.ACTIVE
    finally:
        gw.server.stop()


@pytest.mark.slow
async def test_four_processes_sharing_sqlite_refresh_once(tmp_path: Path, sandbox_url: str) -> None:
    await _four_processes_refresh_once(gateway_settings(tmp_path, sandbox_url), sandbox_url)


@pytest.mark.slow
@pytest.mark.postgres
async def test_four_processes_sharing_postgresql_refresh_once(
    tmp_path: Path, sandbox_url: str, postgres_url: str
) -> None:
    settings = gateway_settings(tmp_path, sandbox_url, database_url=postgres_url)
    from tokenward.vault.db import upgrade_async

    await upgrade_async(postgres_url)
    await _four_processes_refresh_once(settings, sandbox_url)
