"""Issue 22 §3, §8, §9: an authenticated store, exports that never fork, local files that fail clearly.

Someone with write access to the data directory but not the master key edits the database
directly (sqlite3, as an attacker would); every command that reads the edited record refuses
with exit 6 naming it, and export never signs it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import subprocess
import zipfile
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support import AuditorHome, connect_to

from auditor.credentials import RECORD_PURPOSES, MasterKey
from auditor.errors import CredentialsError, ExitCode, StoreError
from auditor.models import AttestationKind
from auditor.sandbox import Dataset, SandboxServer
from auditor.store import DB_NAME, TAGGED_COLUMNS, UNTAGGED_COLUMNS, Store, canonical_record

T0 = datetime(2026, 11, 1, tzinfo=UTC)
DANA = 2702001  # a Standard User in the default sandbox dataset
# Make Dana an Administrator in the stored rows (of every snapshot, or of snapshot 1 only).
PROMOTE_DANA = (
    "UPDATE user_versions SET roles = '[[1,\"Administrator\"]]', role_names = 'Administrator'"
    " WHERE user_id = 2702001"
)


def _db(home: AuditorHome) -> Path:
    return home.data_dir / DB_NAME


def _execute(path: Path, *statements: str | tuple[str, tuple[object, ...]]) -> None:
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        for statement in statements:
            if isinstance(statement, tuple):
                db.execute(*statement)
            else:
                db.execute(statement)


def _pulled(home: AuditorHome, sandbox: SandboxServer) -> None:
    connect_to(home, sandbox.base_url)
    result = home.run("pull")
    assert result.returncode == 0, result.stderr


def _refused(result: subprocess.CompletedProcess[str], what: str) -> None:
    code, err = result.returncode, result.stderr
    assert code == ExitCode.LOCAL_DATA, err
    assert what in err and "authentication tag" in err, err
    assert "Traceback" not in err


# -- the tag covers every column -----------------------------------------------------------------


def test_every_column_is_tagged_or_deliberately_left_out(tmp_path: Path) -> None:
    # A migration that adds a column must add it to TAGGED_COLUMNS (or say why not): this fails
    # until it does, so a new field can never slip past the tags unnoticed.
    with Store.open(tmp_path) as store:
        del store
    with contextlib.closing(sqlite3.connect(tmp_path / DB_NAME)) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            if table.startswith("sqlite_"):
                continue
            columns = {row[1] for row in db.execute("SELECT * FROM pragma_table_info(?)", (table,))}
            listed = set(TAGGED_COLUMNS.get(table, ())) | UNTAGGED_COLUMNS.get(table, frozenset())
            assert columns == listed, f"{table}: columns {sorted(columns ^ listed)} are not accounted for"
    assert set(TAGGED_COLUMNS) <= set(RECORD_PURPOSES), "every tagged table needs its own HKDF label"


def test_the_canonical_encoding_tells_apart_what_sqlite_would_not() -> None:
    row = dict.fromkeys(TAGGED_COLUMNS["chain"])
    base = {**row, "id": 1, "connection": "prod", "chain_id": "ab", "sequence": 0}
    variants = [
        base,
        {**base, "chain_id": "a", "connection": "prodb"},  # no boundary shift between fields
        {**base, "sequence": "0"},  # text is not an integer
        {**base, "chain_id": b"ab"},  # bytes are not text
        {**base, "sequence": None},  # NULL is not 0
    ]
    encodings = {canonical_record("chain", variant) for variant in variants}
    assert len(encodings) == len(variants)
    # NULLs are left out: a nullable column added later keeps existing tags valid.
    assert canonical_record("chain", base) == canonical_record("chain", {**base, "signature": None})


# -- edits made outside the tool -------------------------------------------------------------------


def test_an_edited_snapshot_user_is_refused_by_report_and_export(
    home: AuditorHome, sandbox: SandboxServer, tmp_path: Path
) -> None:
    _pulled(home, sandbox)
    _execute(_db(home), PROMOTE_DANA)
    _refused(home.run("report", "--format", "html", "--output", str(tmp_path / "r")), "snapshot #1 users")
    bundle = tmp_path / "e.zip"
    _refused(home.run("export", "--no-reports", "--output", str(bundle)), "snapshot #1 users")
    assert not bundle.exists()


def test_a_raw_page_edited_with_its_digest_is_refused_by_export(
    home: AuditorHome, sandbox: SandboxServer, tmp_path: Path
) -> None:
    _pulled(home, sandbox)
    with contextlib.closing(sqlite3.connect(_db(home), isolation_level=None)) as db:
        position, body = db.execute(
            "SELECT position, body_zlib FROM raw_pages WHERE endpoint LIKE '/user?%' ORDER BY position LIMIT 1"
        ).fetchone()
        forged = zlib.decompress(body).replace(b'"Standard User"', b'"Administrator"')
        db.execute(
            "UPDATE raw_pages SET body_zlib = ?, sha256 = ? WHERE snapshot_id = 1 AND position = ?",
            (zlib.compress(forged), hashlib.sha256(forged).hexdigest(), position),
        )
    bundle = tmp_path / "e.zip"
    _refused(home.run("export", "--no-reports", "--output", str(bundle)), "snapshot #1 raw pages")
    assert not bundle.exists()


def test_rewriting_the_previous_snapshot_to_hide_an_escalation_is_detected(
    home: AuditorHome, sandbox: SandboxServer
) -> None:
    _pulled(home, sandbox)
    dataset = sandbox.dataset
    escalated = tuple(
        {**user, "access_roles": [{"id": 1, "name": "Administrator"}]} if user["id"] == DANA else user
        for user in dataset.users
    )
    sandbox.set_dataset(
        Dataset(
            account=dataset.account,
            containers=dataset.containers,
            users=escalated,
            service_users=dataset.service_users,
            keys=dataset.keys,
            as_of=dataset.as_of,
        )
    )
    assert home.run("pull").returncode == 0
    before = home.run("diff")
    assert before.returncode == 0 and "dana.ops@example.com" in before.stdout, before.stdout
    # Make snapshot 1 say Dana was an Administrator all along: no escalation left to see.
    first_version = " AND id = (SELECT min(id) FROM user_versions WHERE user_id = 2702001)"
    _execute(_db(home), PROMOTE_DANA + first_version)
    _refused(home.run("diff"), "snapshot #1 users")
    _refused(home.run("findings"), "snapshot #1 users")  # the history of every snapshot is checked
    # Changing the snapshot's provenance or summary instead is caught as well.
    _execute(_db(home), "UPDATE snapshots SET admin_count = admin_count - 1 WHERE id = 2")
    _refused(home.run("snapshots"), "snapshot #2")


def test_deleting_the_previous_snapshot_is_detected(home: AuditorHome, sandbox: SandboxServer) -> None:
    _pulled(home, sandbox)
    assert home.run("pull").returncode == 0
    _execute(_db(home), "PRAGMA foreign_keys = ON", "DELETE FROM snapshots WHERE id = 1")
    result = home.run("diff")
    assert result.returncode == ExitCode.LOCAL_DATA, result.stderr
    assert "Snapshot #2 of connection 'default'" in result.stderr
    assert "follows snapshot #1, which is no longer in the database" in result.stderr


def test_deleting_the_newest_snapshot_or_chain_record_is_detected(
    home: AuditorHome, sandbox: SandboxServer, tmp_path: Path
) -> None:
    _pulled(home, sandbox)
    assert home.run("pull").returncode == 0
    for n in range(2):
        assert home.run("export", "--no-reports", "--output", str(tmp_path / f"{n}.zip")).returncode == 0
    original = _db(home).read_bytes()
    # Without the newest chain record the next export would sign sequence 1 again: a fork.
    _execute(_db(home), "DELETE FROM chain WHERE id = (SELECT max(id) FROM chain)")
    result = home.run("export", "--no-reports", "--output", str(tmp_path / "2.zip"))
    assert result.returncode == ExitCode.LOCAL_DATA, result.stderr
    assert "The newest evidence chain record of connection 'default'" in result.stderr
    assert "should be #2, but the database's newest is #1" in result.stderr
    assert not (tmp_path / "2.zip").exists()

    (home.data_dir / (DB_NAME + "-wal")).unlink(missing_ok=True)
    _db(home).write_bytes(original)
    _execute(_db(home), "PRAGMA foreign_keys = ON", "DELETE FROM snapshots WHERE id = 2")
    result = home.run("report", "--format", "html", "--output", str(tmp_path / "r"))
    assert result.returncode == ExitCode.LOCAL_DATA, result.stderr
    assert "The newest snapshot of connection 'default'" in result.stderr and "should be #2" in result.stderr


def test_an_edited_attestation_chain_head_or_connection_is_named(
    home: AuditorHome, sandbox: SandboxServer, tmp_path: Path
) -> None:
    _pulled(home, sandbox)
    assert home.run("attest", "mfa", "--by", "Ann <ann@example.com>", "--statement", "checked").returncode == 0
    assert home.run("export", "--no-reports", "--output", str(tmp_path / "0.zip")).returncode == 0
    original = _db(home).read_bytes()

    _execute(_db(home), "UPDATE attestations SET expires = '2999-01-01T00:00:00.000000+00:00'")
    _refused(home.run("findings"), "attestation #1 of connection 'default'")

    (home.data_dir / (DB_NAME + "-wal")).unlink(missing_ok=True)
    _db(home).write_bytes(original)
    _execute(_db(home), "UPDATE chain SET sequence = 7")
    _refused(home.run("export", "--no-reports", "--output", str(tmp_path / "1.zip")), "chain head of connection")

    _db(home).write_bytes(original)
    # Steering the sealed key to another host would send the API key there: refused before any request.
    _execute(_db(home), "UPDATE connections SET base_url = 'http://127.0.0.1:9/services/v2'")
    _refused(home.run("pull"), "connection 'default'")


def test_a_store_from_before_tags_is_tagged_once_and_says_so(home: AuditorHome, sandbox: SandboxServer) -> None:
    _pulled(home, sandbox)
    _make_legacy(_db(home))
    first = home.run("snapshots")
    assert first.returncode == 0, first.stderr
    assert "Authenticated" in first.stderr and "existing records" in first.stderr, first.stderr
    again = home.run("snapshots")
    assert again.returncode == 0 and "Authenticated" not in again.stderr, again.stderr
    _execute(_db(home), "UPDATE user_versions SET email = 'x@evil.test' WHERE user_id = 2702001")
    _refused(home.run("diff", "--from", "1", "--to", "1"), "snapshot #1 users")


def test_export_re_derives_the_users_from_the_raw_pages(
    home: AuditorHome, sandbox: SandboxServer, tmp_path: Path
) -> None:
    # An edit made before the store was first tagged is tagged with it; the raw pages still tell.
    _pulled(home, sandbox)
    _make_legacy(_db(home))
    _execute(
        _db(home),
        "UPDATE snapshot_users SET roles = '[[5,\"Standard User\"]]', role_names = 'Standard User'"
        " WHERE user_id = 2700762",  # the legacy (schema 1) table
    )
    bundle = tmp_path / "e.zip"
    result = home.run("export", "--no-reports", "--output", str(bundle))
    assert result.returncode == ExitCode.LOCAL_DATA, result.stderr
    assert "Snapshot #1: user 2700762 (alice.admin@example.com) has roles" in result.stderr, result.stderr
    assert "'Standard User' stored but 'Administrator' in the raw pages" in result.stderr
    assert "no evidence was signed" in result.stderr
    assert not bundle.exists()


def test_export_accepts_a_details_pull_that_reused_earlier_details(
    home: AuditorHome, sandbox: SandboxServer, tmp_path: Path
) -> None:
    # The second --details pull reuses the first one's is_saml_sso_only (no user-info pages):
    # the re-derivation must not call that a difference.
    connect_to(home, sandbox.base_url)
    for _ in range(2):
        assert home.run("pull", "--details").returncode == 0
    result = home.run("export", "--no-reports", "--output", str(tmp_path / "e.zip"))
    assert result.returncode == 0, result.stderr


def _make_legacy(path: Path) -> None:
    """Turn a store back into what certcentral-auditor 0.1 wrote: schema 1, no tags.

    Every table, index and column a later migration added is dropped, whatever the migrations are.
    """
    from auditor.store import _expected_schema

    version_1 = {(kind, name): columns for kind, name, columns in _expected_schema(1)}
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        _restore_snapshot_users(db)
        objects = db.execute("SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'").fetchall()
        for kind, name in objects:
            if (kind, name) not in version_1:
                db.execute(f"DROP {kind.upper()} IF EXISTS {name}")
        for (kind, name), columns in version_1.items():
            if kind != "table":
                continue
            present = [row[1] for row in db.execute("SELECT * FROM pragma_table_info(?)", (name,))]
            for column in present:
                if column not in columns:
                    db.execute(f"ALTER TABLE {name} DROP COLUMN {column}")
        db.execute("DELETE FROM meta WHERE key NOT LIKE 'migrated_to_1'")
        db.execute("PRAGMA user_version = 1")


def _restore_snapshot_users(db: sqlite3.Connection) -> None:
    """Schema 5 keeps user rows as versions: write them back as schema 1's snapshot_users rows."""
    from auditor.store import _MIGRATIONS
    from auditor.store.versions import member_rows

    if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'snapshot_users'").fetchone():
        return
    (ddl,) = [s for s in _MIGRATIONS[0] if isinstance(s, str) and "CREATE TABLE snapshot_users" in s]
    db.execute(ddl)
    for (snapshot_id,) in db.execute("SELECT id FROM snapshots").fetchall():
        rows = member_rows(db, snapshot_id)
        if rows:
            insert = f"INSERT INTO snapshot_users VALUES ({', '.join('?' * len(rows[0]))})"  # noqa: S608
            db.executemany(insert, rows)


