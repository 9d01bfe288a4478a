"""Where a command's data lives and what time it is: the :class:`Workspace`, and its store."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditor.config import load_config
from auditor.credentials import MasterKey
from auditor.models import Operator, utc_now
from auditor.store import LockTimeouts, Store, sealed_secrets_exist

if TYPE_CHECKING:
    from auditor.config import AuditConfig


@dataclass(frozen=True)
class Workspace:
    """Where the tool keeps its data and how it tells time; built by the CLI from env and flags."""

    data_dir: Path
    master_key_file: Path
    master_key_env: str | None = field(default=None, repr=False)
    clock: Callable[[], datetime] = utc_now
    config_path: Path | None = None
    #: Extra places to look for auditor.toml (the CLI passes the working directory).
    config_search_dirs: tuple[Path, ...] = ()
    #: An httpx transport for the client (tests and the in-process demo); None = real network.
    transport: Any = None
    #: Extra CertCentralClient options from the CLI (retry_attempts, timeout, ...).
    client_options: Mapping[str, Any] = field(default_factory=dict)
    #: Who runs the tool (OS account, host, command line), gathered by the CLI; recorded with each pull.
    operator: Operator | None = None
    #: Where one-off notices go (the CLI prints them on stderr): e.g. a store tagged on first use.
    notice: Callable[[str], None] = field(default=lambda _message: None, repr=False, compare=False)
    #: How long a pull and an export wait for the connection's lock (in-process tests shorten it).
    lock_timeouts: LockTimeouts = field(default_factory=LockTimeouts)

    def now(self) -> datetime:
        return self.clock()

    @contextmanager
    def store(self, already_open: Store | None = None) -> Iterator[Store]:
        """The open store, its records checked against the master key's tags on every read.

        Each command opens it once (opening runs the database's integrity check) and passes it
        through its steps: given ``already_open``, that store is yielded and left open for the
        caller that opened it. A store written before tags existed is tagged here once (after
        checking that the key opens its sealed secrets) and the notice says so.
        """
        if already_open is not None:
            yield already_open
            return
        master = self.master_key()
        store = Store.open(self.data_dir, clock=self.clock, master_key=master)
        try:
            if store.untagged:
                check_master_key(store, master)
                tagged = store.tag_existing_records()
                if tagged:
                    self.notice(
                        f"Authenticated {tagged} existing records of {store.path} with tags under the master key "
                        "(done once, on first use of this version); from now on a record changed outside "
                        "certcentral-auditor is refused. If you see this again for the same data directory, "
                        "the database was rolled back or altered: restore it from a backup."
                    )
            yield store
        finally:
            store.close()

    def master_key(self) -> MasterKey:
        """The master key; never a new one while the database holds secrets sealed under one."""
        sealed = False
        if not (self.master_key_env and self.master_key_env.strip()) and not self.master_key_file.exists():
            sealed = sealed_secrets_exist(self.data_dir)
        return MasterKey.load_or_create(
            env_value=self.master_key_env, key_file=self.master_key_file, sealed_secrets_exist=sealed
        )

    def load_config(self, frameworks: Sequence[str] | None = None) -> AuditConfig:
        return load_config(
            self.config_path,
            search_dirs=(*self.config_search_dirs, self.data_dir),
            frameworks=frameworks,
        )


def check_master_key(store: Store, master: MasterKey) -> None:
    """Refuse a master key that cannot open the secrets already stored here (CredentialsError).

    Called before a signing key may be created: a new key sealed under the wrong master key
    would be one the right master key can never open.
    """
    for record in store.list_connections()[:1]:
        master.open_api_key(record.name, record.encrypted_key)
    for key in store.signing_keys()[:1]:
        master.open_signing_key(key.encrypted_private_key)
