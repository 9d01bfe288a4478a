"""Issue 8.3: the API key, the master key and the signing key never show; stored secrets are private.

Every command runs with ``-v`` (tracebacks on), successes and failures alike; then every byte the
tool wrote (data directory, reports, bundles unzipped), every byte it printed, the command line
of a running pull and the sandbox's request records are searched for each secret in every
encoding a careless line of code could produce.
"""

from __future__ import annotations

import base64
import os
import secrets
import stat
import traceback
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support import AuditorHome, all_written_bytes, connect_to, wait_for_requests

from auditor.client import CertCentralClient
from auditor.credentials import MasterKey
from auditor.errors import ApiError, ExitCode
from auditor.evidence.keys import PRIVATE_KEY_CONTEXT
from auditor.sandbox import Dataset, Faults, SandboxServer
from auditor.store import Store

API_KEY = "ccaud" + secrets.token_hex(20).upper()
WRONG_KEY = "wrong" + secrets.token_hex(20).upper()


def forms(secret: bytes) -> set[bytes]:
    """The secret and the encodings a leak would most likely use."""
    found = {secret, secret.hex().encode(), secret.hex().upper().encode()}
    for encoded in (base64.b64encode(secret), base64.urlsafe_b64encode(secret)):
        found |= {encoded, encoded.rstrip(b"=")}
    return {form for form in found if len(form) >= 16}


def dataset_with_key() -> Dataset:
    base = Dataset.generate(60, seed=9)
    keys = tuple({**key, "key": API_KEY} if key["label"] == "admin" else key for key in base.keys)
    return Dataset(account=base.account, containers=base.containers, users=base.users,
                   service_users=base.service_users, keys=keys, as_of=base.as_of)


def unzipped(paths: list[Path]) -> Iterator[tuple[str, bytes]]:
    for path in paths:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                yield f"{path.name}:{name}", archive.read(name)


def assert_absent(needles: dict[str, set[bytes]], haystacks: Iterator[tuple[object, bytes]]) -> int:
    searched = 0
    for where, data in haystacks:
        searched += 1
        for label, variants in needles.items():
            for variant in variants:
                assert variant not in data, f"the {label} appears in {where}"
    return searched


