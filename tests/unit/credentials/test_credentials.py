"""The master key and sealed secrets: round trips, refusals, and what never gets shown."""

from __future__ import annotations

import base64
import os
import pickle
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import REPO

from auditor.credentials import KEY_SIZE, MasterKey, fingerprint
from auditor.errors import CredentialsError

KEY = MasterKey.generate()
OTHER = MasterKey.generate()


def _env(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode()


# -- sealing ----------------------------------------------------------------------------------


@given(plaintext=st.binary(max_size=4096), context=st.text(max_size=64))
def test_decrypt_returns_what_was_encrypted(plaintext: bytes, context: str) -> None:
    assert KEY.decrypt(KEY.encrypt(plaintext, context=context), context=context) == plaintext


@given(plaintext=st.binary(max_size=256), context=st.text(max_size=32), other=st.text(max_size=32))
def test_a_token_does_not_open_under_another_context(plaintext: bytes, context: str, other: str) -> None:
    token = KEY.encrypt(plaintext, context=context)
    if other == context:
        assert KEY.decrypt(token, context=other) == plaintext
    else:
        with pytest.raises(CredentialsError, match="cannot be decrypted with this master key"):
            KEY.decrypt(token, context=other)


@given(plaintext=st.binary(max_size=256))
def test_a_token_does_not_open_under_another_key(plaintext: bytes) -> None:
    token = KEY.encrypt(plaintext, context="prod")
    with pytest.raises(CredentialsError) as caught:
        OTHER.decrypt(token, context="prod")
    assert "AUDITOR_MASTER_KEY" in caught.value.message and "(prod)" in caught.value.message
    assert "auditor connect" in caught.value.hint
    assert caught.value.__cause__ is not None  # chained, for -v


@given(plaintext=st.binary(min_size=1, max_size=64), position=st.integers(min_value=0), bit=st.integers(0, 7))
def test_any_flipped_bit_is_refused(plaintext: bytes, position: int, bit: int) -> None:
    token = bytearray(KEY.encrypt(plaintext, context="prod"))
    token[position % len(token)] ^= 1 << bit
    with pytest.raises(CredentialsError):
        KEY.decrypt(bytes(token), context="prod")


@pytest.mark.parametrize("token", [b"", b"\x01", b"\x01" + bytes(27), b"\x02" + bytes(40)])
def test_a_short_or_unknown_version_token_is_refused(token: bytes) -> None:
    with pytest.raises(CredentialsError, match="not in a format"):
        KEY.decrypt(token, context="prod")


def test_each_encryption_uses_a_fresh_nonce() -> None:
    tokens = {KEY.encrypt(b"same", context="prod") for _ in range(50)}
    assert len(tokens) == 50
    assert all(token[0] == 1 and len(token) == 1 + 12 + 4 + 16 for token in tokens)


# -- what is shown ----------------------------------------------------------------------------


def test_repr_and_messages_do_not_show_the_key(tmp_path: Path) -> None:
    raw = os.urandom(KEY_SIZE)
    key = MasterKey.load_or_create(env_value=_env(raw), key_file=tmp_path / "unused")
    shown = repr(key) + str(key)
    assert raw.hex() not in shown
    assert _env(raw) not in shown
    assert _env(raw).rstrip("=") not in shown
    assert fingerprint(raw) in shown
    with pytest.raises(CredentialsError) as caught:
        key.decrypt(OTHER.encrypt(b"x", context="c"), context="c")
    assert raw.hex() not in caught.value.diagnostics()


def test_the_key_cannot_be_pickled() -> None:
    with pytest.raises(TypeError):
        pickle.dumps(KEY)


def test_fingerprint_is_short_stable_and_distinguishes() -> None:
    assert fingerprint("abc") == fingerprint(b"abc")
    assert fingerprint("abc") == "sha256:ba7816bf8f01cfea"
    assert fingerprint("abc") != fingerprint("abd")
    assert "abc" not in fingerprint("abc")[len("sha256:") :]


# -- the environment variable -----------------------------------------------------------------


def test_env_key_is_used_and_no_file_is_created(tmp_path: Path) -> None:
    raw = os.urandom(KEY_SIZE)
    key_file = tmp_path / "keys" / "master.key"
    first = MasterKey.load_or_create(env_value=_env(raw), key_file=key_file)
    second = MasterKey.load_or_create(env_value=_env(raw).rstrip("=") + "\n", key_file=key_file)
    assert second.decrypt(first.encrypt(b"secret", context="c"), context="c") == b"secret"
    assert first.source == "AUDITOR_MASTER_KEY"
    assert not key_file.exists()


@pytest.mark.parametrize(
    "value",
    [
        "not base64 at all!",
        base64.urlsafe_b64encode(os.urandom(16)).decode(),  # AES-128 sized
        base64.urlsafe_b64encode(os.urandom(33)).decode(),
        os.urandom(32).hex(),  # hex, the commonest mistake
    ],
    ids=["not-base64", "16-bytes", "33-bytes", "hex"],  # fixed: xdist workers must collect the same ids
)
def test_a_malformed_env_key_is_refused_without_echoing_it(value: str, tmp_path: Path) -> None:
    with pytest.raises(CredentialsError) as caught:
        MasterKey.load_or_create(env_value=value, key_file=tmp_path / "k")
    text = caught.value.diagnostics()
    assert "urlsafe-base64" in text and "32" in text
    assert value not in text
    assert not (tmp_path / "k").exists()


def test_an_empty_env_value_falls_back_to_the_key_file(tmp_path: Path) -> None:
    key = MasterKey.load_or_create(env_value="", key_file=tmp_path / "k")
    assert key.source == str(tmp_path / "k")
    assert (tmp_path / "k").exists()


# -- the key file -----------------------------------------------------------------------------


def test_key_file_is_created_private_and_reused(tmp_path: Path) -> None:
    key_file = tmp_path / "a" / "b" / "master.key"
    first = MasterKey.load_or_create(env_value=None, key_file=key_file)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "a" / "b").stat().st_mode) == 0o700
    assert key_file.stat().st_size == KEY_SIZE
    assert [p.name for p in key_file.parent.iterdir()] == ["master.key"]  # no temp file left
    second = MasterKey.load_or_create(env_value=None, key_file=key_file)
    assert second.decrypt(first.encrypt(b"secret", context="c"), context="c") == b"secret"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o666])
