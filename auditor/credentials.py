"""Protects the secrets the tool stores: the master key, AES-256-GCM sealing, key fingerprints.

CertCentral API keys (and the evidence signing keys) are stored encrypted under one master key.
The master key comes from ``AUDITOR_MASTER_KEY`` (read by the CLI and passed in) or from a key
file created on first use with mode 0600. A sealed token is::

    version (1 byte) || nonce (12 bytes) || AES-256-GCM ciphertext and tag

with ``context`` (the connection name, say) bound in as associated data, so a token copied to
another connection's row does not decrypt. Nothing here prints, and no message or ``repr``
shows key material: only :func:`fingerprint` labels, which cannot be reversed.

The master key also authenticates the database's records (:meth:`MasterKey.record_authenticator`):
one HMAC-SHA256 key per record purpose, derived with HKDF-SHA256 from the master key and a label
chosen here (:data:`RECORD_PURPOSES`), so a tag made for one table never verifies for another and
the raw key bytes never leave this module.

This is the only module that seals, unseals or serialises key material: the connection API keys
(:meth:`MasterKey.seal_api_key`), the evidence signing keys (:meth:`MasterKey.seal_signing_key`,
:func:`signing_key_bytes`, :func:`load_signing_key`) and the record keys. The associated-data
contexts are chosen here and nowhere else (:func:`api_key_context`, :data:`SIGNING_KEY_CONTEXT`).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import secrets
import stat
from pathlib import Path
from typing import NoReturn

from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from auditor.errors import CredentialsError, EvidenceError

__all__ = [
    "ENV_VAR",
    "KEY_SIZE",
    "RECORD_PURPOSES",
    "SIGNING_KEY_CONTEXT",
    "MasterKey",
    "MissingMasterKeyError",
    "RecordAuthenticator",
    "api_key_context",
    "fingerprint",
    "load_signing_key",
    "signing_key_bytes",
]

#: The environment variable the CLI reads and passes to :meth:`MasterKey.load_or_create`.
ENV_VAR = "AUDITOR_MASTER_KEY"
#: AES-256: the master key is exactly 32 bytes.
KEY_SIZE = 32

_VERSION = 1
_NONCE_SIZE = 12  # 96-bit nonces, the size GCM is specified for (NIST SP 800-38D)
_TAG_SIZE = 16
# The version byte and a fixed label are authenticated too: a token cannot be replayed as a
# different format version, and associated data from another purpose cannot collide.
_AAD_PREFIX = b"certcentral-auditor/credentials\x00"

#: The records the store authenticates, each with its own HKDF ``info`` label (one derived
#: HMAC key per purpose). Changing a label invalidates every tag made with it: add, never edit.
RECORD_PURPOSES: dict[str, bytes] = {
    "connections": b"certcentral-auditor/store-tag/v1/connections",
    "snapshots": b"certcentral-auditor/store-tag/v1/snapshots",
    "snapshot_users": b"certcentral-auditor/store-tag/v1/snapshot_users",
    "raw_pages": b"certcentral-auditor/store-tag/v1/raw_pages",
    "attestations": b"certcentral-auditor/store-tag/v1/attestations",
    "exceptions": b"certcentral-auditor/store-tag/v1/exceptions",
    "signing_keys": b"certcentral-auditor/store-tag/v1/signing_keys",
    "chain": b"certcentral-auditor/store-tag/v1/chain",
    "meta": b"certcentral-auditor/store-tag/v1/meta",
    "campaigns": b"certcentral-auditor/store-tag/v1/campaigns",
    "campaign_imports": b"certcentral-auditor/store-tag/v1/campaign_imports",
    "campaign_decisions": b"certcentral-auditor/store-tag/v1/campaign_decisions",
    "user_presence": b"certcentral-auditor/store-tag/v1/user_presence",
    "snapshot_summaries": b"certcentral-auditor/store-tag/v1/snapshot_summaries",
    "audit_log_runs": b"certcentral-auditor/store-tag/v1/audit_log_runs",
}
_HKDF_SALT = b"certcentral-auditor/record-authentication"
#: Associated data bound into a sealed evidence signing key, so a sealed API key cannot pass as one.
SIGNING_KEY_CONTEXT = "evidence-signing-key"


def api_key_context(connection: str) -> str:
    """Associated data bound into a connection's sealed API key: the token opens for that name only."""
    return f"certcentral-api-key:{connection}"