@pytest.mark.parametrize("master_from", ["key-file", "environment"])
def test_no_secret_appears_anywhere(master_from: str, home: AuditorHome, tmp_path: Path) -> None:
    env_master = base64.urlsafe_b64encode(os.urandom(32)).decode() if master_from == "environment" else None
    extra = {"AUDITOR_MASTER_KEY": env_master} if env_master else {}
    out = tmp_path / "out"
    out.mkdir()
    printed: list[tuple[str, bytes]] = []
    cmdlines: list[bytes] = []

    def run(*args: str, expect: int = 0, stdin: str | None = None) -> None:
        result = home.run("-v", *args, extra_env=extra, stdin=stdin)
        assert result.returncode == expect, (args, result.stderr)
        printed.append((f"stdout of {args}", result.stdout.encode()))
        printed.append((f"stderr of {args}", result.stderr.encode()))

    old_umask = os.umask(0)  # modes must come from the tool, not from a kind umask
    try:
        with SandboxServer(dataset_with_key(), faults=Faults(rate_limits=())) as server:
            run("connect", "--base-url", server.base_url, "--key-stdin", stdin=f"{API_KEY}\n")
            run("connect", "--connection", "bad", "--base-url", server.base_url, "--key-stdin",
                stdin=f"{WRONG_KEY}\n", expect=ExitCode.KEY_REJECTED)
            run("test")
            run("connections")
            run("pull", "--page-size", "20")
            # A pull running: its command line (and its threads') must not hold a secret.
            server.set_faults(Faults(rate_limits=(), latency_ms=300))
            server.clear_requests()
            running = home.start("-v", "pull", "--page-size", "5", extra_env=extra)
            try:
                wait_for_requests(server, "/services/v2/user/me")  # the pull is under way, not yet done
                proc = Path(f"/proc/{running.pid}")
                cmdline = (proc / "cmdline").read_bytes()
                assert b"auditor" in cmdline, "read the command line of a process that had already ended"
                cmdlines.append(cmdline)
                cmdlines.extend((task / "comm").read_bytes() for task in (proc / "task").iterdir())
            finally:
                stdout, stderr = running.communicate(timeout=120)
            assert running.returncode == 0, stderr
            printed += [("running pull stdout", stdout.encode()), ("running pull stderr", stderr.encode())]
            server.set_faults(Faults(rate_limits=()))
            run("snapshots")
            run("diff")
            run("findings")
            run("attest", "mfa", "--by", "Ann <ann@example.com>", "--statement", "checked")
            # The PDF report is searched as `run` writes it (below) and as its bundle holds it.
            run("report", "--format", "html", "--output", str(out / "report"))
            # The reports in a bundle are the bytes `run` below renders and embeds (its bundle is
            # searched too): this export leaves them out, a PDF render fewer.
            run("export", "--no-reports", "--output", str(out / "evidence.zip"))
            pem = tmp_path / "signer.pem"
            pem.write_text(home.run("keys", "public", extra_env=extra).stdout)
            run("verify", str(out / "evidence.zip"), "--public-key", str(pem))
            run("keys", "public")
            run("run", "--output", str(out / "run"))
            # Failures with tracebacks: CertCentral down, then the stored key revoked.
            server.set_faults(Faults(rate_limits=(), error_rate=1.0, error_statuses=(500,)))
            run("--retries", "2", "pull", expect=ExitCode.CERTCENTRAL_UNAVAILABLE)
            server.set_faults(Faults(rate_limits=()))
            revoked = dataset_with_key()
            server.set_dataset(Dataset(account=revoked.account, containers=revoked.containers,
                                       users=revoked.users, service_users=revoked.service_users,
                                       keys=tuple(k for k in revoked.keys if k["key"] != API_KEY),
                                       as_of=revoked.as_of))
            run("test", expect=ExitCode.KEY_REJECTED)
            run("pull", expect=ExitCode.KEY_REJECTED)
            recorded = [(f"sandbox request {i}", repr(r).encode()) for i, r in enumerate(server.requests)]
    finally:
        os.umask(old_umask)

    master_bytes = (
        base64.urlsafe_b64decode(env_master) if env_master else home.key_file.read_bytes()
    )
    master = MasterKey(master_bytes)
    with Store.open(home.data_dir) as store:
        sealed = [record.encrypted_private_key for record in store.signing_keys()]
    signing = [master.decrypt(token, context=PRIVATE_KEY_CONTEXT) for token in sealed]
    assert signing, "no signing key was created"
    needles: dict[str, set[bytes]] = {
        "API key": forms(API_KEY.encode()) | {API_KEY.lower().encode()},
        "rejected API key": forms(WRONG_KEY.encode()),
        "master key": forms(master_bytes) | ({env_master.encode()} if env_master else set()),
        "signing key": set().union(*(forms(raw) for raw in signing)),
    }
    for raw in signing:
        pem = Ed25519PrivateKey.from_private_bytes(raw).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        needles["signing key"].add(pem.splitlines()[1])
    bundles = sorted(out.rglob("*.zip"))
    assert len(bundles) == 2
    # Every output format is among what is searched: the PDF report as written and as bundled.
    assert list((out / "run").glob("*.pdf")) and list((out / "report").glob("*.html"))
    assert any(name.endswith(":report/report.pdf") for name, _data in unzipped(bundles))
    files = [(path, data) for path, data in all_written_bytes(home.data_dir, home.key_file.parent, out)
             if path != home.key_file]
    searched = assert_absent(needles, iter(files))
    searched += assert_absent(needles, unzipped(bundles))
    searched += assert_absent(needles, iter(printed))
    searched += assert_absent(needles, iter(recorded))
    searched += assert_absent(needles, ((f"/proc cmdline {i}", c) for i, c in enumerate(cmdlines)))
    assert searched > 100
    # The key file holds only the key (so it, too, is searched for the other secrets).
    if not env_master:
        assert_absent({k: v for k, v in needles.items() if k != "master key"}, iter([("key file", master_bytes)]))

    # Owner-only: the data directory, the database and its journal files, the lock directory,
    # the key file and its directory, and the evidence bundles.
    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    assert mode(home.data_dir) == 0o700
    for path in home.data_dir.glob("auditor.db*"):
        assert mode(path) == 0o600, path
    assert mode(home.data_dir / "locks") == 0o700
    for path in (home.data_dir / "locks").iterdir():
        assert mode(path) & 0o077 == 0, path
    if not env_master:
        assert mode(home.key_file) == 0o600
        assert mode(home.key_file.parent) == 0o700
    else:
        assert not home.key_file.exists(), "a key file was created although AUDITOR_MASTER_KEY was set"
    for bundle in bundles:
        assert mode(bundle) == 0o600, bundle


