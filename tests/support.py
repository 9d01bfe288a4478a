"""Test helpers: an isolated auditor installation and the real CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass
class AuditorHome:
    """An isolated installation: data directory and master key file under tmp_path."""

    data_dir: Path
    key_file: Path

    @property
    def env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith(("AUDITOR_", "DIGICERT_"))}
        env.update(
            {
                "AUDITOR_HOME": str(self.data_dir),
                "AUDITOR_MASTER_KEY_FILE": str(self.key_file),
                "PYTHONPATH": str(REPO),
            }
        )
        return env

    def run(
        self,
        *args: str,
        stdin: str | None = None,
        extra_env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        """Run the real ``auditor`` CLI in a subprocess, as a user's shell would."""
        env = self.env
        if extra_env:
            env.update(extra_env)
        return subprocess.run(
            [sys.executable, "-m", "auditor", *args],
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            env=env,
            cwd=cwd or self.data_dir.parent,
            timeout=timeout,
            check=False,
        )


def all_written_bytes(*roots: Path) -> Iterator[tuple[Path, bytes]]:
    """Every file under the given roots, for scanning what the tool wrote."""
    for root in roots:
        if root.is_file():
            yield root, root.read_bytes()
            continue
        for path in sorted(root.rglob("*")):
            if path.is_file():
                yield path, path.read_bytes()