class MissingMasterKeyError(CredentialsError):
    """No master key exists although the database holds secrets sealed under one (exit 2)."""


class RecordAuthenticator:
    """HMAC-SHA256 tags for one purpose's records; holds a derived key, never the master key.

    ``repr`` shows only the purpose; it cannot be pickled (the key would travel with it).
    """

    __slots__ = ("_key", "purpose")

    def __init__(self, key: bytes, purpose: str) -> None:
        self._key = key
        #: The purpose (a key of :data:`RECORD_PURPOSES`) the derived key was made for.
        self.purpose = purpose

    def tag(self, *parts: bytes) -> bytes:
        """The 32-byte tag over ``parts`` (concatenated; callers encode them unambiguously)."""
        mac = hmac.HMAC(self._key, hashes.SHA256())
        for part in parts:
            mac.update(part)
        return mac.finalize()

    def stream(self) -> hmac.HMAC:
        """An HMAC to feed record by record (a snapshot's users), finished with ``finalize()``."""
        return hmac.HMAC(self._key, hashes.SHA256())

    def check(self, tag: object, *parts: bytes) -> bool:
        """Whether ``tag`` is this purpose's tag over ``parts`` (constant-time comparison)."""
        if not isinstance(tag, bytes | bytearray | memoryview):
            return False
        return secrets.compare_digest(self.tag(*parts), bytes(tag))

    def __repr__(self) -> str:
        return f"RecordAuthenticator(purpose={self.purpose!r})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("RecordAuthenticator cannot be pickled")


def fingerprint(secret: str | bytes) -> str:
    """A short, non-reversible label for a secret, safe to print: ``sha256:`` + 16 hex digits.

    Used to tell keys apart in messages, provenance and reports without revealing them.
    """
    data = secret.encode("utf-8", "surrogatepass") if isinstance(secret, str) else secret
    return "sha256:" + hashlib.sha256(data).hexdigest()[:16]


