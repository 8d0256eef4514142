"""The vault's repository on SQLite and PostgreSQL: CRUD, validation, events, secrecy at rest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text, update
from sqlalchemy.engine import make_url

from tokenward.clock import ManualClock
from tokenward.errors import (
    AccountNotFound,
    ConflictError,
    ConnectionNotFound,
    CryptoError,
    NotFoundError,
    ValidationError,
)
from tokenward.vault.actor import acting_as
from tokenward.vault.crypto import Keyring, generate_key
from tokenward.vault.db import create_engine
from tokenward.vault.models import AccountStatus
from tokenward.vault.repository import (
    ACCOUNTS,
    UNSET,
    AccountRecord,
    ConnectionRecord,
    Vault,
)

CLIENT_SECRET = "cs-0123456789-client-secret-plaintext"
BOT_TOKEN = "bot-MTIzNDU2Nzg5MDEy.bot-token-plaintext"
ACCESS = "at-plaintext-access-token-AAAAAAAAAAAAA"
REFRESH = "rt-plaintext-refresh-token-BBBBBBBBBBBB"
VERIFIER = "pkce-verifier-plaintext-CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC"
STATE = "state-plaintext-DDDDDDDDDDDDDDDDDDDDDDDDD"


async def make_connection(vault: Vault, name: str = "discord-main") -> ConnectionRecord:
    return await vault.create_connection(
        name=name,
        provider="discord",
        client_id="1234567890",
        client_secret=CLIENT_SECRET,
        scopes=["identify", "email", "guilds"],
        bot_token=BOT_TOKEN,
    )


async def link_account(
    vault: Vault,
    conn: ConnectionRecord,
    identifier: str,
    *,
    access: str = ACCESS,
    refresh: str | None = REFRESH,
    state: str | None = None,
) -> AccountRecord:
    """Walk an account through link → consume → store, as the OAuth callback will."""
    account = await vault.get_or_create_account(conn.id, identifier)
    state = state or f"{STATE}-{identifier}"
    req = await vault.create_auth_request(
        connection_id=conn.id,
        account_id=account.id,
        identifier=identifier,
        state=state,
        code_verifier=VERIFIER,
        redirect_uri=f"http://127.0.0.1:8080/sso/v1/oauth/{conn.id}/callback",
        ttl_seconds=600,
    )
    consumed = await vault.consume_auth_request(state, conn.id)
    assert consumed is not None
    return await vault.store_tokens_after_callback(
        account.id,
        auth_request_id=req.id,
        access_token=access,
        refresh_token=refresh,
        expires_at=vault.clock.time() + 604800,
        granted_scopes=["identify", "guilds"],
        provider_user_id="80351110224678912",
    )


# -- connections ---------------------------------------------------------------------------


async def test_connection_crud(vault: Vault) -> None:
    created = await make_connection(vault)
    assert created.client_secret.get_secret_value() == CLIENT_SECRET
    assert created.bot_token is not None
    assert created.bot_token.get_secret_value() == BOT_TOKEN
    assert created.scopes == ("identify", "email", "guilds")
    assert CLIENT_SECRET not in repr(created)
    assert BOT_TOKEN not in repr(created)
    assert "client_secret" not in created.public()

    assert (await vault.get_connection(created.id)).name == "discord-main"
    assert (await vault.get_connection_by_name("discord-main")).id == created.id

    await make_connection(vault, "another")
    assert [c.name for c in await vault.list_connections()] == ["another", "discord-main"]

    vault.clock.advance(5)  # type: ignore[attr-defined]
    updated = await vault.update_connection(
        created.id, client_secret="rotated-secret", scopes="identify guilds", bot_token=None
    )
    assert updated.client_secret.get_secret_value() == "rotated-secret"
    assert updated.bot_token is None
    assert updated.scopes == ("identify", "guilds")
    assert updated.client_id == "1234567890"
    assert updated.updated_at == created.updated_at + 5

    same = await vault.update_connection(created.id, allowed_tools=UNSET)
    assert same.client_secret.get_secret_value() == "rotated-secret"

    await vault.delete_connection(created.id)
    with pytest.raises(ConnectionNotFound):
        await vault.get_connection_by_name("discord-main")
    with pytest.raises(ConnectionNotFound):
        await vault.delete_connection(created.id)

    kinds = [e.kind for e in await vault.list_events(connection_id=created.id)]
    assert kinds == ["connection.created", "connection.updated", "connection.deleted"]


async def test_duplicate_connection_name_conflicts(vault: Vault) -> None:
    await make_connection(vault)
    with pytest.raises(ConflictError) as info:
        await make_connection(vault)
    assert info.value.details["field"] == "name"
    assert len(await vault.list_connections()) == 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 65}, "name"),
        ({"name": "has space"}, "name"),
        ({"name": "semi;colon"}, "name"),
        ({"provider": "Discord!"}, "provider"),
        ({"client_id": ""}, "client_id"),
        ({"client_secret": "  "}, "client_secret"),
        ({"scopes": ["identify", "bad scope"]}, "scopes"),
        ({"client_secret": None}, "client_secret"),
        ({"client_id": None}, "client_id"),
    ],
)
async def test_bad_connection_input_names_the_field_and_changes_nothing(
    vault: Vault, kwargs: dict[str, object], field: str
) -> None:
    args: dict[str, object] = {
        "name": "ok",
        "provider": "discord",
        "client_id": "1",
        "client_secret": CLIENT_SECRET,
        "scopes": ["identify"],
    }
    args.update(kwargs)
    with pytest.raises(ValidationError) as info:
        await vault.create_connection(**args)  # type: ignore[arg-type]
    assert field in info.value.fields
    assert CLIENT_SECRET not in str(info.value)
    assert await vault.list_connections() == []
    assert await vault.count_events() == 0


# -- accounts ------------------------------------------------------------------------------


async def test_account_lifecycle(vault: Vault) -> None:
    conn = await make_connection(vault)
    account = await vault.get_or_create_account(conn.id, "user-1")
    assert account.status is AccountStatus.PENDING_AUTH
    assert account.access_token is None
    assert account.version == 0
    again = await vault.get_or_create_account(conn.id, "user-1")
    assert again.id == account.id

    linked = await link_account(vault, conn, "user-1")
    assert linked.id == account.id
    assert linked.status is AccountStatus.ACTIVE
    assert linked.access_token is not None
    assert linked.access_token.get_secret_value() == ACCESS
    assert linked.refresh_token is not None
    assert linked.refresh_token.get_secret_value() == REFRESH
    assert linked.granted_scopes == ("identify", "guilds")
    assert linked.provider_user_id == "80351110224678912"
    assert linked.version == 1
    assert ACCESS not in repr(linked)
    assert REFRESH not in repr(linked)

    found = await vault.find_account(conn.id, "user-1")
    assert found is not None
    assert found.id == account.id
    assert await vault.find_account(conn.id, "nobody") is None

    expired = await vault.set_account_status(account.id, AccountStatus.EXPIRED, "invalid_grant")
    assert expired.status is AccountStatus.EXPIRED
    assert expired.status_reason == "invalid_grant"

    await vault.touch_last_used(account.id)
    assert (await vault.get_account(account.id)).last_used_at == vault.clock.time()

    await vault.delete_account(account.id)
    with pytest.raises(AccountNotFound):
        await vault.get_account(account.id)
    with pytest.raises(AccountNotFound):
        await vault.delete_account(account.id)

    kinds = [e.kind for e in await vault.list_events(account_id=account.id)]
    assert kinds == [
        "account.created",
        "auth_request.created",
        "auth_request.consumed",
        "account.linked",
        "account.status_changed",
        "account.deleted",
    ]


async def test_account_needs_existing_connection_and_valid_identifier(vault: Vault) -> None:
    with pytest.raises(ConnectionNotFound):
        await vault.get_or_create_account("01NOSUCHCONNECTION00000000", "u")
    conn = await make_connection(vault)
    with pytest.raises(ValidationError) as info:
        await vault.get_or_create_account(conn.id, "")
    assert "identifier" in info.value.fields


async def test_deleting_a_connection_cascades_to_accounts(vault: Vault) -> None:
    conn = await make_connection(vault)
    account = await link_account(vault, conn, "u")
    await vault.delete_connection(conn.id)
    with pytest.raises(AccountNotFound):
        await vault.get_account(account.id)


async def test_list_accounts_keyset_pagination_and_filters(vault: Vault) -> None:
    conn = await make_connection(vault)
    other = await make_connection(vault, "other")
    ids = []
    for i in range(7):
        vault.clock.advance(0.002)  # type: ignore[attr-defined]
        ids.append((await vault.get_or_create_account(conn.id, f"user-{i}")).id)
    await vault.get_or_create_account(other.id, "user-0")
    await vault.set_account_status(ids[3], AccountStatus.EXPIRED, "test")

    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = await vault.list_accounts(connection_id=conn.id, page_size=3, page_token=token)
        pages += 1
        seen.extend(a.id for a in page.items)
        token = page.next_page_token
        if token is None:
            break
    assert seen == ids
    assert pages == 3

    assert len((await vault.list_accounts(page_size=200)).items) == 8
    expired = await vault.list_accounts(status="EXPIRED")
    assert [a.id for a in expired.items] == [ids[3]]
    by_identifier = await vault.list_accounts(identifier="user-0")
    assert len(by_identifier.items) == 2
    # The counts match what the listings page through.
    assert await vault.count_accounts() == 8
    assert await vault.count_accounts(connection_ids=[conn.id]) == 7
    assert await vault.count_accounts(connection_ids=[conn.id, other.id]) == 8
    assert await vault.count_accounts(identifier="user-0") == 2
    assert await vault.count_accounts(connection_ids=[other.id], identifier="user-1") == 0
    assert await vault.count_accounts(connection_ids=[]) == 0

    with pytest.raises(ValidationError) as info:
        await vault.list_accounts(page_size=0)
    assert "page_size" in info.value.fields
    with pytest.raises(ValidationError) as info:
        await vault.list_accounts(page_token="not-a-token")
    assert "page_token" in info.value.fields
    with pytest.raises(ValidationError) as info:
        await vault.list_accounts(status="SLEEPING")
    assert "status" in info.value.fields


async def test_listing_decrypts_tokens_only_when_asked(
    vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page of accounts for the API or the CLI never returns tokens, so it must not pay for
    decrypting them; deleting a connection asks for them (it revokes each grant)."""
    conn = await make_connection(vault)
    await link_account(vault, conn, "u1")
    opened: list[str] = []
    real_open = vault.keyring.decrypt

    def counting(envelope: str, aad: str) -> str:
        opened.append(aad)
        return real_open(envelope, aad)

    monkeypatch.setattr(vault.keyring, "decrypt", counting)
    page = await vault.list_accounts(connection_id=conn.id)
    assert page.items[0].status is AccountStatus.ACTIVE
    assert page.items[0].access_token is None
    assert page.items[0].refresh_token is None
    assert opened == []
    full = await vault.list_accounts(connection_id=conn.id, with_tokens=True)
    assert full.items[0].access_token is not None
    assert full.items[0].access_token.get_secret_value() == ACCESS
    assert len(opened) == 2