def test_a_key_file_others_can_read_is_refused(mode: int, tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    MasterKey.load_or_create(env_value=None, key_file=key_file)
    key_file.chmod(mode)
    with pytest.raises(CredentialsError) as caught:
        MasterKey.load_or_create(env_value=None, key_file=key_file)
    assert "chmod 600" in caught.value.hint
    assert f"{mode:04o}" in caught.value.message


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_a_key_file_of_the_wrong_size_is_refused(size: int, tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    key_file.write_bytes(os.urandom(size))
    key_file.chmod(0o600)
    with pytest.raises(CredentialsError, match=f"is {size} bytes long") as caught:
        MasterKey.load_or_create(env_value=None, key_file=key_file)
    assert "auditor connect" in caught.value.hint
    assert key_file.stat().st_size == size  # never overwritten


def test_a_directory_in_place_of_the_key_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "master.key").mkdir(mode=0o700)
    with pytest.raises(CredentialsError):
        MasterKey.load_or_create(env_value=None, key_file=tmp_path / "master.key")


_RACE = """
import sys, time
from pathlib import Path
from auditor.credentials import MasterKey
start = float(sys.argv[2])
while time.time() < start:
    pass
key = MasterKey.load_or_create(env_value=None, key_file=Path(sys.argv[1]))
sys.stdout.write(key.encrypt(b"hello", context="race").hex())
"""


def test_processes_racing_to_create_the_key_file_agree_on_one_key(tmp_path: Path) -> None:
    import time

    key_file = tmp_path / "data" / "master.key"
    start = str(time.time() + 1.0)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _RACE, str(key_file), start],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        for _ in range(6)
    ]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
        outputs.append(bytes.fromhex(out.decode()))
    key = MasterKey.load_or_create(env_value=None, key_file=key_file)
    assert {key.decrypt(token, context="race") for token in outputs} == {b"hello"}
    assert sorted(p.name for p in key_file.parent.iterdir()) == ["master.key"]


# -- record authentication (issue 22 §3) -------------------------------------------------------


def test_each_purpose_has_its_own_record_key() -> None:
    from auditor.credentials import RECORD_PURPOSES

    tags = {KEY.record_authenticator(purpose).tag(b"the same record") for purpose in RECORD_PURPOSES}
    assert len(tags) == len(RECORD_PURPOSES), "a tag made for one table verifies for another"
    raw = os.urandom(KEY_SIZE)
    one, two = MasterKey(raw), MasterKey(raw)  # the same key bytes, derived again: the same tags
    assert one.record_authenticator("snapshots").tag(b"r") == two.record_authenticator("snapshots").tag(b"r")
    assert OTHER.record_authenticator("snapshots").tag(b"r") != KEY.record_authenticator("snapshots").tag(b"r")
    auth = KEY.record_authenticator("chain")
    assert auth.check(auth.tag(b"a", b"b"), b"ab")
    assert not auth.check(auth.tag(b"ab"), b"ac") and not auth.check(None, b"ab") and not auth.check("x", b"ab")
    with pytest.raises(ValueError, match="no record purpose"):
        KEY.record_authenticator("invented")


def test_a_record_authenticator_shows_no_key_and_cannot_be_pickled() -> None:
    auth = KEY.record_authenticator("snapshot_users")
    assert repr(auth) == "RecordAuthenticator(purpose='snapshot_users')"
    with pytest.raises(TypeError):
        pickle.dumps(auth)


def test_a_missing_key_file_is_not_replaced_while_sealed_secrets_exist(tmp_path: Path) -> None:
    from auditor.credentials import MissingMasterKeyError

    key_file = tmp_path / "config" / "master.key"
    with pytest.raises(MissingMasterKeyError) as caught:
        MasterKey.load_or_create(env_value=None, key_file=key_file, sealed_secrets_exist=True)
    text = caught.value.diagnostics()
    assert "Restore the master key" in text and str(key_file) in text and "AUDITOR_MASTER_KEY" in text
    assert not key_file.exists() and not key_file.parent.exists()
    assert caught.value.exit_code == 2


def test_a_fifo_in_place_of_the_key_file_is_refused_without_blocking(tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    os.mkfifo(key_file, 0o600)
    with pytest.raises(CredentialsError, match="not a regular file"):
        MasterKey.load_or_create(env_value=None, key_file=key_file)
