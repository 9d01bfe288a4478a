"""Sealing API keys and signing keys happens in ``credentials`` alone, with the contexts chosen there."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auditor.credentials import MasterKey, load_signing_key, signing_key_bytes
from auditor.errors import CredentialsError

KEY = MasterKey(bytes(range(32)))


def test_an_api_key_opens_only_for_the_connection_it_was_sealed_for() -> None:
    token = KEY.seal_api_key("prod", "secret-api-key")
    assert b"secret-api-key" not in token
    assert KEY.open_api_key("prod", token) == "secret-api-key"
    with pytest.raises(CredentialsError):
        KEY.open_api_key("staging", token)


def test_a_sealed_api_key_never_opens_as_a_signing_key() -> None:
    token = KEY.seal_api_key("prod", "x" * 32)  # 32 bytes, the size of a raw Ed25519 key
    with pytest.raises(CredentialsError):
        KEY.open_signing_key(token)


def test_signing_key_bytes_round_trip() -> None:
    key = Ed25519PrivateKey.generate()
    raw = signing_key_bytes(key)
    assert len(raw) == 32
    assert signing_key_bytes(load_signing_key(raw)) == raw
    assert signing_key_bytes(KEY.open_signing_key(KEY.seal_signing_key(key))) == raw
