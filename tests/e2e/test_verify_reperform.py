"""`auditor verify --reperform`, `SHA256SUMS` and the manifest's rules record (issue 12 §1, §5), via the real CLI."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
import textwrap
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from support import AuditorHome

from auditor.errors import ExitCode
from auditor.evidence import MANIFEST_PAYLOAD_TYPE, Envelope, SigningKeys
from auditor.evidence.bundle import canonical_json, checksums_file
from auditor.samples import sample_account_dir, sample_states
from auditor.sandbox import SandboxServer, load_dataset

CONFIG = ("--config", str(sample_account_dir() / "auditor.toml"))


@dataclass(frozen=True)
class Exported:
    home: AuditorHome
    bundles: tuple[Path, ...]
    key: Path
    master_key: Path
    export_messages: tuple[str, ...]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    """Two monthly pulls of the sample account, each exported: a chain of two real bundles."""
    root = tmp_path_factory.mktemp("reperform")
    home = AuditorHome(data_dir=root / "data", key_file=root / "keys" / "master.key")
    states = [load_dataset(path) for path in sample_states()[-2:]]
    bundles = []
    messages = []
    with SandboxServer(states[0]) as server:
        connected = home.run("connect", "--base-url", server.base_url, "--key-stdin", stdin="sandbox-view-only-key\n")
        assert connected.returncode == 0, connected.stderr
        for index, state in enumerate(states):
            server.set_dataset(state)
            assert home.run("pull").returncode == 0
            target = root / f"bundle{index}.zip"
            result = home.run(*CONFIG, "export", "--output", str(target), "--no-reports")
            assert result.returncode == 0, result.stderr
            bundles.append(target)
            messages.append(result.stderr)
    key = root / "signer.pem"
    key.write_text(home.run("keys", "public").stdout)
    return Exported(home, tuple(bundles), key, home.key_file, tuple(messages))


def members_of(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_an_intact_bundle_re_performs(exported: Exported) -> None:
    latest, earlier = exported.bundles[1], exported.bundles[0]

    result = exported.home.run(
        "verify", str(latest), "--public-key", str(exported.key), "--previous", str(earlier), "--reperform"
    )

    assert result.returncode == ExitCode.OK, result.stdout + result.stderr
    assert "Re-performance: PASSED" in result.stdout
    assert "views/findings.json" in result.stdout and "views/users.csv" in result.stdout
    assert f"re-derived from {earlier.name}" in result.stdout


def test_export_prints_the_whole_zip_sha256_beside_the_manifest_hash(exported: Exported) -> None:
    bundle, message = exported.bundles[1], exported.export_messages[1]
    manifest = members_of(bundle)["manifest.json"]

    assert f"Manifest SHA-256: {hashlib.sha256(manifest).hexdigest()}" in message
    assert f"Bundle SHA-256:   {hashlib.sha256(bundle.read_bytes()).hexdigest()}" in message


def test_saml_values_reused_from_an_earlier_pull_are_recorded_and_re_perform(
    home: AuditorHome, sandbox: SandboxServer, tmp_path: Path
) -> None:
    connected = home.run("connect", "--base-url", sandbox.base_url, "--key-stdin", stdin="sandbox-admin-key\n")
    assert connected.returncode == 0, connected.stderr
    # The second --details pull reuses is_saml_sso_only for unchanged users: no /user/{id} page
    # holds those values, so only the recorded inputs can supply them.
    for _ in range(2):
        assert home.run("pull", "--details").returncode == 0
    bundle = tmp_path / "b.zip"
    assert home.run("export", "--output", str(bundle), "--no-reports").returncode == 0
    pem = tmp_path / "k.pem"
    pem.write_text(home.run("keys", "public").stdout)
    inputs = json.loads(members_of(bundle)["evidence/rule-inputs.json"])
    assert inputs["details_reused"] and any(value is not None for _id, value in inputs["details_reused"])

    result = home.run("verify", str(bundle), "--public-key", str(pem), "--reperform")

    assert result.returncode == ExitCode.OK and "Re-performance: PASSED" in result.stdout, result.stdout


def test_the_manifest_records_the_rules_version_and_settings(exported: Exported) -> None:
    members = members_of(exported.bundles[1])
    context = json.loads(members["manifest.json"])["context"]

    assert context["rules_version"].startswith("0.") and "+rules." in context["rules_version"]
    assert context["rule_settings"]["max_admins"] >= 1
    assert set(context["rule_settings"]["threshold_days"]) >= {"inactive_user_days", "full_review_days"}
    inputs = json.loads(members["evidence/rule-inputs.json"])
    assert inputs["rules_version"] == context["rules_version"]
    assert inputs["previous_snapshot"]["id"] == 1 and inputs["snapshot"]["id"] == 2
    roles = {entry["path"]: entry["role"] for entry in json.loads(members["manifest.json"])["files"]}
    assert roles["evidence/rule-inputs.json"] == "recorded-input"


def _resign_with_the_real_key(exported: Exported, source: Path, target: Path, changed: dict[str, bytes]) -> Path:
    """Rebuild ``source`` with ``changed`` members and re-sign it with the exporter's own key."""
    from auditor.evidence import active_signing_key
    from auditor.pipeline import Workspace

    workspace = Workspace(data_dir=exported.home.data_dir, master_key_file=exported.master_key)
    members = members_of(source)
    members.update(changed)
    manifest = json.loads(members["manifest.json"])
    for entry in manifest["files"]:
        data = members[entry["path"]]
        entry["sha256"] = hashlib.sha256(data).hexdigest()
        entry["size"] = len(data)
    manifest_bytes = canonical_json(manifest)
    with workspace.store() as store:
        key, _ = active_signing_key(store, workspace.master_key(), now=datetime.fromisoformat(manifest["created_at"]))
    envelope = Envelope.sign(
        manifest_bytes, payload_type=MANIFEST_PAYLOAD_TYPE, key=key.private_key, keyid=key.fingerprint
    ).to_json()
    pem = SigningKeys.public_pem(key.private_key).encode("ascii")
    controls = [("manifest.json", manifest_bytes), ("signature.json", envelope), ("signer.pub.pem", pem)]
    sums = checksums_file(controls, [(entry["path"], entry["sha256"]) for entry in manifest["files"]])
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in [*controls, ("SHA256SUMS", sums)]:
            archive.writestr(name, data)
        for entry in manifest["files"]:
            archive.writestr(entry["path"], members[entry["path"]])
    return target


