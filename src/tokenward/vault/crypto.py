"""AES-256-GCM for secret columns, with key ids and associated data.

Every secret value is stored as a self-describing envelope::

    tw1.{kid}.{base64url(nonce || ciphertext_and_tag)}

``kid`` names the key that sealed it, so several keys can be live at once (during and after a
rotation). The associated data, built by :func:`aad`, binds the value to its table, column and
row id: GCM authenticates it, so a ciphertext copied to another row or column does not decrypt.

Keys come from ``TOKENWARD_ENCRYPTION_KEYS`` (``kid:base64key,kid2:base64key``, the first one
encrypts) or, where that is unset, from ``{data_dir}/encryption-keys.json`` (mode 0600). A key-file
keyring notices when the file changes (``tokenward keys rotate`` writes a new active key into it)
so a running server starts encrypting under the new key and can read values sealed with it,
without a restart.

The key file is generated only once the database is known to hold no ciphertext
(:mod:`tokenward.vault.keys` decides): a missing key file in front of an encrypted database is an
operator's mistake to report, never a reason to mint a key that could not open anything. Until
then :func:`load_keyring` returns a *pending* keyring (no keys; it loads the file when the file
appears) and every attempt to seal or open a value says that key material is not loaded.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import secrets
import stat
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tokenward.errors import ConfigError, CryptoError

ENVELOPE_PREFIX = "tw1"
KEY_FILE_NAME = "encryption-keys.json"
KEY_BYTES = 32
NONCE_BYTES = 12
_KID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def aad(table: str, column: str, row_id: str | int) -> str:
    """Associated data that binds a value to one column of one row."""
    return f"tokenward/v1|{table}|{column}|{row_id}"


def generate_key() -> bytes:
    """A fresh random 256-bit key."""
    return secrets.token_bytes(KEY_BYTES)


def new_kid(now: float | None = None) -> str:
    """A readable, unique key id: UTC creation time plus a random suffix."""
    when = datetime.fromtimestamp(now, tz=UTC) if now is not None else datetime.now(tz=UTC)
    return f"k{when:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


def envelope_kid(envelope: str) -> str:
    """The key id an envelope names (no decryption)."""
    parts = envelope.split(".")
    if len(parts) != 3 or parts[0] != ENVELOPE_PREFIX:
        raise CryptoError("stored value is not a tokenward ciphertext envelope")
    return parts[1]


def _b64decode(text: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    if "-" in text or "_" in text:
        return base64.urlsafe_b64decode(padded.encode("ascii"))
    return base64.b64decode(padded.encode("ascii"), validate=True)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _validate_key(kid: str, raw: str, where: str) -> bytes:
    if not _KID_RE.match(kid):
        raise ConfigError(
            f"{where}: key id {kid!r} is invalid (use 1-64 characters of A-Z a-z 0-9 _ -)",
            details={"field": where, "kid": kid},
        )
    try:
        key = _b64decode(raw.strip())
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise ConfigError(
            f"{where}: key {kid!r} is not valid base64",
            details={"field": where, "kid": kid},
        ) from None
    if len(key) != KEY_BYTES:
        raise ConfigError(
            f"{where}: key {kid!r} decodes to {len(key)} bytes; AES-256 needs exactly 32",
            details={"field": where, "kid": kid},
        )
    return key


def parse_env_keys(value: str) -> list[tuple[str, bytes]]:
    """Parse ``kid:base64key,kid2:base64key``; errors name the entry, never the key material."""
    where = "TOKENWARD_ENCRYPTION_KEYS"
    entries = [part.strip() for part in value.split(",")]
    if not any(entries):
        raise ConfigError(f"{where} is set but holds no keys", details={"field": where})
    keys: list[tuple[str, bytes]] = []
    seen: set[str] = set()
    for position, entry in enumerate(entries, start=1):
        if not entry:
            raise ConfigError(
                f"{where}: entry {position} is empty", details={"field": where, "entry": position}
            )
        kid, sep, raw = entry.partition(":")
        kid = kid.strip()
        if not sep or not kid or not raw.strip():
            raise ConfigError(
                f"{where}: entry {position} must look like kid:base64key",
                details={"field": where, "entry": position},
            )
        if kid in seen:
            raise ConfigError(
                f"{where}: key id {kid!r} appears more than once",
                details={"field": where, "kid": kid},
            )
        seen.add(kid)
        keys.append((kid, _validate_key(kid, raw, where)))
    return keys


@dataclass(frozen=True)
class _FileStamp:
    mtime_ns: int
    size: int
    inode: int


class Keyring:
    """A set of AES-256-GCM keys by key id; the active (first) one encrypts.

    Build one with :meth:`from_keys`, :meth:`from_env_value` or :func:`load_keyring`.
    """

    def __init__(self, keys: Iterable[tuple[str, bytes]], *, key_file: Path | None = None) -> None:
        self._key_file = key_file
        self._stamp: _FileStamp | None = None
        self._lock = threading.Lock()
        self._ciphers: dict[str, AESGCM] = {}
        self._active: str | None = None
        initial = list(keys)
        if initial or key_file is None:
            self._install(initial)

    def _install(self, keys: list[tuple[str, bytes]]) -> None:
        if not keys:
            raise ConfigError("a keyring needs at least one key")
        ciphers: dict[str, AESGCM] = {}
        for kid, key in keys:
            if not _KID_RE.match(kid):
                raise ConfigError(f"key id {kid!r} is invalid", details={"kid": kid})
            if kid in ciphers:
                raise ConfigError(f"key id {kid!r} appears more than once", details={"kid": kid})
            if len(key) != KEY_BYTES:
                raise ConfigError(f"key {kid!r} is not 32 bytes", details={"kid": kid})
            ciphers[kid] = AESGCM(key)
        self._ciphers = ciphers
        self._active = keys[0][0]

    @classmethod
    def from_keys(cls, keys: Iterable[tuple[str, bytes]]) -> Keyring:
        return cls(keys)

    @classmethod
    def from_env_value(cls, value: str) -> Keyring:
        return cls(parse_env_keys(value))

    @classmethod
    def from_key_file(cls, path: Path) -> Keyring:
        keyring = cls(read_key_file(path), key_file=path)
        keyring._stamp = _stamp(path)
        return keyring

    @classmethod
    def pending(cls, path: Path) -> Keyring:
        """A keyring for a key file that does not exist yet; it loads the file once it appears."""
        return cls((), key_file=path)

    @property
    def loaded(self) -> bool:
        """Whether any key is available (a pending key-file keyring has none until the file
        exists)."""
        self._maybe_reload()
        return self._active is not None

    def _not_loaded(self) -> ConfigError:
        where = str(self._key_file) if self._key_file is not None else "the keyring"
        return ConfigError(
            f"encryption key material is not loaded: {where} does not exist yet "
            "(it is created once the database is reachable and known to hold no encrypted data)",
            code="KEYS_NOT_LOADED",
            details={"path": where},
        )

    @property
    def active_kid(self) -> str:
        self._maybe_reload()
        if self._active is None:
            raise self._not_loaded()
        return self._active

    @property
    def kids(self) -> tuple[str, ...]:
        """Every known key id, active first (empty while a key file is pending)."""
        self._maybe_reload()
        return tuple(self._ciphers)

    @property
    def key_file(self) -> Path | None:
        return self._key_file

    def _maybe_reload(self, *, force: bool = False) -> None:
        """Re-read the key file if it changed since it was loaded (key-file keyrings only)."""
        path = self._key_file
        if path is None:
            return
        try:
            current = _stamp(path)
        except OSError:
            return
        if not force and current == self._stamp:
            return
        with self._lock:
            if not force and current == self._stamp:
                return
            self._install(read_key_file(path))
            self._stamp = current

    def encrypt(self, plaintext: str, aad: str) -> str:
        """Seal ``plaintext`` under the active key, bound to ``aad``."""
        self._maybe_reload()
        kid = self._active
        if kid is None:
            raise self._not_loaded()
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._ciphers[kid].encrypt(nonce, plaintext.encode("utf-8"), aad.encode("utf-8"))
        return f"{ENVELOPE_PREFIX}.{kid}.{_b64url(nonce + sealed)}"

    def decrypt(self, envelope: str, aad: str) -> str:
        """Open an envelope; :class:`CryptoError` on tampering, wrong binding or unknown key."""
        parts = envelope.split(".")
        if len(parts) != 3 or parts[0] != ENVELOPE_PREFIX:
            raise CryptoError("stored value is not a tokenward ciphertext envelope")
        kid, body = parts[1], parts[2]
        cipher = self._ciphers.get(kid)
        if cipher is None:
            self._maybe_reload()
            cipher = self._ciphers.get(kid)
        if cipher is None and self._active is None:
            raise self._not_loaded()
        if cipher is None:
            raise CryptoError(
                f"stored value was encrypted with key {kid!r}, which is not configured",
                details={"kid": kid},
            )
        try:
            raw = base64.urlsafe_b64decode((body + "=" * (-len(body) % 4)).encode("ascii"))
        except (binascii.Error, ValueError, UnicodeEncodeError):
            raise CryptoError("stored ciphertext is malformed", details={"kid": kid}) from None
        if len(raw) < NONCE_BYTES + 16:
            raise CryptoError("stored ciphertext is truncated", details={"kid": kid})
        try:
            plain = cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad.encode("utf-8"))
        except InvalidTag:
            raise CryptoError(
                "stored value failed authentication (tampered, or copied from another row)",
                details={"kid": kid},
            ) from None
        return plain.decode("utf-8")

    def is_current(self, envelope: str) -> bool:
        """Whether an envelope is sealed under the active key."""
        return envelope.startswith(f"{ENVELOPE_PREFIX}.{self.active_kid}.")

    def __repr__(self) -> str:
        source = f"file={str(self._key_file)!r}" if self._key_file else "env"
        if self._active is None:
            return f"Keyring(pending, {source})"
        return f"Keyring(active={self._active!r}, kids={list(self._ciphers)!r}, {source})"


def _stamp(path: Path) -> _FileStamp:
    st = path.stat()
    return _FileStamp(st.st_mtime_ns, st.st_size, st.st_ino)


# ---------------------------------------------------------------------------------------------
# The key file


def _check_permissions(path: Path) -> None:
    if os.name != "posix":
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ConfigError(
            f"key file {path} is readable by other users (mode {mode:o}); "
            f"run `chmod 600 {path}` and try again",
            details={"path": str(path), "mode": f"{mode:o}"},
        )


def read_key_file(path: Path) -> list[tuple[str, bytes]]:
    """The keys in a key file, active first."""
    _check_permissions(path)
    where = f"key file {path}"
    try:
        document: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"{where} cannot be read as JSON ({type(exc).__name__})", details={"path": str(path)}
        ) from None
    entries = document.get("keys") if isinstance(document, Mapping) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{where} has no 'keys' list", details={"path": str(path)})
    keys: list[tuple[str, bytes]] = []
    seen: set[str] = set()
    for position, entry in enumerate(entries, start=1):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("kid"), str):
            raise ConfigError(
                f"{where}: entry {position} needs a 'kid' and a 'key'",
                details={"path": str(path), "entry": position},
            )
        kid = str(entry["kid"])
        raw = entry.get("key")
        if not isinstance(raw, str):
            raise ConfigError(
                f"{where}: key {kid!r} has no 'key' string",
                details={"path": str(path), "kid": kid},
            )
        if kid in seen:
            raise ConfigError(
                f"{where}: key id {kid!r} appears more than once",
                details={"path": str(path), "kid": kid},
            )
        seen.add(kid)
        keys.append((kid, _validate_key(kid, raw, where)))
    return keys


def _key_document(keys: list[tuple[str, bytes]], created: Mapping[str, str]) -> bytes:
    doc = {
        "format": "tokenward-keys/1",
        "note": "The first key encrypts; the others still decrypt. Back this file up; "
        "without it the vault cannot be read.",
        "keys": [
            {
                "kid": kid,
                "key": base64.b64encode(key).decode("ascii"),
                "created_at": created.get(kid, ""),
            }
            for kid, key in keys
        ],
    }
    return (json.dumps(doc, indent=2) + "\n").encode("utf-8")


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _now_iso() -> str:
    return datetime.now(tz=UTC).isoformat(timespec="seconds")


def ensure_key_file(path: Path) -> bool:
    """Create the key file with one fresh key unless it exists. Returns whether it was created.

    The file is written under a temporary name with mode 0600 and then hard-linked into place,
    which fails if another process won the race; the loser simply uses the winner's file.
    """
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    kid = new_kid()
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    _write_private(tmp, _key_document([(kid, generate_key())], {kid: _now_iso()}))
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    return True


def add_key_to_file(path: Path, *, now: float | None = None) -> str:
    """Put a new key at the head of the key file (so it becomes active); return its id."""
    keys = read_key_file(path)
    created = key_file_created(path)
    kid = new_kid(now)
    while kid in created:
        kid = new_kid(now)
    created[kid] = _now_iso()
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    _write_private(tmp, _key_document([(kid, generate_key()), *keys], created))
    os.replace(tmp, path)
    return kid


def retire_key_from_file(path: Path, kid: str) -> list[str]:
    """Remove ``kid`` from the key file (never the active, first key); return the kids left.

    Callers check first that no stored value still uses the key
    (:func:`tokenward.vault.keys.key_usage`).
    """
    keys = read_key_file(path)
    kids = [k for k, _ in keys]
    if kid not in kids:
        raise ConfigError(
            f"key file {path} has no key {kid!r} (it holds {', '.join(map(repr, kids))})",
            code="KEY_NOT_FOUND",
            details={"path": str(path), "kid": kid, "kids": kids},
        )
    if kids[0] == kid:
        raise ConfigError(
            f"{kid!r} is the active key; run `tokenward keys rotate` to make a new key active, "
            "then retire this one",
            code="KEY_ACTIVE",
            details={"kid": kid},
        )
    created = key_file_created(path)
    remaining = [(k, key) for k, key in keys if k != kid]
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    _write_private(tmp, _key_document(remaining, created))
    os.replace(tmp, path)
    return [k for k, _ in remaining]


def key_file_created(path: Path) -> dict[str, str]:
    """When each key of the key file was created (as written in the file; may be empty)."""
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))["keys"]
        return {str(e["kid"]): str(e.get("created_at", "")) for e in entries}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def key_file_path(data_dir: Path) -> Path:
    return data_dir / KEY_FILE_NAME


def load_keyring(encryption_keys: str | None, data_dir: Path) -> Keyring:
    """The keyring settings describe: the env value if set, else the key file.

    A missing key file is *not* created here: the keyring is pending until
    :func:`tokenward.vault.keys.prepare_keys` has checked that the database holds no ciphertext
    and created the file (or refused).
    """
    if encryption_keys is not None and encryption_keys.strip():
        return Keyring.from_env_value(encryption_keys)
    path = key_file_path(data_dir)
    if not path.exists():
        return Keyring.pending(path)
    return Keyring.from_key_file(path)


def derive_key(encryption_key: bytes, info: bytes) -> bytes:
    """A 32-byte key for one purpose (``info``), derived with HKDF-SHA256 from an encryption key."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(encryption_key)