# -- auth requests -------------------------------------------------------------------------


async def test_auth_request_is_single_use_bound_and_expiring(vault: Vault) -> None:
    conn = await make_connection(vault)
    other = await make_connection(vault, "other")
    account = await vault.get_or_create_account(conn.id, "u")

    async def new_request(state: str, ttl: float = 600) -> str:
        req = await vault.create_auth_request(
            connection_id=conn.id,
            account_id=account.id,
            identifier="u",
            state=state,
            code_verifier=VERIFIER,
            redirect_uri="http://127.0.0.1/cb",
            ttl_seconds=ttl,
            user_verify_url="https://app.example/verify",
            app_state="app-state-1",
        )
        assert req.code_verifier.get_secret_value() == VERIFIER
        assert VERIFIER not in repr(req)
        return req.id

    rid = await new_request(STATE)
    # Foreign connection: refused and nothing consumed.
    assert await vault.consume_auth_request(STATE, other.id) is None
    # Forged state: refused.
    assert await vault.consume_auth_request(STATE + "x", conn.id) is None
    got = await vault.consume_auth_request(STATE, conn.id)
    assert got is not None
    assert got.id == rid
    assert got.user_verify_url == "https://app.example/verify"
    assert got.app_state == "app-state-1"
    assert got.consumed_at == vault.clock.time()
    # Replay: refused.
    assert await vault.consume_auth_request(STATE, conn.id) is None
    inspected = await vault.inspect_auth_request(STATE)
    assert inspected is not None
    assert inspected.consumed_at is not None

    await new_request(STATE + "-late", ttl=600)
    vault.clock.advance(601)  # type: ignore[attr-defined]
    assert await vault.consume_auth_request(STATE + "-late", conn.id) is None
    late = await vault.inspect_auth_request(STATE + "-late")
    assert late is not None
    assert late.consumed_at is None

    assert await vault.purge_auth_requests(older_than=vault.clock.time()) == 2
    assert await vault.get_auth_request(rid) is None


