"""The janitor on the vault, SQLite and PostgreSQL, with the clock moved by hand (issue 9:
stale ``PENDING_AUTH`` accounts with no live link are cleaned up after a configurable time)."""

from __future__ import annotations

import secrets

from tokenward.clock import ManualClock
from tokenward.server.janitor import AUTH_REQUEST_RETENTION_S, Janitor
from tokenward.vault.models import AccountStatus
from tokenward.vault.repository import AccountRecord, AuthRequestRecord, ConnectionRecord, Vault

TTL = 3600.0
LINK_TTL = 600.0


async def make_connection(vault: Vault) -> ConnectionRecord:
    return await vault.create_connection(
        name="discord",
        provider="discord",
        client_id="1234567890",
        client_secret="client-secret-for-janitor-tests",
        scopes=["identify"],
    )


async def pending(
    vault: Vault, conn: ConnectionRecord, identifier: str, *, link: bool = True, **extra: str
) -> tuple[AccountRecord, AuthRequestRecord | None]:
    """An account as `get_authorization_link` leaves it: PENDING_AUTH, with a link."""
    account = await vault.get_or_create_account(conn.id, identifier)
    if not link:
        return account, None
    request = await vault.create_auth_request(
        connection_id=conn.id,
        account_id=account.id,
        identifier=identifier,
        state=secrets.token_urlsafe(24),
        code_verifier=secrets.token_urlsafe(48),
        redirect_uri="http://127.0.0.1:8080/cb",
        ttl_seconds=LINK_TTL,
        **extra,
    )
    return account, request


async def link_again(vault: Vault, conn: ConnectionRecord, account: AccountRecord) -> str:
    request = await vault.create_auth_request(
        connection_id=conn.id,
        account_id=account.id,
        identifier=account.identifier,
        state=(state := secrets.token_urlsafe(24)),
        code_verifier=secrets.token_urlsafe(48),
        redirect_uri="http://127.0.0.1:8080/cb",
        ttl_seconds=LINK_TTL,
    )
    assert request.id
    return state


async def identifiers(vault: Vault) -> set[str]:
    page = await vault.list_accounts(page_size=200)
    return {a.identifier for a in page.items}


def janitor(vault: Vault, **overrides: float) -> Janitor:
    options: dict[str, float] = {"pending_ttl": TTL, "interval": 60.0}
    options.update(overrides)
    return Janitor(vault, vault.clock, **options)  # type: ignore[arg-type]


async def test_stale_pending_accounts_without_a_live_link_are_deleted(vault: Vault) -> None:
    clock = vault.clock
    assert isinstance(clock, ManualClock)
    conn = await make_connection(vault)
    await pending(vault, conn, "never-opened", link=False)
    await pending(vault, conn, "link-expired")
    relinked, _ = await pending(vault, conn, "relinked")
    in_flight, _ = await pending(vault, conn, "callback-in-flight")
    active, request = await pending(vault, conn, "active")
    assert request is not None
    # `active` finished its consent at once.
    state = await link_again(vault, conn, active)
    claimed = await vault.consume_auth_request(state, conn.id)
    assert claimed is not None
    await vault.store_tokens_after_callback(
        active.id,
        auth_request_id=claimed.id,
        access_token="access-token-janitor",
        refresh_token="refresh-token-janitor",
        expires_at=clock.time() + 86400,
        granted_scopes=["identify"],
        provider_user_id="42",
    )

    clock.advance(TTL - 100)
    await pending(vault, conn, "young", link=False)  # created within the TTL
    flight_state = await link_again(vault, conn, in_flight)
    assert await vault.consume_auth_request(flight_state, conn.id) is not None  # opened, not done
    await link_again(vault, conn, relinked)  # a fresh link: live until its own expiry
    clock.advance(200)  # the first links are TTL + 100 s old; the fresh ones still live

    report = await janitor(vault).run_once()

    assert report.accounts_deleted == 2
    assert await identifiers(vault) == {"relinked", "callback-in-flight", "active", "young"}
    (event,) = await vault.list_events(kind="accounts.pending_deleted")
    assert event.data["count"] == 2
    assert event.data["ttl_seconds"] == TTL
    assert {a["identifier"] for a in event.data["accounts"]} == {"never-opened", "link-expired"}
    assert all(a["connection_id"] == conn.id for a in event.data["accounts"])
    # A second pass finds nothing and writes no event.
    assert (await janitor(vault).run_once()).accounts_deleted == 0
    assert await vault.count_events("accounts.pending_deleted") == 1

    # Once the fresh link expires too (and nothing else happened), it goes as well; the
    # account whose callback was consumed goes after the TTL (its callback never finished).
    clock.advance(TTL)
    await janitor(vault).run_once()
    assert await identifiers(vault) == {"active"}
    assert (await vault.get_account(active.id)).status == AccountStatus.ACTIVE


