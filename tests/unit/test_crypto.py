"""AES-256-GCM envelopes, key ids, associated data, env parsing and the key file."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from tokenward.errors import ConfigError, CryptoError
from tokenward.vault.crypto import (
    KEY_FILE_NAME,
    Keyring,
    aad,
    add_key_to_file,
    ensure_key_file,
    envelope_kid,
    generate_key,
    load_keyring,
    parse_env_keys,
    retire_key_from_file,
)

SECRET = "mfa.super-secret-discord-token-value"


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


@pytest.fixture
def ring() -> Keyring:
    return Keyring.from_keys([("k1", generate_key())])


def test_round_trip_and_envelope_shape(ring: Keyring) -> None:
    binding = aad("connected_accounts", "access_token_enc", "01ABC")
    sealed = ring.encrypt(SECRET, binding)
    assert sealed.startswith("tw1.k1.")
    assert SECRET not in sealed
    assert envelope_kid(sealed) == "k1"
    assert ring.decrypt(sealed, binding) == SECRET
    # A fresh nonce every time: the same plaintext never gives the same envelope.
    assert ring.encrypt(SECRET, binding) != sealed


def test_unicode_and_empty_plaintext(ring: Keyring) -> None:
    for text in ("", "héllo ✓ 🔑"):
        assert ring.decrypt(ring.encrypt(text, "x"), "x") == text


@pytest.mark.parametrize(
    "other",
    [
        aad("connected_accounts", "access_token_enc", "01ABD"),  # another row
        aad("connected_accounts", "refresh_token_enc", "01ABC"),  # another column
        aad("connections", "access_token_enc", "01ABC"),  # another table
    ],
)
def test_wrong_associated_data_fails(ring: Keyring, other: str) -> None:
    sealed = ring.encrypt(SECRET, aad("connected_accounts", "access_token_enc", "01ABC"))
    with pytest.raises(CryptoError) as info:
        ring.decrypt(sealed, other)
    assert info.value.code == "DECRYPTION_FAILED"
    assert SECRET not in str(info.value)


def test_tampered_ciphertext_fails(ring: Keyring) -> None:
    sealed = ring.encrypt(SECRET, "a")
    prefix, kid, body = sealed.split(".")
    raw = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    raw[-1] ^= 0x01
    forged = f"{prefix}.{kid}.{base64.urlsafe_b64encode(bytes(raw)).rstrip(b'=').decode()}"
    with pytest.raises(CryptoError, match="failed authentication"):
        ring.decrypt(forged, "a")
    with pytest.raises(CryptoError, match="truncated"):
        ring.decrypt(f"{prefix}.{kid}.AAAA", "a")
    with pytest.raises(CryptoError, match="not a tokenward ciphertext"):
        ring.decrypt("plaintext-token", "a")


def test_unknown_kid_fails_and_other_key_with_same_kid_fails(ring: Keyring) -> None:
    sealed = ring.encrypt(SECRET, "a")
    stranger = Keyring.from_keys([("k2", generate_key())])
    with pytest.raises(CryptoError, match="'k1', which is not configured"):
        stranger.decrypt(sealed, "a")
    impostor = Keyring.from_keys([("k1", generate_key())])
    with pytest.raises(CryptoError):
        impostor.decrypt(sealed, "a")


def test_old_keys_still_decrypt_first_key_encrypts() -> None:
    old, new = generate_key(), generate_key()
    before = Keyring.from_keys([("old", old)])
    sealed = before.encrypt(SECRET, "a")
    after = Keyring.from_env_value(f"new:{b64(new)},old:{b64(old)}")
    assert after.active_kid == "new"
    assert after.kids == ("new", "old")
    assert after.decrypt(sealed, "a") == SECRET
    assert envelope_kid(after.encrypt(SECRET, "a")) == "new"
    assert after.is_current(after.encrypt(SECRET, "a"))
    assert not after.is_current(sealed)


def test_env_parsing_accepts_urlsafe_and_unpadded_base64() -> None:
    key = generate_key()
    urlsafe = base64.urlsafe_b64encode(key).rstrip(b"=").decode()
    keys = parse_env_keys(f" a:{b64(key)} , b:{urlsafe} ")
    assert keys == [("a", key), ("b", key)]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "holds no keys"),
        ("k1", "entry 1 must look like kid:base64key"),
        (f"k1:{b64(b'x' * 32)},,k2:{b64(b'y' * 32)}", "entry 2 is empty"),
        (f"k1:{b64(b'short')}", "'k1' decodes to 5 bytes; AES-256 needs exactly 32"),
        ("k1:!!!not-base64!!!", "'k1' is not valid base64"),
        (f"k1:{b64(b'x' * 32)},k1:{b64(b'y' * 32)}", "'k1' appears more than once"),
        (f"bad.kid:{b64(b'x' * 32)}", "key id 'bad.kid' is invalid"),
        (f":{b64(b'x' * 32)}", "entry 1 must look like kid:base64key"),
    ],
)
def test_env_parsing_errors_name_the_entry_not_the_key(value: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_env_keys(value)
    assert message in info.value.message
    assert "TOKENWARD_ENCRYPTION_KEYS" in info.value.message
    for part in value.split(","):
        material = part.partition(":")[2].strip()
        if len(material) > 4:
            assert material not in info.value.message
            assert material not in json.dumps(info.value.details)


def test_a_missing_key_file_is_never_generated_by_loading(tmp_path: Path) -> None:
    """Only the database check (vault.keys.prepare_keys) may create the key file; until then the
    keyring is pending and refuses to seal or open anything."""
    data_dir = tmp_path / "data"
    pending = load_keyring(None, data_dir)
    path = data_dir / KEY_FILE_NAME
    assert not path.exists()
    assert not pending.loaded
    assert pending.kids == ()
    for attempt in (
        lambda: pending.encrypt(SECRET, "a"),
        lambda: pending.decrypt("tw1.k1.AAAA", "a"),
        lambda: pending.active_kid,
    ):
        with pytest.raises(ConfigError) as info:
            attempt()
        assert info.value.code == "KEYS_NOT_LOADED"
        assert str(path) in info.value.message
    # Once the file exists (created by another process, say), the pending keyring loads it.
    assert ensure_key_file(path)
    assert pending.loaded
    assert pending.decrypt(pending.encrypt(SECRET, "a"), "a") == SECRET


def test_key_file_created_once_with_mode_0600_and_reused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    path = data_dir / KEY_FILE_NAME
    assert ensure_key_file(path)
    assert not ensure_key_file(path)
    first = load_keyring(None, data_dir)
    assert path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    content = path.read_bytes()
    sealed = first.encrypt(SECRET, "a")
    second = load_keyring(None, data_dir)
    assert path.read_bytes() == content, "the key file must not be regenerated"
    assert second.active_kid == first.active_kid
    assert second.decrypt(sealed, "a") == SECRET
    assert not list(data_dir.glob(".*.tmp")), "no temporary files left behind"


def test_env_keys_win_over_the_key_file(tmp_path: Path) -> None:
    key = generate_key()
    ring = load_keyring(f"envkey:{b64(key)}", tmp_path)
    assert ring.active_kid == "envkey"
    assert not (tmp_path / KEY_FILE_NAME).exists()


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE_NAME
    ensure_key_file(path)
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="readable by other users") as info:
        load_keyring(None, tmp_path)
    assert "chmod 600" in info.value.message


def test_corrupt_key_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE_NAME
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b'{"keys": [{"kid": "a", "key": "AAAA"}]}')
    os.close(fd)
    with pytest.raises(ConfigError, match="'a' decodes to 3 bytes"):
        load_keyring(None, tmp_path)


def test_key_file_keyring_follows_a_rotation_without_restart(tmp_path: Path) -> None:
    """A server's keyring picks up the key that ``keys rotate`` adds to the file."""
    path = tmp_path / KEY_FILE_NAME
    ensure_key_file(path)
    server = load_keyring(None, tmp_path)
    old_kid = server.active_kid
    old_value = server.encrypt(SECRET, "a")
    new_kid = add_key_to_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    rotator = Keyring.from_key_file(path)
    assert rotator.kids == (new_kid, old_kid)
    fresh = rotator.encrypt(SECRET, "b")
    # The running keyring can read the new key's values and now seals under it.
    assert server.decrypt(fresh, "b") == SECRET
    assert envelope_kid(server.encrypt(SECRET, "c")) == new_kid
    assert rotator.decrypt(old_value, "a") == SECRET


def test_retire_removes_an_old_key_but_never_the_active_one(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE_NAME
    ensure_key_file(path)
    server = load_keyring(None, tmp_path)
    old_kid = server.active_kid
    new_kid = add_key_to_file(path)
    assert server.kids == (new_kid, old_kid)
    with pytest.raises(ConfigError, match="is the active key") as info:
        retire_key_from_file(path, new_kid)
    assert info.value.code == "KEY_ACTIVE"
    with pytest.raises(ConfigError, match="has no key 'nope'"):
        retire_key_from_file(path, "nope")

    assert retire_key_from_file(path, old_kid) == [new_kid]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert server.kids == (new_kid,)  # a running keyring follows the file
    assert [e["kid"] for e in json.loads(path.read_text())["keys"]] == [new_kid]
    assert json.loads(path.read_text())["keys"][0]["created_at"]


def test_repr_never_shows_key_material() -> None:
    key = generate_key()
    ring = Keyring.from_keys([("k1", key)])
    assert b64(key) not in repr(ring)
    assert "k1" in repr(ring)