async def test_auth_request_must_match_its_account(vault: Vault) -> None:
    conn = await make_connection(vault)
    other = await make_connection(vault, "other")
    account = await vault.get_or_create_account(conn.id, "u")
    with pytest.raises(ValidationError) as info:
        await vault.create_auth_request(
            connection_id=other.id,
            account_id=account.id,
            identifier="u",
            state=STATE,
            code_verifier=VERIFIER,
            redirect_uri="http://127.0.0.1/cb",
            ttl_seconds=600,
        )
    assert "account_id" in info.value.fields
    with pytest.raises(ValidationError) as info:
        await vault.create_auth_request(
            connection_id=conn.id,
            account_id=account.id,
            identifier="u",
            state="short",
            code_verifier=VERIFIER,
            redirect_uri="http://127.0.0.1/cb",
            ttl_seconds=600,
        )
    assert "state" in info.value.fields


async def test_callback_store_needs_a_consumed_uncompleted_request(vault: Vault) -> None:
    conn = await make_connection(vault)
    account = await vault.get_or_create_account(conn.id, "u")
    req = await vault.create_auth_request(
        connection_id=conn.id,
        account_id=account.id,
        identifier="u",
        state=STATE,
        code_verifier=VERIFIER,
        redirect_uri="http://127.0.0.1/cb",
        ttl_seconds=600,
    )

    async def store() -> AccountRecord:
        return await vault.store_tokens_after_callback(
            account.id,
            auth_request_id=req.id,
            access_token=ACCESS,
            refresh_token=REFRESH,
            expires_at=None,
            granted_scopes=["identify"],
            provider_user_id="1",
            status=AccountStatus.PENDING_VERIFICATION,
        )

    with pytest.raises(ConflictError):
        await store()  # not consumed yet
    assert (await vault.get_account(account.id)).access_token is None
    assert await vault.consume_auth_request(STATE, conn.id) is not None
    stored = await store()
    assert stored.status is AccountStatus.PENDING_VERIFICATION
    with pytest.raises(ConflictError):
        await store()  # already completed
    assert (await vault.get_account(account.id)).version == 1


