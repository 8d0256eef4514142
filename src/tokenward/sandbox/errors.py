"""Discord's error bodies: ``{"message", "code"}`` plus ``errors`` for 50035 (``discord-api.md``
§4), and the constructors for the codes the sandbox answers with."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from starlette.responses import JSONResponse

MAX_SNOWFLAKE = 2**64 - 1
_DIGITS = re.compile(r"[0-9]{1,20}")


# -- errors -----------------------------------------------------------------------------------


class DiscordError(Exception):
    """An error answered with Discord's JSON error body."""

    def __init__(
        self, status: int, code: int, message: str, errors: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors is not None:
            body["errors"] = self.errors
        return JSONResponse(body, status_code=self.status)


def unauthorized() -> DiscordError:
    return DiscordError(401, 0, "401: Unauthorized")


def missing_scope() -> DiscordError:
    return DiscordError(403, 50026, "Missing required OAuth2 scope")


def not_authorized_for_application() -> DiscordError:
    return DiscordError(
        403, 20012, "You are not authorized to perform this action on this application"
    )


def unknown(code: int, what: str) -> DiscordError:
    return DiscordError(404, code, f"Unknown {what}")


class FormErrors:
    """Collects field errors into Discord's ``errors`` tree, then raises one 50035."""

    def __init__(self) -> None:
        self.tree: dict[str, Any] = {}

    def add(self, field: str, code: str, message: str) -> None:
        leaf = self.tree.setdefault(field, {"_errors": []})
        leaf["_errors"].append({"code": code, "message": message})

    def raise_if_any(self) -> None:
        if self.tree:
            raise DiscordError(400, 50035, "Invalid Form Body", self.tree)

    # Parsers: each returns the parsed value, or None after recording an error.
    def snowflake(self, field: str, value: str) -> int | None:
        if _DIGITS.fullmatch(value) and int(value) <= MAX_SNOWFLAKE:
            return int(value)
        self.add(field, "NUMBER_TYPE_COERCE", f'Value "{value}" is not snowflake.')
        return None

    def integer(self, field: str, value: str, low: int, high: int) -> int | None:
        try:
            number = int(value.strip())
        except ValueError:
            self.add(field, "NUMBER_TYPE_COERCE", f'Value "{value}" is not int.')
            return None
        if number < low:
            self.add(
                field, "NUMBER_TYPE_MIN", f"int value should be greater than or equal to {low}."
            )
            return None
        if number > high:
            self.add(field, "NUMBER_TYPE_MAX", f"int value should be less than or equal to {high}.")
            return None
        return number

    def boolean(self, field: str, value: str) -> bool | None:
        # Discord's query-string booleans: true/True/1 and false/False/0 (reference §0).
        if value in ("true", "True", "1"):
            return True
        if value in ("false", "False", "0"):
            return False
        self.add(field, "BOOLEAN_TYPE_COERCE", f'Value "{value}" is not bool.')
        return None

    def choice(self, field: str, value: str, choices: Iterable[str]) -> str | None:
        options = tuple(choices)
        if value in options:
            return value
        listed = ", ".join(f"'{option}'" for option in options)
        self.add(field, "BASE_TYPE_CHOICES", f"Value must be one of ({listed}).")
        return None


def missing_access() -> DiscordError:
    return DiscordError(403, 50001, "Missing Access")


def missing_permissions() -> DiscordError:
    return DiscordError(403, 50013, "Missing Permissions")


def invalid_form(errors: dict[str, Any]) -> DiscordError:
    return DiscordError(400, 50035, "Invalid Form Body", errors)


def invalid_json() -> DiscordError:
    return DiscordError(400, 50109, "The request body contains invalid JSON.")


def bad_request(code: int, message: str) -> DiscordError:
    return DiscordError(400, code, message)


def not_found() -> DiscordError:
    """A 404 for objects whose "unknown" code Discord does not document."""
    return DiscordError(404, 0, "404: Not Found")