class MasterKey:
    """The AES-256-GCM key that seals stored secrets; its ``repr`` shows only a fingerprint."""

    __slots__ = ("_aead", "_authenticators", "_fingerprint", "_hkdf_input", "source")

    def __init__(self, key: bytes, *, source: str = "generated") -> None:
        if len(key) != KEY_SIZE:
            raise CredentialsError(f"A master key must be {KEY_SIZE} bytes long (got {len(key)}).")
        self._aead = AESGCM(key)
        self._fingerprint = fingerprint(key)
        self._hkdf_input = bytes(key)
        self._authenticators: dict[str, RecordAuthenticator] = {}
        #: Where the key came from, for messages: the variable's name or the key file's path.
        self.source = source

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def generate(cls) -> MasterKey:
        """A fresh random key (tests, and the first run before a key file exists)."""
        return cls(secrets.token_bytes(KEY_SIZE))

    @classmethod
    def load_or_create(
        cls, *, env_value: str | None, key_file: Path, sealed_secrets_exist: bool = False
    ) -> MasterKey:
        """The master key from ``AUDITOR_MASTER_KEY`` if set, else from ``key_file``.

        The key file is created on first use (mode 0600, missing parent directories 0700),
        exclusively, so two processes starting at once end up with the same key. An existing
        key file readable by group or others, not a regular file (a FIFO would block the read)
        or not 32 bytes long, is refused. When ``sealed_secrets_exist`` (the database holds
        connection or signing keys sealed under a master key), a missing key is never replaced
        by a new one: that would make every sealed secret unreadable for good.
        """
        if env_value is not None and env_value.strip():
            return cls(_decode_env_key(env_value), source=ENV_VAR)
        key_file = Path(key_file)
        key = _read_key_file(key_file)
        if key is None:
            if sealed_secrets_exist:
                raise MissingMasterKeyError(
                    f"The master key is missing: {ENV_VAR} is not set and the key file {key_file} "
                    "does not exist, but the database holds API and signing keys sealed under a "
                    "master key. No new key was created.",
                    hint=f"Restore the master key: put the original key file back at {key_file}, or set "
                    f"{ENV_VAR} to the original key (or point AUDITOR_MASTER_KEY_FILE at the key file).",
                )
            key = _create_key_file(key_file)
        return cls(key, source=str(key_file))

    # -- use ----------------------------------------------------------------------------------

    @property
    def fingerprint(self) -> str:
        """The key's printable label (see :func:`fingerprint`)."""
        return self._fingerprint

    def record_authenticator(self, purpose: str) -> RecordAuthenticator:
        """The HMAC key that tags the store's ``purpose`` records (see :data:`RECORD_PURPOSES`).

        Derived once per purpose with HKDF-SHA256 (RFC 5869) from the master key, the fixed salt
        and the purpose's label; an unknown purpose is a programming error (ValueError).
        """
        cached = self._authenticators.get(purpose)
        if cached is None:
            try:
                label = RECORD_PURPOSES[purpose]
            except KeyError:
                raise ValueError(f"no record purpose {purpose!r}; add it to RECORD_PURPOSES") from None
            derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=label).derive(
                self._hkdf_input
            )
            cached = self._authenticators[purpose] = RecordAuthenticator(derived, purpose)
        return cached

    def seal_api_key(self, connection: str, api_key: str) -> bytes:
        """Seal a connection's CertCentral API key, bound to the connection's name."""
        return self.encrypt(api_key.encode("utf-8"), context=api_key_context(connection))

    def open_api_key(self, connection: str, token: bytes) -> str:
        """The API key sealed by :meth:`seal_api_key` for ``connection`` (CredentialsError otherwise)."""
        return self.decrypt(token, context=api_key_context(connection)).decode("utf-8")

    def seal_signing_key(self, key: Ed25519PrivateKey) -> bytes:
        """Seal an Ed25519 evidence signing key; its raw bytes exist only inside this call."""
        return self.encrypt(signing_key_bytes(key), context=SIGNING_KEY_CONTEXT)

    def open_signing_key(self, token: bytes) -> Ed25519PrivateKey:
        """The signing key sealed by :meth:`seal_signing_key` (CredentialsError under another key)."""
        return load_signing_key(self.decrypt(token, context=SIGNING_KEY_CONTEXT))

    def encrypt(self, plaintext: bytes, *, context: str) -> bytes:
        """Seal ``plaintext`` so that only this key, given the same ``context``, opens it."""
        nonce = secrets.token_bytes(_NONCE_SIZE)
        header = bytes([_VERSION])
        return header + nonce + self._aead.encrypt(nonce, plaintext, _aad(header, context))

    def decrypt(self, token: bytes, *, context: str) -> bytes:
        """Open a token made by :meth:`encrypt` with the same key and ``context``.

        Raises CredentialsError (never a traceback from cryptography) when the token was made
        with another key or context, was altered, or is not a token at all.
        """
        if len(token) < 1 + _NONCE_SIZE + _TAG_SIZE or token[0] != _VERSION:
            raise CredentialsError(
                f"The stored secret ({context}) is not in a format this version understands "
                "(it may be damaged, or written by a newer version of the tool).",
                hint="Re-run `auditor connect` for the connection to store its API key again.",
            )
        header, nonce, sealed = token[:1], token[1 : 1 + _NONCE_SIZE], token[1 + _NONCE_SIZE :]
        try:
            return self._aead.decrypt(nonce, sealed, _aad(header, context))
        except InvalidTag as exc:
            raise CredentialsError(
                f"The stored key ({context}) cannot be decrypted with this master key "
                f"(from {self.source}, {self._fingerprint}); "
                f"was {ENV_VAR} or the key file changed?",
                hint=(
                    "Restore the original master key, or re-run `auditor connect` for the "
                    "connection to store its API key again under the current one."
                ),
            ) from exc

    def __repr__(self) -> str:
        return f"MasterKey(fingerprint={self._fingerprint!r}, source={self.source!r})"

    def __reduce__(self) -> NoReturn:
        # Pickling would copy the key bytes into wherever the pickle goes (logs, caches).
        raise TypeError("MasterKey cannot be pickled")


def signing_key_bytes(key: Ed25519PrivateKey) -> bytes:
    """The 32 raw private bytes of an Ed25519 key (sealing, tests and key import)."""
    return key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())