# -- refresh lease and refreshed tokens ----------------------------------------------------


async def test_lease_owner_semantics(vault: Vault, clock: ManualClock) -> None:
    conn = await make_connection(vault)
    account = await link_account(vault, conn, "u")
    assert await vault.acquire_refresh_lease(account.id, "w1", ttl=30)
    assert not await vault.acquire_refresh_lease(account.id, "w2", ttl=30)
    assert await vault.acquire_refresh_lease(account.id, "w1", ttl=30), "re-entrant for its owner"
    assert not await vault.release_refresh_lease(account.id, "w2"), "only the owner releases"
    assert await vault.release_refresh_lease(account.id, "w1")
    assert await vault.acquire_refresh_lease(account.id, "w2", ttl=30)
    clock.advance(31)
    assert await vault.acquire_refresh_lease(account.id, "w3", ttl=30), "expired lease is free"
    # w2 lost its lease: its late write must not land.
    lost = await vault.store_refreshed_tokens(
        account.id, "w2", access_token="stale-at", refresh_token="stale-rt", expires_at=1.0
    )
    assert lost is None
    current = await vault.get_account(account.id)
    assert current.access_token is not None
    assert current.access_token.get_secret_value() == ACCESS
    assert current.refresh_lease_owner == "w3"
    assert not await vault.acquire_refresh_lease("01NOSUCHACCOUNT00000000000", "w", ttl=1)