def test_wrong_master_key_fails_cleanly(home: AuditorHome, sandbox: SandboxServer) -> None:
    connect_to(home, sandbox.base_url)
    assert home.run("pull").returncode == 0
    original = home.key_file.read_bytes()
    other = base64.urlsafe_b64encode(os.urandom(32)).decode()
    malformed = "hunter2-" + secrets.token_hex(6)
    cases = {
        "another key in AUDITOR_MASTER_KEY": {"AUDITOR_MASTER_KEY": other},
        "a malformed AUDITOR_MASTER_KEY": {"AUDITOR_MASTER_KEY": malformed},
    }
    for label, env in cases.items():
        for command in (("pull",), ("test",)):
            result = home.run(*command, extra_env=env)
            assert result.returncode == ExitCode.USAGE, (label, command, result.stderr)
            assert "Traceback" not in result.stderr, (label, result.stderr)
            assert "AUDITOR_MASTER_KEY" in result.stderr or "master key" in result.stderr
            assert other not in result.stderr and malformed not in result.stderr
    # Before any signing key exists, a wrong master key must not seal a new one (which the right
    # key could then never open): every command that would create or use one refuses.
    target = str(home.data_dir.parent / "x.zip")
    for command in (("keys", "public"), ("keys", "rotate"), ("export", "--no-reports", "--output", target)):
        result = home.run(*command, extra_env={"AUDITOR_MASTER_KEY": other})
        assert result.returncode == ExitCode.USAGE, (command, result.stderr)
        assert "cannot be decrypted with this master key" in result.stderr
    with Store.open(home.data_dir) as store:
        assert store.signing_keys() == [], "a signing key was sealed under the wrong master key"
    # A key file replaced by another key: same clean failure; the real key still works afterwards.
    home.key_file.write_bytes(os.urandom(32))
    result = home.run("pull")
    assert result.returncode == ExitCode.USAGE and "Traceback" not in result.stderr, result.stderr
    assert "cannot be decrypted with this master key" in result.stderr
    home.key_file.write_bytes(original)
    assert home.run("pull").returncode == 0
    assert not (home.data_dir.parent / "x.zip").exists()
    assert home.run("export", "--no-reports", "--output", str(home.data_dir.parent / "x.zip")).returncode == 0
    # Once a signing key exists, a wrong master key cannot use it either.
    result = home.run("export", "--no-reports", "--output", str(home.data_dir.parent / "y.zip"),
                      extra_env={"AUDITOR_MASTER_KEY": other})
    assert result.returncode == ExitCode.USAGE and "Traceback" not in result.stderr, result.stderr


@pytest.mark.parametrize(
    "failure",
    ["connect-error-echoes-key", "403-body-echoes-key", "500-body-echoes-key", "html-echoes-key"],
)
def test_exception_text_never_holds_the_key(failure: str) -> None:
    """Even when a proxy or the API echoes the key back, no message or chained cause holds it."""

    def answer(request: httpx.Request) -> httpx.Response:
        if failure == "connect-error-echoes-key":
            raise httpx.ConnectError(f"proxy refused header X-DC-DEVKEY: {API_KEY}", request=request)
        if failure == "403-body-echoes-key":
            return httpx.Response(403, json={"errors": [{"code": "access_denied|access_denied_invalid_key",
                                                         "message": f"Key {API_KEY} is invalid"}]})
        if failure == "500-body-echoes-key":
            return httpx.Response(500, json={"errors": {"code": f"boom-{API_KEY}", "message": API_KEY}})
        return httpx.Response(200, text=f"<html>{API_KEY}</html>", headers={"Content-Type": "text/html"})

    client = CertCentralClient("https://www.digicert.com/services/v2", API_KEY, transport=httpx.MockTransport(answer),
                               retry_attempts=2, sleep=lambda _s: None)
    with client, pytest.raises(ApiError) as caught:
        client.pull_users()
    text = "".join(traceback.format_exception(caught.value)) + caught.value.diagnostics()
    assert API_KEY not in text, text
    assert API_KEY not in repr(client) and API_KEY not in str(client)
