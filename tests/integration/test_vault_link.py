"""The vault's side of the link and of deletion, on SQLite and PostgreSQL: browser binding, user
changes, grant siblings (across connections of one Discord application), sibling disconnection,
failure notes, the result page's outcome lookup, the connection setting."""

from __future__ import annotations

import secrets

import pytest

from tokenward.errors import ConflictError
from tokenward.vault.models import AccountStatus
from tokenward.vault.repository import AccountRecord, ConnectionRecord, Vault

GRACE = "1100000000000000002"
ADA = "1100000000000000001"


async def connection(
    vault: Vault, name: str = "discord", client_id: str = "1300"
) -> ConnectionRecord:
    return await vault.create_connection(
        name=name,
        provider="discord",
        client_id=client_id,
        client_secret="cs-secret-value",
        scopes=["identify"],
    )


async def link(
    vault: Vault,
    conn: ConnectionRecord,
    identifier: str,
    user: str | None,
    *,
    allow_user_change: bool = False,
    username: str | None = None,
) -> tuple[AccountRecord, str]:
    account = await vault.get_or_create_account(conn.id, identifier)
    state = secrets.token_urlsafe(32)
    request = await vault.create_auth_request(
        connection_id=conn.id,
        account_id=account.id,
        identifier=identifier,
        state=state,
        code_verifier="v" * 43,
        redirect_uri=f"http://127.0.0.1:8080/sso/v1/oauth/{conn.id}/callback",
        ttl_seconds=600,
        allow_user_change=allow_user_change,
    )
    assert request.allow_user_change is allow_user_change
    assert await vault.consume_auth_request(state, conn.id) is not None
    stored = await vault.store_tokens_after_callback(
        account.id,
        auth_request_id=request.id,
        access_token=f"at-{identifier}-{user}",
        refresh_token=f"rt-{identifier}-{user}",
        expires_at=vault.clock.time() + 3600,
        granted_scopes=["identify"],
        provider_user_id=user,
        allow_user_change=allow_user_change,
        username=username,
    )
    return stored, request.id


async def test_require_user_verification_is_stored_and_changed(vault: Vault) -> None:
    plain = await connection(vault)
    assert plain.require_user_verification is False
    assert plain.public()["require_user_verification"] is False
    strict = await vault.create_connection(
        name="strict",
        provider="discord",
        client_id="1",
        client_secret="s",
        scopes=["identify"],
        require_user_verification=True,
    )
    assert strict.require_user_verification is True
    changed = await vault.update_connection(plain.id, require_user_verification=True)
    assert changed.require_user_verification is True
    assert (await vault.get_connection(plain.id)).require_user_verification is True


async def test_restating_binds_the_request_to_a_browser(vault: Vault) -> None:
    conn = await connection(vault)
    account = await vault.get_or_create_account(conn.id, "user_1")
    request = await vault.create_auth_request(
        connection_id=conn.id,
        account_id=account.id,
        identifier="user_1",
        state="s" * 43,
        code_verifier="v" * 43,
        redirect_uri="http://127.0.0.1/cb",
        ttl_seconds=600,
    )
    assert request.browser_hash is None
    assert request.allow_user_change is False
    restated = await vault.restate_auth_request(
        request.id, state="t" * 43, code_verifier="w" * 43, browser_hash="ab" * 32
    )
    assert restated is not None
    assert restated.browser_hash == "ab" * 32
    assert (await vault.get_auth_request(request.id)).browser_hash == "ab" * 32  # type: ignore[union-attr]


async def test_a_different_discord_user_is_refused_unless_allowed(vault: Vault) -> None:
    conn = await connection(vault)
    first, _ = await link(vault, conn, "user_1", GRACE)

    with pytest.raises(ConflictError) as info:
        await link(vault, conn, "user_1", ADA)

    assert info.value.code == "USER_CHANGE_REFUSED"
    assert info.value.details["provider_user_id"] == GRACE
    kept = await vault.get_account(first.id)
    assert kept.provider_user_id == GRACE
    assert kept.version == first.version
    assert kept.access_token == first.access_token
    # The same user again, or no user id known, is no change.
    same, _ = await link(vault, conn, "user_1", GRACE)
    assert same.provider_user_id == GRACE

    changed, request_id = await link(vault, conn, "user_1", ADA, allow_user_change=True)
    assert changed.provider_user_id == ADA
    [event] = await vault.list_events(kind="account.user_changed")
    assert event.data == {
        "auth_request_id": request_id,
        "from_provider_user_id": GRACE,
        "to_provider_user_id": ADA,
    }