async def test_store_refreshed_tokens_keeps_old_refresh_token_when_omitted(vault: Vault) -> None:
    conn = await make_connection(vault)
    account = await link_account(vault, conn, "u")
    assert await vault.acquire_refresh_lease(account.id, "w", ttl=30)
    stored = await vault.store_refreshed_tokens(
        account.id, "w", access_token="at-2", refresh_token=None, expires_at=123.0
    )
    assert stored is not None
    assert stored.access_token is not None
    assert stored.access_token.get_secret_value() == "at-2"
    assert stored.refresh_token is not None
    assert stored.refresh_token.get_secret_value() == REFRESH
    assert stored.version == account.version + 1
    assert stored.refresh_lease_owner is None
    assert stored.granted_scopes == account.granted_scopes

    assert await vault.acquire_refresh_lease(account.id, "w", ttl=30)
    stored = await vault.store_refreshed_tokens(
        account.id,
        "w",
        access_token="at-3",
        refresh_token="rt-3",
        expires_at=456.0,
        granted_scopes=["identify"],
    )
    assert stored is not None
    assert stored.refresh_token is not None
    assert stored.refresh_token.get_secret_value() == "rt-3"
    assert stored.granted_scopes == ("identify",)
    assert stored.version == account.version + 2
    events = await vault.list_events(kind="account.refreshed")
    assert [e.data["refresh_token_rotated"] for e in events] == [False, True]


async def test_mark_expired_records_reason_and_frees_lease(vault: Vault) -> None:
    conn = await make_connection(vault)
    account = await link_account(vault, conn, "u")
    assert await vault.acquire_refresh_lease(account.id, "w", ttl=30)
    expired = await vault.mark_expired(
        account.id, "invalid_grant: refresh token revoked", owner="w"
    )
    assert expired.status is AccountStatus.EXPIRED
    assert expired.status_reason == "invalid_grant: refresh token revoked"
    assert expired.refresh_lease_owner is None
    (event,) = await vault.list_events(kind="account.expired")
    assert event.data == {"from": "ACTIVE", "reason": "invalid_grant: refresh token revoked"}


# -- API clients and events ----------------------------------------------------------------


async def test_api_clients(vault: Vault) -> None:
    client, secret = await vault.create_api_client("backend")
    plain = secret.get_secret_value()
    assert plain not in repr(secret)
    ok = await vault.verify_api_client(client.client_id, plain)
    assert ok is not None
    assert ok.name == "backend"
    assert await vault.verify_api_client(client.client_id, plain + "x") is None
    assert await vault.verify_api_client("twc_unknown", plain) is None
    assert [c.client_id for c in await vault.list_api_clients()] == [client.client_id]
    await vault.delete_api_client(client.client_id)
    assert await vault.verify_api_client(client.client_id, plain) is None
    with pytest.raises(NotFoundError) as info:
        await vault.delete_api_client(client.client_id)
    assert info.value.code == "API_CLIENT_NOT_FOUND"


async def test_record_event_refuses_secret_bearing_keys(vault: Vault) -> None:
    await vault.record_event("tool.executed", data={"tool": "get_user", "status": "ok", "ms": 3})
    with pytest.raises(ValueError, match="access_token"):
        await vault.record_event("tool.executed", data={"access_token": "x"})
    events = await vault.list_events(kind="tool.executed")
    assert [e.data for e in events] == [{"tool": "get_user", "status": "ok", "ms": 3}]
    assert await vault.list_events(after_id=events[0].id) == []


