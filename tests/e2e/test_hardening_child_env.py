"""Issue 22.1: secrets stay in the process. ``AUDITOR_MASTER_KEY`` and ``DIGICERT_API_KEY`` leave the
environment before anything can start a child process.

WeasyPrint's library lookup (``ctypes.util.find_library``) runs ``gcc``, ``ld`` and ``objdump``;
fontconfig may run ``fc-list``. Recording fakes of those programs come first on PATH: each saves
its environment to a file, then runs the real program if there is one (so the PDF still renders).
Every command then runs with both secrets set, and no saved environment may hold either.
"""

from __future__ import annotations

import base64
import os
import secrets
import signal
import stat
import subprocess
from pathlib import Path

from support import AuditorHome

from auditor.sandbox import Dataset, Faults, SandboxServer

API_KEY = "ccenv" + secrets.token_hex(20).upper()
FAKED = ("ld", "gcc", "cc", "ldconfig", "fc-list", "objdump")
#: Set for every command to its name; a saved environment without it was not recorded from the tool's children.
PROBE = "AUDITOR_TEST_CHILD_PROBE"


def dataset_with_key() -> Dataset:
    base = Dataset.generate(40, seed=22)
    keys = tuple({**key, "key": API_KEY} if key["label"] == "admin" else key for key in base.keys)
    return Dataset(account=base.account, containers=base.containers, users=base.users,
                   service_users=base.service_users, keys=keys, as_of=base.as_of)


def install_fakes(bin_dir: Path, records: Path) -> None:
    """Recording fakes: save the environment, then exec the real program found on the original PATH."""
    bin_dir.mkdir()
    real_path = os.environ.get("PATH", "/usr/bin:/bin")
    for name in FAKED:
        script = bin_dir / name
        script.write_text(
            "#!/bin/sh\n"
            f'cat "/proc/$$/environ" > "{records}/{name}.$$.env" 2>/dev/null\n'
            f"PATH='{real_path}'\n"
            "export PATH\n"
            f'real=$(command -v "{name}" 2>/dev/null)\n'
            'if [ -n "$real" ]; then exec "$real" "$@"; fi\n'
            "exit 1\n"
        )
        script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def test_no_child_process_inherits_a_secret(home: AuditorHome, tmp_path: Path) -> None:
    master = base64.urlsafe_b64encode(os.urandom(32)).decode()
    records = tmp_path / "records"
    records.mkdir()
    install_fakes(tmp_path / "fakebin", records)
    env = {
        "PATH": f"{tmp_path / 'fakebin'}:{os.environ.get('PATH', '')}",
        "AUDITOR_MASTER_KEY": master,
        "DIGICERT_API_KEY": API_KEY,
    }
    out = tmp_path / "out"
    out.mkdir()

    def label(args: tuple[str, ...]) -> str:
        return " ".join(arg for arg in args[:3] if not arg.startswith("/"))

    def start(*args: str) -> tuple[tuple[str, ...], subprocess.Popen[str]]:
        # A real process: what its children inherit from the environment it started with is the
        # point. The probe names the command, so a saved environment says whose child it was
        # (commands that do not depend on each other run at the same time).
        return args, home.start(*args, extra_env={**env, PROBE: label(args)})

    def finish(*started: tuple[tuple[str, ...], subprocess.Popen[str]], expect: int = 0) -> list[str]:
        printed = []
        for args, process in started:
            stdout, stderr = process.communicate(timeout=600)
            assert process.returncode == expect, (args, stdout[-2000:], stderr[-2000:])
            printed.append(stdout)
        return printed

    def run(*args: str) -> str:
        return finish(start(*args))[0]

    # The demo keeps its data in its output directory: it runs beside the commands on the store.
    demo = start("demo", "--output", str(out / "demo"))
    with SandboxServer(dataset_with_key(), faults=Faults(rate_limits=())) as server:
        run("connect", "--base-url", server.base_url)  # the key comes from DIGICERT_API_KEY
        run("test")
        run("connections")
        run("pull", "--page-size", "15")
        run("pull")
        run("attest", "mfa", "--by", "Ann <ann@example.com>", "--statement", "checked")
        # Readers of the store, at once.
        finish(
            start("snapshots"),
            start("history", str(dataset_with_key().users[0]["id"])),
            start("diff"),
            start("diff", "--format", "csv", "--output", str(out / "changes.csv")),
            start("findings", "--format", "json"),
            start("report", "--format", "html", "--output", str(out / "html")),
            start("report", "--format", "pdf", "--output", str(out / "pdf")),
        )
        # The PDF's children are those of `report --format pdf`, `run` and `demo`: this export
        # leaves the reports out (one render fewer; what it runs past them is the same).
        run("export", "--no-reports", "--output", str(out / "evidence.zip"))
        (out / "signer.pub.pem").write_text(run("keys", "public"))
        run("verify", str(out / "evidence.zip"), "--public-key", str(out / "signer.pub.pem"), "--reperform")
        run("run", "--output", str(out / "run"))
        run("keys", "rotate")
        run("disconnect", "default")
    sandbox = home.start("sandbox", "--port", "0", "--quiet", extra_env={**env, PROBE: "sandbox"})
    try:
        assert sandbox.stderr is not None
        assert "Fake CertCentral serving" in sandbox.stderr.readline()
        sandbox.send_signal(signal.SIGINT)
        sandbox.communicate(timeout=60)
    finally:
        sandbox.kill()
    finish(demo)
    assert not home.key_file.exists(), "AUDITOR_MASTER_KEY was set, yet a key file was created"
    assert list((out / "pdf").glob("*.pdf")), "the PDF report was not rendered"

    saved = sorted(records.iterdir())
    seen_by: dict[str, int] = {}
    for path in saved:
        probes = [item for item in path.read_bytes().split(b"\0") if item.startswith(f"{PROBE}=".encode())]
        assert probes, f"{path.name} was not recorded from a tool child"
        command = probes[0].decode().partition("=")[2]
        seen_by[command] = seen_by.get(command, 0) + 1
    # The fakes really ran in the tool's children (WeasyPrint's lookup when a PDF is rendered).
    assert seen_by.get("report --format pdf", 0) > 0, seen_by
    assert seen_by.get("demo --output", 0) > 0, seen_by
    assert seen_by.get("run --output", 0) > 0, seen_by
    needles = {
        "master key": {master.encode(), base64.urlsafe_b64decode(master).hex().encode()},
        "API key": {API_KEY.encode(), API_KEY.lower().encode()},
        "variable name": {b"AUDITOR_MASTER_KEY=", b"DIGICERT_API_KEY="},
    }
    for path in saved:
        environ = path.read_bytes()
        for label_, forms in needles.items():
            for form in forms:
                assert form not in environ, f"the {label_} reached the child process {path.name}"