def test_a_users_view_that_disagrees_with_its_raw_pages_fails_only_re_performance(
    exported: Exported, tmp_path: Path
) -> None:
    latest = exported.bundles[1]
    snapshot = json.loads(members_of(latest)["evidence/snapshot.json"])
    victim = next(user for user in snapshot["users"] if any(r["name"] == "Administrator" for r in user["roles"]))
    victim["roles"] = [{"id": 3, "name": "User"}]
    forged_snapshot = (json.dumps(snapshot, sort_keys=True, ensure_ascii=False, indent=2) + "\n").encode()
    changed = {"evidence/snapshot.json": forged_snapshot}
    forged = _resign_with_the_real_key(exported, latest, tmp_path / "forged.zip", changed)

    plain = exported.home.run("verify", str(forged), "--public-key", str(exported.key))
    reperformed = exported.home.run("verify", str(forged), "--public-key", str(exported.key), "--reperform")

    assert plain.returncode == ExitCode.OK, plain.stdout  # signed by the pinned key: integrity holds
    assert reperformed.returncode == ExitCode.FINDINGS_OR_VERIFY_FAILED, reperformed.stdout
    assert "Re-performance: FAILED" in reperformed.stdout
    index = snapshot["users"].index(victim)
    assert f"DIFF evidence/snapshot.json: users[{index}] (id {victim['id']}), field roles" in reperformed.stdout


def test_every_bundle_carries_sha256sums_that_sha256sum_accepts(exported: Exported, tmp_path: Path) -> None:
    if shutil.which("sha256sum") is None:
        pytest.skip("sha256sum (coreutils) is not installed")
    target = tmp_path / "extracted"
    with zipfile.ZipFile(exported.bundles[1]) as archive:
        archive.extractall(target)
    listed = (target / "SHA256SUMS").read_text().splitlines()

    checked = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=target, capture_output=True, text=True, check=False)

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count(": OK") == len(listed) == len([p for p in target.rglob("*") if p.is_file()]) - 1
    (target / "views" / "findings.csv").write_bytes(b"tampered")
    again = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=target, capture_output=True, text=True, check=False)
    assert again.returncode != 0 and "views/findings.csv: FAILED" in again.stdout


def test_the_readme_openssl_steps_verify_a_real_bundle_and_catch_a_changed_manifest(
    exported: Exported, tmp_path: Path
) -> None:
    """The README's "Verifying without the tool" commands, run as written with bash and openssl."""
    if shutil.which("openssl") is None or shutil.which("bash") is None:
        pytest.skip("openssl or bash is not installed")
    from support import REPO

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Verifying without the tool", 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]
    blocks = [textwrap.dedent(block) for block in re.findall(r"```sh\n(.*?)```", textwrap.dedent(section), re.S)]
    blocks = [re.sub(r"(?m)^\s+", "", block) for block in blocks]
    assert len(blocks) == 2 and "openssl pkeyutl -verify" in blocks[1]
    script = "set -euo pipefail\n" + blocks[0] + blocks[1]
    target = tmp_path / "b"
    with zipfile.ZipFile(exported.bundles[1]) as archive:
        archive.extractall(target)
    shutil.copy(exported.key, target / "certcentral-auditor-signing-key.pem")

    result = subprocess.run(["bash", "-c", script], cwd=target, capture_output=True, text=True, check=False)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Signature Verified Successfully" in result.stdout
    assert hashlib.sha256((target / "manifest.json").read_bytes()).hexdigest() in result.stdout
    # Re-signing is what a forger cannot do: a changed manifest (with a payload to match) fails.
    envelope = json.loads((target / "signature.json").read_text())
    changed = (target / "manifest.json").read_bytes().replace(b'"pull_complete": true', b'"pull_complete": false')
    assert changed != (target / "manifest.json").read_bytes()
    (target / "manifest.json").write_bytes(changed)
    envelope["payload"] = base64.b64encode(changed).decode()
    (target / "signature.json").write_text(json.dumps(envelope, indent=2))
    forged = subprocess.run(["bash", "-c", script], cwd=target, capture_output=True, text=True, check=False)
    assert forged.returncode != 0 and "Signature Verified Successfully" not in forged.stdout