async def test_record_usage_stores_what_record_event_stores(vault: Vault) -> None:
    """The hot path's batch writer (data serialized once, rows as tuples) reads back exactly as
    the single-event writer's rows do, whatever the data holds."""
    conn = await make_connection(vault)
    account = await vault.get_or_create_account(conn.id, "ada")
    samples: list[dict[str, Any]] = [
        {"route": "GET /channels/{channel_id}/messages", "status": 200, "latency_ms": 12.34},
        {"route": "POST /x", "status": 404, "discord_code": 10003, "attempts": 2, "ms": 1e-07},
        {"tool": "t", "status": "ok", "none": None, "nested": {"a": [1, 2.5, None, "é"]}},
        {"text": 'héllo ✓ \u2028 "quoted" \\ back', "big": 2**70, "neg": -(2**63)},
        {"flag": True, "off": False, "empty": {}, "list": [], "float": 1e16, "small": 5e-324},
        {"actor": "api_client:mine", "status": 200},
        {},
    ]
    with acting_as("operator:alice"):
        for data in samples:
            await vault.record_event("probe.single", account_id=account.id, data=data)
        await vault.record_usage(
            [(1.5, "probe.batch", conn.id, account.id, data) for data in samples],
            {account.id: 7.25},
        )
    single = await vault.list_events(kind="probe.single")
    batch = await vault.list_events(kind="probe.batch")
    assert [e.data for e in batch] == [e.data for e in single]
    assert batch[0].data == {**samples[0], "actor": "operator:alice"}
    assert batch[5].data["actor"] == "api_client:mine"
    assert [(e.at, e.connection_id, e.account_id) for e in batch] == [
        (1.5, conn.id, account.id)
    ] * len(samples)
    assert (await vault.get_account(account.id)).last_used_at == 7.25
    async with vault.engine.connect() as c:
        stored = (
            await c.execute(
                text("SELECT CAST(data AS TEXT) FROM events WHERE kind = 'probe.batch'")
            )
        ).scalars()
        assert all(raw.isascii() for raw in stored), "non-ASCII text is stored escaped"

    # Without an actor in context, none is added.
    await vault.record_usage([(2.0, "probe.plain", None, None, {"status": 200})], {})
    assert [e.data for e in await vault.list_events(kind="probe.plain")] == [{"status": 200}]


@pytest.mark.parametrize("key", ["access_token", "Token", "AUTHORIZATION", "code"])
async def test_record_usage_refuses_secret_bearing_keys(vault: Vault, key: str) -> None:
    # The clean keys are remembered; a batch repeating them still has each new key checked.
    await vault.record_usage([(1.0, "probe", None, None, {"route": "r", "status": 1})], {})
    with pytest.raises(ValueError, match=key):
        await vault.record_usage(
            [
                (2.0, "probe", None, None, {"route": "r", "status": 1}),
                (3.0, "probe", None, None, {"route": "r", key: "x"}),
            ],
            {},
        )
    # Nothing of the refused batch was written.
    assert [e.at for e in await vault.list_events(kind="probe")] == [1.0]


# -- secrecy at rest -----------------------------------------------------------------------

PLAINTEXTS = (CLIENT_SECRET, BOT_TOKEN, ACCESS, REFRESH, VERIFIER, STATE)


async def _all_cells(vault: Vault) -> str:
    """Every value of every table, as text."""
    parts: list[str] = []
    async with vault.engine.connect() as conn:
        for table in (
            "connections",
            "connected_accounts",
            "auth_requests",
            "api_clients",
            "events",
        ):
            for row in (await conn.execute(text(f"SELECT * FROM {table}"))).all():
                parts.extend(str(v) for v in row)
    return "\n".join(parts)


async def test_no_plaintext_secret_in_any_row(vault: Vault) -> None:
    conn = await make_connection(vault)
    await link_account(vault, conn, "user-visible-identifier", state=STATE)
    _, api_secret = await vault.create_api_client("app")
    cells = await _all_cells(vault)
    assert "user-visible-identifier" in cells, "the check must see the rows"
    for secret in (*PLAINTEXTS, api_secret.get_secret_value()):
        assert secret not in cells


