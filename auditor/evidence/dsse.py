"""DSSE envelopes: sign exact bytes with the payload type bound in (controls.md §3.1).

Spec: https://github.com/secure-systems-lab/dsse/blob/master/protocol.md. The signature is over
``PAE(payloadType, payload)``, never over a re-serialised object, so the verifier checks the very
bytes that were written to ``manifest.json``.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from auditor.evidence.layout import load_json

__all__ = ["MANIFEST_PAYLOAD_TYPE", "Envelope", "EnvelopeFormatError", "pae"]

#: The payload type of manifest signatures before manifest version 3, which signs an in-toto
#: Statement instead (``auditor.evidence.intoto``); still read by the verifier.
MANIFEST_PAYLOAD_TYPE = "application/vnd.certcentral-auditor.manifest+json; version=1"


class EnvelopeFormatError(ValueError):
    """``signature.json`` is not a DSSE envelope this tool can read."""


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: ``DSSEv1 SP LEN(type) SP type SP LEN(body) SP body``.

    Lengths are ASCII decimal byte counts, so neither part can be shifted into the other.
    """
    type_bytes = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(type_bytes), type_bytes, len(payload), payload)


@dataclass(frozen=True, slots=True)
class Envelope:
    """A DSSE envelope with exactly one Ed25519 signature."""

    payload_type: str
    payload: bytes
    keyid: str
    signature: bytes

    @classmethod
    def sign(cls, payload: bytes, *, payload_type: str, key: Ed25519PrivateKey, keyid: str) -> Envelope:
        return cls(payload_type, payload, keyid, key.sign(pae(payload_type, payload)))

    def verifies_with(self, key: Ed25519PublicKey) -> bool:
        try:
            key.verify(self.signature, pae(self.payload_type, self.payload))
        except InvalidSignature:
            return False
        return True

    @property
    def signature_b64(self) -> str:
        return base64.b64encode(self.signature).decode("ascii")

    def to_json(self) -> bytes:
        document = {
            "payload": base64.b64encode(self.payload).decode("ascii"),
            "payloadType": self.payload_type,
            "signatures": [{"keyid": self.keyid, "sig": self.signature_b64}],
        }
        return (json.dumps(document, sort_keys=True, indent=2) + "\n").encode("ascii")

    @classmethod
    def from_json(cls, data: bytes) -> Envelope:
        """Parse ``signature.json``; EnvelopeFormatError says what is wrong with it."""
        try:
            document = load_json(data)  # depth-checked: a deeply nested file is a reason, not a crash
        except ValueError as exc:
            raise EnvelopeFormatError(str(exc)) from exc
        if not isinstance(document, dict):
            raise EnvelopeFormatError("not a JSON object")
        payload_type = document.get("payloadType")
        payload = document.get("payload")
        signatures = document.get("signatures")
        if not isinstance(payload_type, str) or not isinstance(payload, str):
            raise EnvelopeFormatError("payloadType or payload missing")
        if not isinstance(signatures, list) or len(signatures) != 1 or not isinstance(signatures[0], dict):
            raise EnvelopeFormatError("expected exactly one signature")
        keyid = signatures[0].get("keyid")
        sig = signatures[0].get("sig")
        if not isinstance(keyid, str) or not isinstance(sig, str):
            raise EnvelopeFormatError("signature without keyid or sig")
        return cls(payload_type, _b64(payload, "payload"), keyid, _b64(sig, "sig"))


def _b64(text: str, what: str) -> bytes:
    # DSSE allows standard or URL-safe base64; we write standard and accept both.
    try:
        return base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EnvelopeFormatError(f"{what} is not base64") from exc
