"""The path guard: only relative paths under the provider's API base ever leave the gateway.

:func:`safe_path` accepts a path such as ``/api/v10/users/@me`` (the leading slash is optional)
and returns it normalised, or raises :class:`~tokenward.errors.PathRejected` with a reason. The
rule is an allow-list, not a list of known attacks:

* ASCII only; letters, digits and ``-._~!$&'()*+,;=`` raw; anything else must be a ``%XX``
  escape. So schemes (``:``), queries and fragments (``?``, ``#``), backslashes, spaces and
  control characters (raw CR, LF, NUL, …) are refused outright, and so is raw Unicode.
* ``@`` only as the whole segment ``@me`` (Discord's "the current user"), or ``@original`` right
  after ``messages`` (an interaction's first response:
  ``/webhooks/{id}/{token}/messages/@original``); anywhere else it could be read as ``user@host``.
* No empty segment (``//host``, ``/api//x``) and no segment made only of dots (``.``, ``..``,
  ``...``), also not before a ``;`` path parameter (``..;``).
* An escape must be two hex digits and must not decode to something the raw rule refuses: dot,
  slash, backslash, ``%`` (double encoding such as ``%252e``), ``@``, ``?``, ``#``, ``:``, or a
  control character. Escaped bytes ≥ 0x80 must form strict UTF-8 (overlong forms such as
  ``%c0%ae`` are refused), and no decoded character may fold (NFKC) into one of those either:
  fullwidth ``．``/``／``, the one-dot leader ``․`` and friends.
* The result must sit under ``base_prefix`` (``/api``): exactly ``/api/…``, case-sensitive.

**Reaction emoji** (discord-api.md §6.3). The segment right after ``reactions`` names an emoji,
and Discord's two forms pass there and nowhere else:

* a custom emoji as ``name:id`` (the ``:`` raw or as ``%3A``): a name of letters, digits and
  ``_`` and a numeric id, nothing more, so ``:`` cannot start a scheme or a port;
* a Unicode emoji percent-encoded as UTF-8, including what real emoji are made of beyond single
  code points: the zero-width joiner (U+200D, family and profession sequences), variation
  selectors, tag characters (U+E0020–U+E007F, subdivision flags) and the keycap ``#`` (``#``
  followed by U+FE0F and U+20E3). Every other rule still holds there: no dot, slash, backslash,
  ``%``, ``@``, ``?`` or ``:`` once decoded or folded, no other control character.

Messages never repeat the path: it may carry a webhook token.
"""

from __future__ import annotations

import functools
import re
import unicodedata

from tokenward.errors import PathRejected

MAX_PATH_LENGTH = 2048

_RAW_ALLOWED = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=/%@"
)
_HEX = frozenset("0123456789abcdefABCDEF")
# Characters that must not appear once escapes are decoded (or Unicode is folded).
_FORBIDDEN_DECODED = frozenset("./\\%@?#:")
_ESCAPE_RUN = re.compile(r"(?:%[0-9A-Fa-f]{2})+")
_CUSTOM_EMOJI = re.compile(r"([A-Za-z0-9_]{1,32})(?::|%3[Aa])([0-9]{1,20})")
EMOJI_AFTER = "reactions"
_ZWJ = "\u200d"
_KEYCAP = "\u20e3"


def _is_keycap(text: str, index: int) -> bool:
    """``text[index]`` starts a keycap: it is followed by U+20E3, or by U+FE0F and U+20E3."""
    after = text[index + 1 : index + 3]
    return after == "\ufe0f" + _KEYCAP or after[:1] == _KEYCAP


def _emoji_part(char: str) -> bool:
    """Code points that are control-like by category but make up real emoji sequences."""
    return char == _ZWJ or 0xE0020 <= ord(char) <= 0xE007F


def _reject(reason: str) -> PathRejected:
    return PathRejected(f"path rejected: {reason}", details={"field": "path", "reason": reason})


def _is_control(char: str) -> bool:
    return (
        ord(char) < 0x20
        or 0x7F <= ord(char) <= 0x9F
        or unicodedata.category(char) in {"Cc", "Cf", "Zl", "Zp"}
    )