async def test_no_plaintext_secret_in_the_sqlite_file(sqlite_url: str, keyring: Keyring) -> None:
    vault = Vault(create_engine(sqlite_url), keyring, ManualClock())
    try:
        conn = await make_connection(vault)
        await link_account(vault, conn, "user-visible-identifier", state=STATE)
        _, api_secret = await vault.create_api_client("app")
    finally:
        await vault.close()
    path = Path(str(make_url(sqlite_url).database))
    blob = b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
    assert b"user-visible-identifier" in blob, "the check must see the data"
    for secret in (*PLAINTEXTS, api_secret.get_secret_value()):
        assert secret.encode() not in blob


async def test_ciphertext_copied_to_another_row_or_column_does_not_decrypt(vault: Vault) -> None:
    conn = await make_connection(vault)
    alice = await link_account(vault, conn, "alice", access="alice-access", refresh="alice-rt")
    bob = await link_account(vault, conn, "bob", access="bob-access", refresh="bob-rt")
    async with vault.engine.begin() as db:
        alice_at = (
            await db.execute(
                text("SELECT access_token_enc FROM connected_accounts WHERE id = :id"),
                {"id": alice.id},
            )
        ).scalar_one()
        await db.execute(
            update(ACCOUNTS).where(ACCOUNTS.c.id == bob.id).values(access_token_enc=alice_at)
        )
    with pytest.raises(CryptoError) as info:
        await vault.get_account(bob.id)
    assert "alice-access" not in str(info.value)
    # The same value in its own row still opens; in another column of its row it does not.
    assert (await vault.get_account(alice.id)).access_token is not None
    async with vault.engine.begin() as db:
        await db.execute(
            update(ACCOUNTS).where(ACCOUNTS.c.id == alice.id).values(refresh_token_enc=alice_at)
        )
    with pytest.raises(CryptoError):
        await vault.get_account(alice.id)


async def test_a_vault_with_another_key_cannot_read(database_url: str, vault: Vault) -> None:
    conn = await make_connection(vault)
    stranger = Vault(
        create_engine(database_url), Keyring.from_keys([("test-a", generate_key())]), vault.clock
    )
    try:
        with pytest.raises(CryptoError):
            await stranger.get_connection(conn.id)
    finally:
        await stranger.close()


async def test_restate_auth_request_replaces_state_and_verifier(vault: Vault) -> None:
    conn = await make_connection(vault)
    account = await vault.get_or_create_account(conn.id, "u")
    req = await vault.create_auth_request(
        connection_id=conn.id,
        account_id=account.id,
        identifier="u",
        state=STATE,
        code_verifier=VERIFIER,
        redirect_uri="http://127.0.0.1/cb",
        ttl_seconds=600,
    )
    fresh_state, fresh_verifier = "f" * 43, "g" * 64
    restated = await vault.restate_auth_request(
        req.id, state=fresh_state, code_verifier=fresh_verifier
    )
    assert restated is not None
    assert restated.code_verifier.get_secret_value() == fresh_verifier
    assert await vault.consume_auth_request(STATE, conn.id) is None, "the old state is dead"
    consumed = await vault.consume_auth_request(fresh_state, conn.id)
    assert consumed is not None
    assert consumed.id == req.id
    # Once consumed (or expired) it can no longer be restated.
    assert await vault.restate_auth_request(req.id, state="h" * 43, code_verifier="x") is None
    assert (
        await vault.restate_auth_request(
            "01NOSUCHREQUEST00000000000", state="h" * 43, code_verifier="x"
        )
        is None
    )