def test_a_store_tagged_under_another_master_key_is_a_key_error(tmp_path: Path) -> None:
    with Store.open(tmp_path, master_key=MasterKey.generate()) as store:
        store.tag_existing_records()
    with pytest.raises(CredentialsError, match="cannot be decrypted with this master key"):
        Store.open(tmp_path, master_key=MasterKey.generate())


# -- exports never fork --------------------------------------------------------------------------------


def test_two_first_exports_at_once_make_one_chain(home: AuditorHome, sandbox: SandboxServer, tmp_path: Path) -> None:
    _pulled(home, sandbox)
    for trial in range(3):
        data_copy = tmp_path / f"trial{trial}"
        trial_home = AuditorHome(data_dir=data_copy / "home", key_file=home.key_file)
        data_copy.mkdir()
        # The same pulled store each time, with no export yet.
        with contextlib.closing(sqlite3.connect(_db(home))) as source, contextlib.closing(
            sqlite3.connect(data_copy / "copy.db")
        ) as target:
            source.backup(target)
        trial_home.data_dir.mkdir(mode=0o700)
        (data_copy / "copy.db").rename(trial_home.data_dir / DB_NAME)
        racers = [
            trial_home.start("export", "--no-reports", "--output", str(data_copy / f"race{i}.zip")) for i in range(2)
        ]
        results = [(racer.wait(timeout=180), racer.communicate()[1]) for racer in racers]
        for code, err in results:
            assert code == 0, err
        by_sequence: dict[int, Path] = {}
        chain_ids = set()
        for i in range(2):
            bundle = data_copy / f"race{i}.zip"
            with zipfile.ZipFile(bundle) as archive:
                chain = json.loads(archive.read("manifest.json"))["chain"]
            chain_ids.add(chain["chain_id"])
            by_sequence[chain["sequence"]] = bundle
        assert len(chain_ids) == 1, f"trial {trial}: two genesis bundles, a forked chain"
        assert sorted(by_sequence) == [0, 1], f"trial {trial}"
        signer = data_copy / "signer.pub.pem"
        signer.write_text(trial_home.run("keys", "public").stdout)
        verify = trial_home.run(
            "verify", str(by_sequence[1]), "--previous", str(by_sequence[0]), "--public-key", str(signer)
        )
        assert verify.returncode == 0, verify.stdout


