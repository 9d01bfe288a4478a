"""Issue 17, credential inventory: key changes in the diff, `history`, and keys in evidence bundles."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import zipfile
from pathlib import Path

from keys_support import ADMIN, SERVICE, api_key, every_kind, keyed_dataset
from openpyxl import load_workbook
from support import AuditorHome, connect_to

from auditor.errors import ExitCode
from auditor.sandbox import Faults, SandboxServer


def _next_month_keys() -> list[dict[str, object]]:
    keys = {key["id"]: key for key in every_kind()}
    keys[11] = {**keys[11], "status": "revoked"}  # revoked
    keys[12] = {**keys[12], "user": {"id": SERVICE, "first_name": "Svc", "last_name": "Deploy"}}  # re-owned
    keys[13] = {**keys[13], "restricted_to_role_id": 0}  # re-restricted: now unrestricted
    del keys[19]  # gone from the list: revoked
    keys[23] = api_key(23, "new-pipeline", ADMIN, restriction=100)  # created
    return list(keys.values())


def test_diff_reports_keys_created_revoked_re_owned_and_re_restricted(home: AuditorHome) -> None:
    with SandboxServer(keyed_dataset()) as server:
        connect_to(home, server.base_url, key="sandbox-view-only-key")
        assert home.run("pull").returncode == ExitCode.OK
        server.set_dataset(keyed_dataset(keys=_next_month_keys()))
        assert home.run("pull").returncode == ExitCode.OK
    result = home.run("diff", "--format", "json")
    assert result.returncode == ExitCode.OK, result.stderr
    changes = [c for c in json.loads(result.stdout)["changes"] if c["kind"].startswith("key-")]
    got = {(c["kind"], c["key_id"]) for c in changes}
    assert got == {
        ("key-revoked", 11),
        ("key-owner", 12),
        ("key-restriction", 13),
        ("key-revoked", 19),
        ("key-created", 23),
    }
    restriction = next(c for c in changes if c["kind"] == "key-restriction")
    assert restriction["escalation"] is True and restriction["after"].endswith("None (unrestricted)")
    owner = next(c for c in changes if c["kind"] == "key-owner")
    assert f"user {ADMIN}" in owner["before"] and f"user {SERVICE}" in owner["after"]
    text = home.run("diff")
    assert "key created" in text.stdout and "(key 23, owner id" in text.stdout


def test_no_key_changes_against_a_snapshot_that_could_not_read_keys(home: AuditorHome) -> None:
    refused = Faults(route_faults=(("/key", "missing-permission"),))
    with SandboxServer(keyed_dataset(), faults=refused) as server:
        connect_to(home, server.base_url, key="sandbox-view-only-key")
        assert home.run("pull").returncode == ExitCode.OK
        server.set_faults(Faults())
        assert home.run("pull").returncode == ExitCode.OK
    changes = json.loads(home.run("diff", "--format", "json").stdout)["changes"]
    assert not [c for c in changes if c["kind"].startswith("key-")], "unknown before is not 'all keys created'"


def test_history_shows_the_users_keys(home: AuditorHome) -> None:
    with SandboxServer(keyed_dataset()) as server:
        connect_to(home, server.base_url, key="sandbox-view-only-key")
        assert home.run("pull").returncode == ExitCode.OK
    text = home.run("history", "alice.admin@example.com")
    assert text.returncode == ExitCode.OK, text.stderr
    assert "API keys (7, latest snapshot):" in text.stdout
    assert "admin-unrestricted (api key 11)  active  None (unrestricted)" in text.stdout
    document = json.loads(home.run("history", str(SERVICE), "--format", "json").stdout)
    assert [key["id"] for key in document["api_keys"]] == [22]


def test_history_says_unknown_when_keys_were_not_readable(home: AuditorHome) -> None:
    with SandboxServer(keyed_dataset(), faults=Faults(route_faults=(("/key", "missing-permission"),))) as server:
        connect_to(home, server.base_url, key="sandbox-view-only-key")
        assert home.run("pull").returncode == ExitCode.OK
    text = home.run("history", "alice.admin@example.com")
    assert "API keys: not readable" in text.stdout
    assert json.loads(home.run("history", str(ADMIN), "--format", "json").stdout)["api_keys"] is None


def _export(home: AuditorHome, tmp_path: Path, name: str) -> Path:
    bundle = tmp_path / name
    result = home.run("export", "--output", str(bundle), "--no-reports")
    assert result.returncode == ExitCode.OK, result.stderr
    return bundle


def test_bundles_carry_the_key_views_and_re_perform(home: AuditorHome, tmp_path: Path) -> None:
    hostile = api_key(24, "=HYPERLINK(\"http://evil\")", ADMIN)
    with SandboxServer(keyed_dataset(keys=[*every_kind(), hostile])) as server:
        connect_to(home, server.base_url, key="sandbox-view-only-key")
        assert home.run("pull").returncode == ExitCode.OK
        first = _export(home, tmp_path, "one.zip")
        server.set_dataset(keyed_dataset(keys=_next_month_keys()))
        assert home.run("pull").returncode == ExitCode.OK
        second = _export(home, tmp_path, "two.zip")
    with zipfile.ZipFile(first) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        rows = list(csv.DictReader(io.StringIO(archive.read("views/keys.csv").decode("utf-8-sig"))))
        inventory = json.loads(archive.read("views/keys.json"))
        workbook = load_workbook(io.BytesIO(archive.read("views/access-review.xlsx")))
    sheet = [[cell.value for cell in row] for row in workbook["api keys"].iter_rows()]
    assert sheet[0][0] == "key_id" and len(sheet) == 14  # the header and 13 keys
    paths = {entry["path"] for entry in manifest["files"]}
    assert {"views/keys.csv", "views/keys.json"} <= paths
    assert manifest["context"]["record_counts"]["api_keys"] == 13
    assert manifest["context"]["guest_access"] is True and manifest["context"]["not_evaluable"] == []
    assert any(path.startswith("evidence/raw/") and "key" in path for path in paths)
    assert next(r for r in rows if r["key_id"] == "24")["name"].startswith("'=")  # formula neutralised
    assert next(r for r in rows if r["key_id"] == "21")["owner_status"] == "not a user of the account"
    assert inventory["guest_access"]["enabled"] is True and len(inventory["ip_rules"]) == 1
    pem = tmp_path / "signer.pem"
    pem.write_text(home.run("keys", "public").stdout)
    for bundle, previous in ((first, ()), (second, ("--previous", str(first)))):
        result = home.run("verify", str(bundle), "--public-key", str(pem), *previous, "--reperform")
        assert result.returncode == ExitCode.OK, result.stdout + result.stderr
        assert "Re-performance: PASSED" in result.stdout and "views/keys.json" in result.stdout


def test_a_bundle_of_an_unreadable_key_list_says_not_evaluable_with_null_counts(
    home: AuditorHome, tmp_path: Path
) -> None:
    with SandboxServer(keyed_dataset(), faults=Faults(route_faults=(("/key", "missing-permission"),))) as server:
        connect_to(home, server.base_url, key="sandbox-view-only-key")
        assert home.run("pull").returncode == ExitCode.OK
        bundle = _export(home, tmp_path, "b.zip")
    with zipfile.ZipFile(bundle) as archive:
        context = json.loads(archive.read("manifest.json"))["context"]
        inventory = json.loads(archive.read("views/keys.json"))
    assert context["not_evaluable"] == ["api_keys"]
    assert context["record_counts"]["api_keys"] is None  # never 0
    assert inventory["api_keys"] is None and inventory["not_evaluable"] == ["api_keys"]


def test_key_changes_keep_the_dataset_shape_for_users(home: AuditorHome) -> None:
    # A user change carries no key_id (the changes view of users is unchanged by issue 17).
    dataset = keyed_dataset()
    users = [dict(u) for u in dataset.users]
    users[0]["status"] = "inactive" if users[0]["status"] == "active" else "active"
    with SandboxServer(dataset) as server:
        connect_to(home, server.base_url, key="sandbox-view-only-key")
        assert home.run("pull").returncode == ExitCode.OK
        server.set_dataset(dataclasses.replace(dataset, users=tuple(users)))
        assert home.run("pull").returncode == ExitCode.OK
    changes = json.loads(home.run("diff", "--format", "json").stdout)["changes"]
    assert changes and all("key_id" not in c for c in changes)


def test_a_key_page_edited_or_deleted_in_the_store_is_refused(home: AuditorHome) -> None:
    import contextlib
    import hashlib
    import sqlite3
    import zlib

    with SandboxServer(keyed_dataset()) as server:
        connect_to(home, server.base_url, key="sandbox-view-only-key")
        assert home.run("pull").returncode == ExitCode.OK
    database = next(home.data_dir.rglob("auditor.db"))
    with contextlib.closing(sqlite3.connect(database, isolation_level=None)) as db:
        body = db.execute("SELECT body_zlib FROM raw_pages WHERE endpoint = '/key'").fetchone()[0]
        # Hide the unrestricted administrator key, keeping the row's digest consistent.
        forged = zlib.decompress(body).replace(b'"restricted_to_role_id": 0', b'"restricted_to_role_id": 102')
        assert forged != zlib.decompress(body)
        db.execute(
            "UPDATE raw_pages SET body_zlib = ?, sha256 = ? WHERE endpoint = '/key'",
            (zlib.compress(forged), hashlib.sha256(forged).hexdigest()),
        )
    refused = home.run("findings", "--format", "json")
    assert refused.returncode == ExitCode.LOCAL_DATA, refused.stdout + refused.stderr
    assert "snapshot #1 raw pages" in refused.stderr
    with contextlib.closing(sqlite3.connect(database, isolation_level=None)) as db:
        db.execute("DELETE FROM raw_pages WHERE endpoint = '/key'")
    deleted = home.run("findings", "--format", "json")
    assert deleted.returncode == ExitCode.LOCAL_DATA, deleted.stdout + deleted.stderr