def _check_decoded(text: str, *, emoji: bool = False) -> None:
    for index, char in enumerate(text):
        if emoji and char == "#" and _is_keycap(text, index):
            continue  # the keycap "#️⃣": '#', U+FE0F, U+20E3
        if char in _FORBIDDEN_DECODED:
            raise _reject(
                "an escape decodes to a character that is not allowed (dot, slash, %, @, ?, #, :)"
            )
        if emoji and _emoji_part(char):
            continue
        if _is_control(char):
            raise _reject("an escape decodes to a control character")
        folded = unicodedata.normalize("NFKC", char)
        if any(c in _FORBIDDEN_DECODED or c in "\\" for c in folded) or any(
            _is_control(c) for c in folded
        ):
            raise _reject(
                "an escape decodes to a character that folds into a dot, slash or similar"
            )


def _check_escapes(segment: str, *, emoji: bool = False) -> str:
    """Validate the escapes in ``segment`` (``emoji``: a reaction's emoji, see the module doc);
    return it with upper-case hex digits."""
    index = segment.find("%")
    while index != -1:
        pair = segment[index + 1 : index + 3]
        if len(pair) != 2 or not (pair[0] in _HEX and pair[1] in _HEX):
            raise _reject("a '%' is not followed by two hex digits")
        index = segment.find("%", index + 3)
    for run in _ESCAPE_RUN.findall(segment):
        raw = bytes.fromhex(run.replace("%", ""))
        try:
            decoded = raw.decode("utf-8", errors="strict")
        except UnicodeDecodeError as exc:
            raise _reject("an escape sequence is not valid UTF-8") from exc
        _check_decoded(decoded, emoji=emoji)
    return _ESCAPE_RUN.sub(lambda m: m.group(0).upper(), segment)


def _custom_emoji(segment: str) -> str | None:
    """``name:id`` (``:`` raw or escaped), sent as ``name%3Aid`` as discord.py sends it; None
    when the segment is not one."""
    found = _CUSTOM_EMOJI.fullmatch(segment)
    return None if found is None else f"{found.group(1)}%3A{found.group(2)}"


@functools.lru_cache(maxsize=4096)
def safe_path(path: str, base_prefix: str = "/api") -> str:
    """``path`` normalised if it stays under ``base_prefix``; PathRejected otherwise.

    Pure, so accepted paths are memoised (a proxy sees the same few routes again and again);
    a rejection raises and is never cached."""
    if not isinstance(path, str):
        raise _reject("not a string")
    if not path:
        raise _reject("empty")
    if len(path) > MAX_PATH_LENGTH:
        raise _reject(f"longer than {MAX_PATH_LENGTH} characters")
    for char in path:
        if char in _RAW_ALLOWED:
            continue
        if char == "\\":
            raise _reject("contains a backslash")
        if char == ":":
            continue  # allowed only in a custom emoji's name:id, checked per segment below
        if char in "?#":
            raise _reject("contains '?' or '#' (pass query parameters separately)")
        if _is_control(char):
            raise _reject("contains a control character")
        if ord(char) > 0x7F:
            raise _reject("contains a non-ASCII character (percent-encode it)")
        raise _reject("contains a character that must be percent-encoded")
    if path.startswith("//"):
        raise _reject("starts with '//' (a network-path reference names another host)")
    if not path.startswith("/"):
        path = "/" + path
    segments = path[1:].split("/")
    normalised: list[str] = []
    for position, segment in enumerate(segments):
        if segment == "":
            if position == len(segments) - 1 and position > 0:
                normalised.append(segment)  # one trailing slash
                continue
            raise _reject("contains an empty segment ('//')")
        original = segment == "@original" and position > 0 and segments[position - 1] == "messages"
        if "@" in segment and segment != "@me" and not original:
            raise _reject("contains '@' outside the segments '@me' and 'messages/@original'")
        emoji = position > 0 and segments[position - 1] == EMOJI_AFTER
        if emoji and (custom := _custom_emoji(segment)) is not None:
            normalised.append(custom)
            continue
        if ":" in segment:
            raise _reject(
                "contains ':' (an absolute URL or scheme is not allowed; only a reaction's "
                "custom emoji is written name:id)"
            )
        bare = segment.split(";", 1)[0]
        if bare.strip(".") == "":
            raise _reject("contains a dot segment ('.' or '..')")
        normalised.append(_check_escapes(segment, emoji=emoji))
    result = "/" + "/".join(normalised)
    prefix = "/" + base_prefix.strip("/")
    if not result.startswith(prefix + "/") or result == prefix + "/":
        raise _reject(f"not under {prefix}/")
    return result