# -- local files fail clearly ------------------------------------------------------------------------


def test_a_missing_master_key_is_never_replaced_while_sealed_keys_exist(
    home: AuditorHome, sandbox: SandboxServer
) -> None:
    _pulled(home, sandbox)
    home.key_file.unlink()
    for command in (("pull",), ("snapshots",), ("export", "--no-reports", "--output", "x.zip")):
        result = home.run(*command)
        assert result.returncode == ExitCode.USAGE, result.stderr
        assert "Restore the master key" in result.stderr and str(home.key_file) in result.stderr
        assert "AUDITOR_MASTER_KEY" in result.stderr and "Traceback" not in result.stderr
        assert not home.key_file.exists(), "a new master key was created"


def test_a_fifo_at_the_key_path_never_blocks(home: AuditorHome) -> None:
    home.key_file.parent.mkdir(mode=0o700, parents=True)
    os.mkfifo(home.key_file, 0o600)
    result = home.run("snapshots", timeout=30)
    assert result.returncode == ExitCode.USAGE, result.stderr
    assert "not a regular file" in result.stderr and str(home.key_file) in result.stderr


@pytest.mark.parametrize("journal", ["delete", "wal"])
def test_a_foreign_database_is_refused_before_anything_changes(home: AuditorHome, journal: str) -> None:
    home.data_dir.mkdir(mode=0o700, parents=True)
    path = _db(home)
    _execute(
        path,
        f"PRAGMA journal_mode = {journal}",
        "CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)",
        "PRAGMA user_version = 1",
    )
    assert sorted(p.name for p in home.data_dir.iterdir()) == [DB_NAME]
    before = path.read_bytes()
    result = home.run("snapshots")
    assert result.returncode == ExitCode.LOCAL_DATA, result.stderr
    assert "not an auditor database" in result.stderr and "invoices" in result.stderr
    assert "Nothing was changed" in result.stderr
    assert path.read_bytes() == before, "the foreign file was changed"
    assert sorted(p.name for p in home.data_dir.iterdir()) == [DB_NAME], "the refusal left files behind"


