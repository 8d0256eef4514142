"""The public surface of ``tokenward`` is an interface: changing it must be deliberate."""

from __future__ import annotations

import tokenward

EXPECTED = {
    "AccountNotActive",
    "AccountNotFound",
    "AsyncClient",
    "AuthenticationError",
    "BotTokenRequired",
    "Client",
    "ConflictError",
    "ConnectionNotFound",
    "InsufficientScope",
    "NotFoundError",
    "PathRejected",
    "ProviderError",
    "RateLimited",
    "ReauthorizationRequired",
    "ServerUnreachable",
    "TokenwardError",
    "ToolNotAllowed",
    "ToolNotFound",
    "UnexpectedResponse",
    "UpstreamUnavailable",
    "ValidationError",
    "WebhookSignatureError",
    "__version__",
    "verify_webhook",
}


def test_all_is_pinned() -> None:
    assert set(tokenward.__all__) == EXPECTED


def test_every_exported_name_exists() -> None:
    for name in tokenward.__all__:
        assert hasattr(tokenward, name), name


def test_errors_share_one_tree_with_stable_codes() -> None:
    codes = set()
    for name in tokenward.__all__:
        obj = getattr(tokenward, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, tokenward.TokenwardError)
            codes.add(obj.code)
    assert "RATE_LIMITED" in codes
    assert "ACCOUNT_NOT_FOUND" in codes
    err = tokenward.ValidationError("bad input", fields={"guild_id": "must be a snowflake"})
    assert err.to_dict() == {
        "error": {
            "code": "VALIDATION_ERROR",
            "message": "bad input",
            "details": {"fields": {"guild_id": "must be a snowflake"}},
        }
    }


def test_the_sdk_errors_do_not_shadow_builtins() -> None:
    import builtins

    for name in tokenward.__all__:
        assert not hasattr(builtins, name), name
    assert issubclass(tokenward.ServerUnreachable, tokenward.TokenwardError)
    assert tokenward.InsufficientScope.status == 403


def test_the_sdk_clients_are_the_package_level_names() -> None:
    from tokenward.sdk import AsyncClient, Client

    assert tokenward.Client is Client
    assert tokenward.AsyncClient is AsyncClient
