"""Ed25519 signing keys for evidence: generation, fingerprints, (de)serialisation.

The private key is handled here only as an object: sealing, unsealing and (de)serialising it (the
only places its raw bytes exist) happen in ``auditor.credentials`` (``MasterKey.seal_signing_key``,
``open_signing_key``, ``signing_key_bytes``, ``load_signing_key``); it is never written beside the
evidence (controls.md §3.6). A key is named everywhere by its fingerprint: ``sha256:`` followed by the
64 hex digits of SHA-256 over the 32-byte raw public key, so anyone holding the PEM can compute
it (``openssl pkey -pubin -in signer.pub.pem -outform DER | tail -c 32 | sha256sum``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from auditor.credentials import SIGNING_KEY_CONTEXT, load_signing_key, signing_key_bytes
from auditor.errors import EvidenceError

__all__ = [
    "PRIVATE_KEY_CONTEXT",
    "ActiveKey",
    "SealingKey",
    "SigningKeyStore",
    "SigningKeys",
    "StoredKey",
    "active_signing_key",
    "rotate_signing_key",
]

#: Associated data bound into the sealed private key (chosen in ``auditor.credentials``; re-exported).
PRIVATE_KEY_CONTEXT = SIGNING_KEY_CONTEXT


class SigningKeys:
    """Stateless helpers for the evidence signing key; the store keeps the sealed bytes."""

    @staticmethod
    def generate() -> Ed25519PrivateKey:
        """A new Ed25519 key (the first export, or ``auditor keys rotate``)."""
        return Ed25519PrivateKey.generate()

    @staticmethod
    def fingerprint(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
        """``sha256:`` + hex SHA-256 of the raw 32-byte public key."""
        public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return "sha256:" + hashlib.sha256(raw).hexdigest()

    @staticmethod
    def private_bytes(key: Ed25519PrivateKey) -> bytes:
        """The 32 raw private bytes (tests and key import; the export path never calls it)."""
        return signing_key_bytes(key)

    @staticmethod
    def load_private(data: bytes) -> Ed25519PrivateKey:
        """A key from :meth:`private_bytes` (raw 32 bytes) or an unencrypted PKCS#8 DER/PEM."""
        return load_signing_key(data)

    @staticmethod
    def public_pem(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
        """The public key as a SubjectPublicKeyInfo PEM, to hand to auditors out of band."""
        public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
        return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode(
            "ascii"
        )

    @staticmethod
    def load_public_pem(data: bytes | str, *, source: str = "the public key") -> Ed25519PublicKey:
        """An Ed25519 public key from PEM; EvidenceError (exit 6) for anything else."""
        raw = data.encode("ascii", "replace") if isinstance(data, str) else data
        try:
            key = serialization.load_pem_public_key(raw)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise EvidenceError(
                f"{source} is not a PEM public key.",
                hint="Use the PEM printed by `auditor keys public` (it begins -----BEGIN PUBLIC KEY-----).",
            ) from exc
        if not isinstance(key, Ed25519PublicKey):
            raise EvidenceError(f"{source} is not an Ed25519 public key.")
        return key


# --- wiring with the store and the master key, kept behind small protocols -----------------


class SealingKey(Protocol):
    """What ``auditor.credentials.MasterKey`` offers: sealing and opening a signing key."""

    def seal_signing_key(self, key: Ed25519PrivateKey) -> bytes: ...

    def open_signing_key(self, token: bytes) -> Ed25519PrivateKey: ...


class StoredKey(Protocol):
    """One row of ``Store.signing_keys()`` as far as evidence needs it."""

    @property
    def fingerprint(self) -> str: ...

    @property
    def encrypted_private_key(self) -> bytes: ...

    @property
    def created_at(self) -> datetime: ...


@dataclass(frozen=True, slots=True)
class ActiveKey:
    """An unsealed signing key and the start of its key period (``valid_from`` in manifests)."""

    private_key: Ed25519PrivateKey
    fingerprint: str
    valid_from: datetime

    @property
    def public_pem(self) -> str:
        return SigningKeys.public_pem(self.private_key)

    def __repr__(self) -> str:  # never show key material
        return f"ActiveKey(fingerprint={self.fingerprint!r}, valid_from={self.valid_from.isoformat()!r})"

    @classmethod
    def unseal(cls, stored: StoredKey, master_key: SealingKey) -> ActiveKey:
        """Decrypt a stored key and check it is the key its fingerprint names."""
        key = master_key.open_signing_key(stored.encrypted_private_key)
        actual = SigningKeys.fingerprint(key)
        if actual != stored.fingerprint:
            raise EvidenceError(
                f"The stored signing key {stored.fingerprint} decrypts to a different key ({actual}).",
                hint="The key store is damaged; run `auditor keys rotate` to start a new key period.",
            )
        return cls(private_key=key, fingerprint=actual, valid_from=stored.created_at)

    @classmethod
    def create(
        cls,
        master_key: SealingKey,
        *,
        now: datetime,
        save: Callable[..., object],
        generate: Callable[[], Ed25519PrivateKey] = SigningKeys.generate,
    ) -> ActiveKey:
        """Generate a key, seal it and pass it to ``save`` (``Store.save_signing_key``).

        ``save`` is called with the store's keywords: ``fingerprint``, ``encrypted_private_key``,
        ``public_pem`` and ``created_at``.
        """
        key = generate()
        fingerprint = SigningKeys.fingerprint(key)
        save(
            fingerprint=fingerprint,
            encrypted_private_key=master_key.seal_signing_key(key),
            public_pem=SigningKeys.public_pem(key),
            created_at=now,
        )
        return cls(private_key=key, fingerprint=fingerprint, valid_from=now)


class SigningKeyStore(Protocol):
    """The signing-key methods of ``auditor.store.Store`` (kept as a protocol: no store import)."""

    def active_signing_key(self) -> StoredKey | None: ...

    def save_signing_key(
        self, *, fingerprint: str, encrypted_private_key: bytes, public_pem: str, created_at: datetime
    ) -> None: ...

    def retire_signing_key(self, fingerprint: str, *, at: datetime) -> None: ...


def active_signing_key(store: SigningKeyStore, master_key: SealingKey, *, now: datetime) -> tuple[ActiveKey, bool]:
    """The current signing key, generated and stored on first use; the flag says it was just made."""
    stored = store.active_signing_key()
    if stored is not None:
        return ActiveKey.unseal(stored, master_key), False
    return ActiveKey.create(master_key, now=now, save=store.save_signing_key), True


def rotate_signing_key(store: SigningKeyStore, master_key: SealingKey, *, now: datetime) -> ActiveKey:
    """Start a new key period: store a new key, then retire the old one (kept for old bundles).

    The new key is saved before the old one is retired, so there is never a moment without a key;
    the next manifest names the new key with ``valid_from = now`` and, in its chain section, the
    previous manifest's key, which documents the hand-over inside signed content.
    """
    previous = store.active_signing_key()
    new = ActiveKey.create(master_key, now=now, save=store.save_signing_key)
    if previous is not None:
        store.retire_signing_key(previous.fingerprint, at=now)
    return new
