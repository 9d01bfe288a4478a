"""Signed, hash-chained evidence bundles and their offline verification.

``bundle`` builds and writes a bundle, ``verify`` checks one (and its chain) against a trust root,
``layout`` reads the one ZIP layout the exporter writes (and depth-checked JSON), ``keys`` handles
the Ed25519 signing key, ``dsse`` the signature envelope, ``assemble`` renders a snapshot's views
via ``auditor.exports``, ``reperform`` records the rule inputs and compares re-derived views.
Everything a caller needs is importable from here.
"""

from auditor.evidence.assemble import ATTESTATIONS_HEADER, bundle_context, contents_from
from auditor.evidence.bundle import (
    CHECKSUMS_PATH,
    DOES_NOT_PROVE,
    IDENTITY_SOURCE_DIR,
    REQUIRED_CONTEXT_KEYS,
    RULE_INPUTS_PATH,
    Bundle,
    BundleContents,
    ChainHeadLike,
    ChainPosition,
    FileRole,
    build_bundle,
    manifest_sha256,
    new_chain_id,
    write_bundle,
)
from auditor.evidence.dsse import MANIFEST_PAYLOAD_TYPE, Envelope, pae
from auditor.evidence.keys import (
    PRIVATE_KEY_CONTEXT,
    ActiveKey,
    SigningKeys,
    SigningKeyStore,
    active_signing_key,
    rotate_signing_key,
)
from auditor.evidence.verify import (
    ChainLink,
    Problem,
    ProblemKind,
    VerificationReport,
    format_report,
    load_public_keys,
    read_verified_members,
    verify_bundle,
)

__all__ = [
    "ATTESTATIONS_HEADER",
    "CHECKSUMS_PATH",
    "DOES_NOT_PROVE",
    "IDENTITY_SOURCE_DIR",
    "MANIFEST_PAYLOAD_TYPE",
    "PRIVATE_KEY_CONTEXT",
    "REQUIRED_CONTEXT_KEYS",
    "RULE_INPUTS_PATH",
    "ActiveKey",
    "Bundle",
    "BundleContents",
    "ChainHeadLike",
    "ChainLink",
    "ChainPosition",
    "Envelope",
    "FileRole",
    "Problem",
    "ProblemKind",
    "SigningKeyStore",
    "SigningKeys",
    "VerificationReport",
    "active_signing_key",
    "build_bundle",
    "bundle_context",
    "contents_from",
    "format_report",
    "load_public_keys",
    "manifest_sha256",
    "new_chain_id",
    "pae",
    "read_verified_members",
    "rotate_signing_key",
    "verify_bundle",
    "write_bundle",
]