class DerivedKeys:
    """Purpose-bound keys (e.g. HMAC signing keys) derived from the vault's encryption keys, by
    key id, so that replicas sharing the encryption keys share them too and rotation carries over.

    The raw keys are read from where the keyring reads them (``TOKENWARD_ENCRYPTION_KEYS`` or the
    key file); the keyring says which key is active and notices key-file changes. Each purpose
    has its own ``info`` label, so a key derived for one purpose never verifies another's data.
    """

    def __init__(
        self, encryption_keys: str | None, keyring: Keyring, *, info: bytes, purpose: str
    ) -> None:
        self._encryption_keys = encryption_keys
        self._keyring = keyring
        self._info = info
        self._purpose = purpose
        self._keys: dict[str, bytes] = {}
        if keyring.loaded:  # a pending key file is read once it exists (see active / get)
            self._load()

    def _raw_keys(self) -> list[tuple[str, bytes]]:
        value = self._encryption_keys
        if value is not None and value.strip():
            return parse_env_keys(value)
        if self._keyring.key_file is not None:
            return read_key_file(self._keyring.key_file)
        raise ConfigError(f"no encryption keys to derive the {self._purpose} key from")

    def _load(self) -> None:
        self._keys = {kid: derive_key(key, self._info) for kid, key in self._raw_keys()}

    def active(self) -> tuple[str, bytes]:
        """The key id and derived key of the keyring's active key."""
        kid = self._keyring.active_kid
        if kid not in self._keys:
            self._load()
        return kid, self._keys[kid]

    def get(self, kid: str) -> bytes | None:
        """The derived key for ``kid``, or ``None`` when the keyring does not know it."""
        key = self._keys.get(kid)
        if key is None and kid in self._keyring.kids:  # rotated in since we loaded
            self._load()
            key = self._keys.get(kid)
        return key