def test_recorded_thresholds_that_disagree_with_the_manifest_fail_re_performance(
    exported: Exported, tmp_path: Path
) -> None:
    latest = exported.bundles[1]
    inputs = json.loads(members_of(latest)["evidence/rule-inputs.json"])
    inputs["config"]["thresholds"]["inactive_user_days"] = 3650  # would hide every stale-login finding
    changed = {"evidence/rule-inputs.json": (json.dumps(inputs, sort_keys=True, indent=2) + "\n").encode()}
    forged = _resign_with_the_real_key(exported, latest, tmp_path / "thresholds.zip", changed)

    result = exported.home.run("verify", str(forged), "--public-key", str(exported.key), "--reperform")

    assert result.returncode == ExitCode.FINDINGS_OR_VERIFY_FAILED, result.stdout
    assert "DIFF manifest.json: rule_settings.threshold_days, field inactive_user_days" in result.stdout


def test_a_bundle_without_recorded_inputs_says_it_cannot_be_re_performed(exported: Exported, tmp_path: Path) -> None:
    latest = exported.bundles[1]
    manifest = json.loads(members_of(latest)["manifest.json"])
    manifest["files"] = [entry for entry in manifest["files"] if entry["path"] != "evidence/rule-inputs.json"]
    stripped = tmp_path / "stripped.zip"
    members = members_of(latest)
    del members["evidence/rule-inputs.json"]
    with zipfile.ZipFile(tmp_path / "source.zip", "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    _resign_with_the_real_key(exported, tmp_path / "source.zip", stripped, {"manifest.json": canonical_json(manifest)})

    result = exported.home.run("verify", str(stripped), "--public-key", str(exported.key), "--reperform")

    assert result.returncode == ExitCode.FINDINGS_OR_VERIFY_FAILED, result.stdout
    assert "carries no evidence/rule-inputs.json" in result.stdout and "Traceback" not in result.stderr


def test_a_recorded_previous_snapshot_that_its_own_bundle_contradicts_fails(exported: Exported, tmp_path: Path) -> None:
    earlier, latest = exported.bundles
    inputs = json.loads(members_of(latest)["evidence/rule-inputs.json"])
    previous_users = inputs["previous_snapshot"]["users"]
    victim = sorted(previous_users, key=lambda user: user["id"])[0]
    victim["email"] = "someone.else@example.com"
    changed = {"evidence/rule-inputs.json": (json.dumps(inputs, sort_keys=True, indent=2) + "\n").encode()}
    forged = _resign_with_the_real_key(exported, latest, tmp_path / "previous.zip", changed)

    result = exported.home.run(
        "verify", str(forged), "--public-key", str(exported.key), "--previous", str(earlier), "--reperform"
    )

    assert result.returncode == ExitCode.FINDINGS_OR_VERIFY_FAILED, result.stdout
    assert f"DIFF evidence/rule-inputs.json: users[0] (id {victim['id']}), field email" in result.stdout


def test_an_oscal_document_that_disagrees_with_the_raw_pages_fails_re_performance(
    exported: Exported, tmp_path: Path
) -> None:
    """Issue 19: the bundle's OSCAL assessment results are re-derived too; a dropped finding shows."""
    latest = exported.bundles[1]
    path = "standards/oscal/assessment-results.json"
    document = json.loads(members_of(latest)[path])
    result = document["assessment-results"]["results"][0]
    dropped = result["findings"].pop(0)
    forged = _resign_with_the_real_key(
        exported, latest, tmp_path / "forged-oscal.zip", {path: json.dumps(document).encode()}
    )

    reperformed = exported.home.run("verify", str(forged), "--public-key", str(exported.key), "--reperform")

    assert reperformed.returncode == ExitCode.FINDINGS_OR_VERIFY_FAILED, reperformed.stdout
    assert f"DIFF {path}: assessment-results.results[0], field findings" in reperformed.stdout
    assert dropped["title"][:17] in reperformed.stdout  # the re-derived list starts with the dropped one