def test_an_empty_database_file_is_damaged_not_new(home: AuditorHome) -> None:
    home.data_dir.mkdir(mode=0o700, parents=True)
    _db(home).touch(mode=0o600)
    result = home.run("snapshots")
    assert result.returncode == ExitCode.LOCAL_DATA, result.stderr
    assert "empty (0 bytes)" in result.stderr and "backup" in result.stderr
    assert _db(home).stat().st_size == 0
    assert sorted(p.name for p in home.data_dir.iterdir()) == [DB_NAME]


def test_a_tagged_store_opened_without_the_key_can_be_read_not_changed(tmp_path: Path) -> None:
    key = MasterKey.generate()
    with Store.open(tmp_path, master_key=key) as store:
        store.tag_existing_records()
        store.add_attestation("prod", kind=AttestationKind.MFA, by="Ann", statement="checked",
                              made_at=T0, expires=T0 + timedelta(days=30))
    with Store.open(tmp_path) as unkeyed:
        assert [a.by for a in unkeyed.attestations("prod")] == ["Ann"]
        with pytest.raises(StoreError, match="opened without the master key: it can be read but not changed"):
            unkeyed.add_attestation("prod", kind=AttestationKind.MFA, by="Eve", statement="forged",
                                    made_at=T0, expires=T0 + timedelta(days=30))
    with Store.open(tmp_path, master_key=key) as store:
        assert [a.by for a in store.attestations("prod")] == ["Ann"]