async def test_grant_siblings_share_the_discord_user_and_application(vault: Vault) -> None:
    main = await connection(vault)
    same_app = await connection(vault, "discord-2")  # the same client id: the same Discord grant
    other_app = await connection(vault, "other", client_id="1400")
    a, _ = await link(vault, main, "a", GRACE)
    b, _ = await link(vault, main, "b", GRACE)
    c, _ = await link(vault, same_app, "c", GRACE)
    await link(vault, main, "d", ADA)
    await link(vault, other_app, "e", GRACE)
    expired, _ = await link(vault, main, "g", GRACE)
    await vault.set_account_status(expired.id, AccountStatus.EXPIRED, "gone")
    unknown_user, _ = await link(vault, main, "h", None)

    siblings = await vault.grant_siblings(a.id)

    assert [(s.id, s.identifier, s.connection_name) for s in siblings] == sorted(
        [(b.id, "b", "discord"), (c.id, "c", "discord-2")]
    )
    assert await vault.grant_siblings(unknown_user.id) == []
    assert {h.identifier for h in await vault.grant_holders(main.id, GRACE)} == {"a", "b", "c"}
    assert await vault.grant_holders(main.id, "999") == []


async def test_deleting_with_disconnect_marks_each_sibling_in_the_same_transaction(
    vault: Vault,
) -> None:
    main = await connection(vault)
    a, _ = await link(vault, main, "a", GRACE)
    b, _ = await link(vault, main, "b", GRACE)
    d, _ = await link(vault, main, "d", ADA)

    disconnected = await vault.delete_account(a.id, revoked=True, disconnect_siblings=True)

    assert [s.id for s in disconnected] == [b.id]
    sibling = await vault.get_account(b.id)
    assert sibling.status == AccountStatus.DISCONNECTED
    assert sibling.access_token is None
    assert sibling.refresh_token is None
    assert sibling.version == b.version + 1
    assert sibling.status_reason is not None
    assert a.id in sibling.status_reason
    assert "'a'" in sibling.status_reason
    assert (await vault.get_account(d.id)).status == AccountStatus.ACTIVE
    [deleted] = await vault.list_events(kind="account.deleted")
    assert deleted.data == {"identifier": "a", "revoked": True, "siblings_disconnected": [b.id]}
    changed = [
        e for e in await vault.list_events(account_id=b.id) if e.kind == "account.status_changed"
    ]
    assert changed[-1].data["revoked_with_account_id"] == a.id


async def test_failure_notes_keep_the_status_and_outcomes_are_found_by_request(
    vault: Vault,
) -> None:
    main = await connection(vault)
    account, request_id = await link(vault, main, "a", GRACE, username="Grace Hopper")

    await vault.note_authorization_failure(
        account.id,
        "the last authorization attempt failed: Discord answered invalid_client",
        "authorization.exchange_failed",
        {"auth_request_id": "01OTHER", "error": "invalid_client"},
    )

    noted = await vault.get_account(account.id)
    assert noted.status == AccountStatus.ACTIVE
    assert noted.status_reason is not None
    assert "invalid_client" in noted.status_reason
    request = await vault.get_auth_request(request_id)
    assert request is not None
    outcome = await vault.auth_request_outcome(
        request, ("account.linked", "authorization.exchange_failed")
    )
    assert outcome is not None
    assert outcome.kind == "account.linked"
    assert outcome.data["username"] == "Grace Hopper"
    await vault.note_authorization_failure("01NOSUCH", "x", "authorization.error", {})  # no-op