def load_signing_key(data: bytes) -> Ed25519PrivateKey:
    """An Ed25519 key from raw 32 bytes (:func:`signing_key_bytes`) or an unencrypted PKCS#8 DER/PEM.

    EvidenceError (exit 6) for anything else: the message never shows the bytes.
    """
    try:
        if len(data) == 32:
            return Ed25519PrivateKey.from_private_bytes(data)
        loader = serialization.load_pem_private_key
        if not data.lstrip().startswith(b"-----"):
            loader = serialization.load_der_private_key
        key = loader(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise EvidenceError(
            "The stored evidence signing key cannot be read (it is not an Ed25519 key).",
            hint="Run `auditor keys rotate` to start a new key period with a new key.",
        ) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise EvidenceError(
            "The stored evidence signing key is not an Ed25519 key.",
            hint="Run `auditor keys rotate` to start a new key period with a new key.",
        )
    return key


def _aad(header: bytes, context: str) -> bytes:
    return _AAD_PREFIX + header + context.encode("utf-8", "surrogatepass")


def _decode_env_key(value: str) -> bytes:
    text = value.strip()
    expected = (
        f"{ENV_VAR} must be a urlsafe-base64 encoding of {KEY_SIZE} random bytes "
        "(44 characters ending in '='). Its value is not shown."
    )
    hint = (
        'Generate one with: python -c "import base64, os; '
        'print(base64.urlsafe_b64encode(os.urandom(32)).decode())", '
        f"or unset {ENV_VAR} to use the key file."
    )
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CredentialsError(expected, hint=hint) from exc
    if len(key) != KEY_SIZE:
        raise CredentialsError(expected, hint=hint)
    return key


def _read_key_file(key_file: Path) -> bytes | None:
    """The key file's bytes after checking mode and size; None when it does not exist."""
    # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever. It has
    # no effect on a regular file, the only kind accepted below.
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(key_file, flags)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CredentialsError(
            f"The master key file {key_file} cannot be read: {exc.strerror}.",
            hint=f"Check its owner and permissions, or set {ENV_VAR} instead.",
        ) from exc
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise CredentialsError(
            f"The master key file {key_file} is not a regular file.",
            hint=f"Move it aside, or set {ENV_VAR} instead.",
        )
    with os.fdopen(fd, "rb") as stream:
        if os.name == "posix" and info.st_mode & 0o077:
            raise CredentialsError(
                f"The master key file {key_file} is readable by other users "
                f"(mode {stat.S_IMODE(info.st_mode):04o}); it is not used.",
                hint=(
                    f"Restrict it with `chmod 600 {key_file}`; if others may have copied it, "
                    "create a new key and re-run `auditor connect` for every connection."
                ),
            )
        key = stream.read(KEY_SIZE + 1)
    if len(key) != KEY_SIZE:
        raise CredentialsError(
            f"The master key file {key_file} is {info.st_size} bytes long, "
            f"not the {KEY_SIZE} bytes of a key; it may be damaged or not a key file.",
            hint=(
                "Restore it from a backup. Without the original key the stored API keys are lost: "
                "move the file aside and re-run `auditor connect` for every connection."
            ),
        )
    return key


def _create_key_file(key_file: Path) -> bytes:
    """Create ``key_file`` with a new key, or read the one another process created first."""
    key = secrets.token_bytes(KEY_SIZE)
    # Write a complete temporary file, then link it into place: link() fails if the name exists
    # (like O_EXCL), and a concurrent reader never sees a half-written key.
    temp = key_file.with_name(f".{key_file.name}.{secrets.token_hex(8)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        _make_private_dirs(key_file.parent)
        fd = os.open(temp, flags, 0o600)
        try:
            os.write(fd, key)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(temp, key_file)
        except FileExistsError:
            pass  # another process won the race: use its key
        except OSError:
            # A filesystem without hard links: fall back to an exclusive create of the name.
            _create_exclusive(key_file, key)
    except OSError as exc:
        raise CredentialsError(
            f"The master key file {key_file} cannot be created: {exc.strerror}.",
            hint=f"Check that {key_file.parent} is writable, or set {ENV_VAR} instead.",
        ) from exc
    finally:
        with contextlib.suppress(OSError):
            temp.unlink()
    stored = _read_key_file(key_file)
    if stored is None:  # removed between link and read: nothing sensible to do but say so
        raise CredentialsError(f"The master key file {key_file} disappeared while it was created.")
    return stored


def _create_exclusive(key_file: Path, key: bytes) -> None:
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    try:
        os.write(fd, key)
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_private_dirs(directory: Path) -> None:
    missing: list[Path] = []
    current = directory
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=0o700)