def test_reading_while_another_process_saves_never_looks_tampered(tmp_path: Path) -> None:
    # The newest-record check reads the records and their remembered ids in one transaction: a
    # snapshot committed between the two reads must not look like a deleted one.
    import threading

    from auditor.models import PullProvenance, Role, User

    key = MasterKey.generate()
    with Store.open(tmp_path, master_key=key) as store:
        store.tag_existing_records()

    def provenance(n: int) -> PullProvenance:
        at = T0 + timedelta(minutes=n)
        return PullProvenance(
            connection="prod", base_url="https://x", account_id=1, key_fingerprint="f", tool_version="0",
            started_at=at, finished_at=at, requests=1, pages=1, retries=0, expected_total=1, received=1,
            complete=True, notes=(), page_digests=(),
        )

    users = [User(id=i, email=f"u{i}@example.com", roles=(Role(5, "Standard User"),)) for i in range(50)]
    done = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        try:
            with Store.open(tmp_path, master_key=key) as writer:
                for n in range(60):
                    writer.save_snapshot(provenance=provenance(n), users=users, raw_pages=[])
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=write)
    thread.start()
    reads = 0
    with Store.open(tmp_path, master_key=key) as reader:
        while not done.is_set() or reads == 0:
            reader.list_snapshots("prod")
            reader.user_history("prod")
            reads += 1
    thread.join()
    assert not errors, errors
    assert reads > 1