async def test_bot_accounts_hold_their_token_encrypted_and_keep_their_bot(
    database_url: str, vault: Vault
) -> None:
    """Issue 10: a connection without an OAuth client; its accounts hold a bot token (encrypted,
    bound to its row), are ACTIVE at once, and an identifier keeps its bot."""
    bots = await vault.create_connection(
        name="bots",
        provider="discordbot",
        client_id=None,
        client_secret=None,
        scopes=[],
        allowed_tools=["*", "!*_ban*"],
    )
    assert (bots.client_id, bots.client_secret, bots.allowed_tools) == (
        None,
        None,
        ("*", "!*_ban*"),
    )
    token = "bot-token-SECRET-value-1"
    account, created = await vault.store_bot_account(
        bots.id, "team_1", bot_token=token, provider_user_id="1300000000000000901"
    )
    assert created is True
    assert account.status == AccountStatus.ACTIVE
    assert account.access_token is not None
    assert account.access_token.get_secret_value() == token
    assert (account.refresh_token, account.expires_at) == (None, None)
    again, created_again = await vault.store_bot_account(
        bots.id,
        "team_1",
        bot_token="bot-token-SECRET-value-2",
        provider_user_id="1300000000000000901",
    )
    assert (again.id, created_again, again.version) == (account.id, False, account.version + 1)
    with pytest.raises(ConflictError) as refused:
        await vault.store_bot_account(
            bots.id, "team_1", bot_token="other-bot-SECRET", provider_user_id="1300000000000000902"
        )
    assert refused.value.code == "BOT_CHANGE_REFUSED"
    kept = await vault.get_account(account.id)
    assert kept.access_token is not None
    assert kept.access_token.get_secret_value() == "bot-token-SECRET-value-2"
    engine = create_engine(database_url, null_pool=True)
    try:
        async with engine.connect() as conn:
            stored = (
                await conn.execute(text("SELECT access_token_enc FROM connected_accounts"))
            ).all()
            events = (await conn.execute(text("SELECT data FROM events"))).all()
    finally:
        await engine.dispose()
    assert all("SECRET" not in str(row[0]) for row in stored)
    assert all("SECRET" not in str(row[0]) for row in events)
    kinds = [e.kind for e in await vault.list_events(account_id=account.id)]
    assert kinds == ["account.created", "account.linked", "account.linked"]


async def test_a_deauthorized_discord_user_is_disconnected_on_every_connection_of_the_app(
    vault: Vault,
) -> None:
    """``disconnect_provider_user`` (APPLICATION_DEAUTHORIZED): every account of that Discord
    user through the same Discord application (same client id), whatever its status, becomes
    DISCONNECTED with its tokens dropped and one status event each, in one go; another
    application's accounts and accounts never linked stay as they are; a repeat changes
    nothing."""
    from tokenward.vault.webhooks import WebhookStore

    await WebhookStore(vault).create_endpoint("https://app.example.com/h", "", "whsec_" + "A" * 43)
    main = await make_connection(vault)
    same_app = await make_connection(vault, "same-app")
    other_app = await vault.create_connection(
        name="other-app", provider="discord", client_id="99", client_secret="s" * 12, scopes=[]
    )
    ada = await link_account(vault, main, "ada")
    ada_expired = await link_account(vault, main, "ada-old")
    await vault.mark_expired(ada_expired.id, "invalid_grant")
    ada_same_app = await link_account(vault, same_app, "ada", state="s" * 43)
    ada_other_app = await link_account(vault, other_app, "ada", state="o" * 43)
    pending = await vault.get_or_create_account(main.id, "not-linked-yet")

    async def status_events() -> int:
        async with vault.engine.connect() as conn:
            count = await conn.execute(
                text(
                    "SELECT count(*) FROM outbox_events"
                    " WHERE type = 'connected_account.status_updated'"
                )
            )
            return int(count.scalar_one())

    before = await status_events()
    changed = await vault.disconnect_provider_user(
        main.id, "80351110224678912", "deauthorized in Discord"
    )

    assert {a.id for a in changed} == {ada.id, ada_expired.id, ada_same_app.id}
    for account in changed:
        stored = await vault.get_account(account.id)
        assert stored.status == AccountStatus.DISCONNECTED
        assert stored.status_reason == "deauthorized in Discord"
        assert (stored.access_token, stored.refresh_token, stored.expires_at) == (None, None, None)
    assert (await vault.get_account(ada.id)).version == ada.version + 1
    assert (await vault.get_account(ada_other_app.id)).status == AccountStatus.ACTIVE
    assert (await vault.get_account(pending.id)).status == AccountStatus.PENDING_AUTH
    assert await status_events() == before + 3

    again = await vault.disconnect_provider_user(
        main.id, "80351110224678912", "deauthorized in Discord"
    )
    assert again == []
    assert await status_events() == before + 3
    with pytest.raises(ConnectionNotFound):
        await vault.disconnect_provider_user("nope", "80351110224678912", "x")