async def test_a_ttl_of_zero_keeps_pending_accounts(vault: Vault) -> None:
    clock = vault.clock
    assert isinstance(clock, ManualClock)
    conn = await make_connection(vault)
    await pending(vault, conn, "u1", link=False)
    clock.advance(10 * TTL)
    report = await janitor(vault, pending_ttl=0).run_once()
    assert report.accounts_deleted == 0
    assert await identifiers(vault) == {"u1"}
    assert await vault.count_events("accounts.pending_deleted") == 0


async def test_deletion_goes_in_batches_with_one_event_each(vault: Vault) -> None:
    clock = vault.clock
    assert isinstance(clock, ManualClock)
    conn = await make_connection(vault)
    for n in range(5):
        await pending(vault, conn, f"user_{n}", link=False)
    clock.advance(TTL + 1)

    report = await janitor(vault, batch_size=2).run_once()

    assert report.accounts_deleted == 5
    assert await identifiers(vault) == set()
    events = await vault.list_events(kind="accounts.pending_deleted")
    assert [e.data["count"] for e in events] == [2, 2, 1]
    assert sorted(a["identifier"] for e in events for a in e.data["accounts"]) == [
        f"user_{n}" for n in range(5)
    ]


async def test_long_expired_auth_requests_are_purged_but_not_those_awaiting_verify(
    vault: Vault,
) -> None:
    clock = vault.clock
    assert isinstance(clock, ManualClock)
    conn = await make_connection(vault)
    # An account waiting for the application's verify call keeps its (expired) request.
    waiting, _ = await pending(vault, conn, "waiting", link=False)
    state = secrets.token_urlsafe(24)
    request = await vault.create_auth_request(
        connection_id=conn.id,
        account_id=waiting.id,
        identifier="waiting",
        state=state,
        code_verifier=secrets.token_urlsafe(48),
        redirect_uri="http://127.0.0.1:8080/cb",
        ttl_seconds=LINK_TTL,
        user_verify_url="https://app.example.com/verify",
    )
    assert await vault.consume_auth_request(state, conn.id) is not None
    await vault.store_tokens_after_callback(
        waiting.id,
        auth_request_id=request.id,
        access_token="access-token-waiting",
        refresh_token="refresh-token-waiting",
        expires_at=clock.time() + 86400,
        granted_scopes=["identify"],
        provider_user_id="43",
        status=AccountStatus.PENDING_VERIFICATION,
    )
    kept_active, _ = await pending(vault, conn, "linked-twice")
    await link_again(vault, conn, kept_active)
    clock.advance(LINK_TTL + AUTH_REQUEST_RETENTION_S / 2)
    await pending(vault, conn, "recent")  # expires later: kept

    no_accounts = janitor(vault, pending_ttl=0)  # only the auth-request purge
    assert (await no_accounts.run_once()).auth_requests_deleted == 0  # not a day past expiry
    clock.advance(AUTH_REQUEST_RETENTION_S / 2 + 1)
    report = await no_accounts.run_once()

    assert report.auth_requests_deleted == 2  # both of linked-twice's
    assert await vault.get_auth_request(request.id) is not None
    (event,) = await vault.list_events(kind="auth_requests.purged")
    assert event.data["count"] == 2
    assert await identifiers(vault) == {"waiting", "linked-twice", "recent"}
