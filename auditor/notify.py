"""Alerts on change: what needs a human since the previous run, the message, its delivery, the state between runs.

A run compares what it found with what the previous run of the same connection found (kept in
``<data dir>/notify/<connection>.json``, see :class:`NotifyState`) and lists only what needs
attention and is new: a new or escalated administrator, a new high or critical finding, a finding
that re-opened, an overdue revocation, a review that became overdue, a pull or verification
failure. A message names each item (who, what, since when) and the run's own output files; it
never holds a secret (no key, no notification URL) and links nothing else. Delivery goes through
apprise (e-mail, Slack, Teams, JSON webhooks, ...); an item that could not be delivered stays in
the state and is sent again by the next run.

Why a file and not a store table: the state is not evidence (nothing here is signed or
re-performed), it is per connection and small, and a lost file only means the next run treats
today's open findings as new (one extra message), never a lost snapshot. Written atomically
(``atomic.write_bytes_atomic``) into an owner-only directory.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from auditor.atomic import make_private_dirs, write_bytes_atomic
from auditor.errors import AuditorError, ConfigurationError, StoreError
from auditor.labels import iso, minute
from auditor.models import ChangeKind, ChangeSet, Finding, FindingsResult, Severity, Snapshot

STATE_FORMAT = "certcentral-auditor-notify-state/1"
STATE_DIR = "notify"


class NotifyOn(enum.StrEnum):
    """When ``auditor run --notify`` sends: on a change that needs attention (default), or every run."""

    CHANGE = "change"
    #: A heartbeat: every run sends, saying "nothing new" when nothing is.
    ALWAYS = "always"


class AttentionKind(enum.StrEnum):
    """What needs a human; each kind is one line in a message."""

    RUN_FAILED = "run-failed"
    NEW_ADMINISTRATOR = "new-administrator"
    ESCALATED_ADMINISTRATOR = "escalated-administrator"
    NEW_FINDING = "new-finding"
    REOPENED_FINDING = "reopened-finding"
    REVOCATION_OVERDUE = "revocation-overdue"
    REVIEW_OVERDUE = "review-overdue"


KIND_LABELS: dict[AttentionKind, str] = {
    AttentionKind.RUN_FAILED: "Run failed",
    AttentionKind.NEW_ADMINISTRATOR: "New privileged user",
    AttentionKind.ESCALATED_ADMINISTRATOR: "Privilege escalated",
    AttentionKind.NEW_FINDING: "New finding",
    AttentionKind.REOPENED_FINDING: "Finding re-opened",
    AttentionKind.REVOCATION_OVERDUE: "Revocation overdue",
    AttentionKind.REVIEW_OVERDUE: "Review overdue",
}

#: Findings of these rules are their own kind (any severity): they are about the review process.
_PROCESS_RULES = {
    "revocation-overdue": AttentionKind.REVOCATION_OVERDUE,
    "review-overdue": AttentionKind.REVIEW_OVERDUE,
}


@dataclass(frozen=True, slots=True)
class AttentionItem:
    """One thing a human should look at: in which account, who, what, since when."""

    kind: AttentionKind
    connection: str
    who: str
    what: str
    since: datetime
    #: Stable identity, so an item is sent once (and re-sent only while undelivered).
    key: str

    def line(self) -> str:
        who = f"{self.who}: " if self.who else ""
        return f"[{self.connection}] {KIND_LABELS[self.kind]}: {who}{self.what} (since {minute(self.since)})"

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind.value, "connection": self.connection, "who": self.who, "what": self.what,
                "since": iso(self.since), "key": self.key}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AttentionItem:
        return cls(kind=AttentionKind(data["kind"]), connection=str(data["connection"]), who=str(data["who"]),
                   what=str(data["what"]), since=datetime.fromisoformat(data["since"]), key=str(data["key"]))


@dataclass(frozen=True)
class NotifyState:
    """What the previous run of one connection left for the next: open findings, failure, undelivered items."""

    connection: str
    #: The last run's snapshot, the base for "new administrator" when pulls happened in between.
    snapshot_id: int | None = None
    #: Active findings of the last run: key -> when first seen.
    open: dict[str, datetime] = field(default_factory=dict)
    #: Findings seen open once and closed since (a re-appearance is "re-opened").
    closed: frozenset[str] = frozenset()
    #: The last run's failure (error class name), or "" when it succeeded.
    failed: str = ""
    #: Items a run could not deliver; the next run sends them again.
    pending: tuple[AttentionItem, ...] = ()
    last_run_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "connection": self.connection,
            "snapshot_id": self.snapshot_id,
            "open": {key: iso(at) for key, at in sorted(self.open.items())},
            "closed": sorted(self.closed),
            "failed": self.failed,
            "pending": [item.to_json() for item in self.pending],
            "last_run_at": iso(self.last_run_at) if self.last_run_at else None,
        }


def state_path(data_dir: Path, connection: str) -> Path:
    return Path(data_dir) / STATE_DIR / f"{connection}.json"


def load_state(data_dir: Path, connection: str) -> NotifyState:
    """The connection's state, or an empty one before its first notifying run."""
    path = state_path(data_dir, connection)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return NotifyState(connection=connection)
    except OSError as exc:
        raise StoreError(f"The notification state {path} could not be read: {exc.strerror or exc}.",
                         hint="Fix its permissions, or delete it (the next run then re-sends today's items).") from exc
    try:
        data = json.loads(text)
        if data.get("format") != STATE_FORMAT:
            raise ValueError(f"format {data.get('format')!r}")
        last = data.get("last_run_at")
        return NotifyState(
            connection=connection,
            snapshot_id=data.get("snapshot_id"),
            open={str(k): datetime.fromisoformat(v) for k, v in data["open"].items()},
            closed=frozenset(str(k) for k in data["closed"]),
            failed=str(data.get("failed") or ""),
            pending=tuple(AttentionItem.from_json(item) for item in data["pending"]),
            last_run_at=datetime.fromisoformat(last) if last else None,
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StoreError(f"The notification state {path} is not readable ({exc}).",
                         hint="Delete it; the next `auditor run --notify URL` starts it again "
                         "(and re-sends the items open today).") from exc


def save_state(data_dir: Path, state: NotifyState) -> Path:
    path = state_path(data_dir, state.connection)
    try:
        make_private_dirs(path.parent)
        write_bytes_atomic(path, (json.dumps(state.to_json(), indent=1, sort_keys=True) + "\n").encode("utf-8"))
    except OSError as exc:
        raise StoreError(f"The notification state {path} could not be written: {exc.strerror or exc}.",
                         hint="Check that the data directory is writable.") from exc
    return path


def finding_key(finding: Finding) -> str:
    """One finding across runs: its rule and user (or the account)."""
    return f"{finding.rule_id}:{finding.user_id if finding.user_id is not None else 'account'}"


@dataclass(frozen=True)
class Assessment:
    """A run's items needing attention and the state to keep once they are delivered."""

    items: tuple[AttentionItem, ...]
    state: NotifyState


def assess_run(
    state: NotifyState,
    *,
    snapshot: Snapshot,
    changes: ChangeSet | None,
    findings: FindingsResult,
) -> Assessment:
    """Compare a successful run with the previous one: what is new and needs a human."""
    connection = state.connection
    taken = snapshot.taken_at
    items: list[AttentionItem] = []
    if changes is not None:
        for change in changes.changes:
            if not (change.became_admin or change.escalation):
                continue
            kind = AttentionKind.NEW_ADMINISTRATOR if change.kind is ChangeKind.ADDED else \
                AttentionKind.ESCALATED_ADMINISTRATOR
            roles = change.after or "a privileged role"
            what = f"joined with {roles}" if kind is AttentionKind.NEW_ADMINISTRATOR else \
                f"roles {change.before or 'none'} -> {roles}"
            items.append(AttentionItem(kind, connection, change.email, what, taken,
                                       key=f"change:{snapshot.id}:{change.user_id}:{change.kind.value}"))
    open_now: dict[str, datetime] = {}
    for finding in findings.active:
        key = finding_key(finding)
        first_seen = state.open.get(key, taken)
        open_now.setdefault(key, first_seen)
        if key in state.open:
            continue
        what = f"{finding.severity.value} {finding.rule_id}: {finding.title}"
        who = finding.email
        if finding.rule_id in _PROCESS_RULES:
            items.append(AttentionItem(_PROCESS_RULES[finding.rule_id], connection, who, what, taken,
                                       key=f"finding:{key}:{snapshot.id}"))
        elif key in state.closed:
            items.append(AttentionItem(AttentionKind.REOPENED_FINDING, connection, who, what, taken,
                                       key=f"finding:{key}:{snapshot.id}"))
        elif finding.severity.at_least(Severity.HIGH):
            items.append(AttentionItem(AttentionKind.NEW_FINDING, connection, who, what, taken,
                                       key=f"finding:{key}:{snapshot.id}"))
    closed = (state.closed | set(state.open)) - set(open_now)
    new_state = replace(state, snapshot_id=snapshot.id, open=open_now, closed=frozenset(closed), failed="")
    return Assessment(items=tuple(items), state=new_state)


def assess_failure(state: NotifyState, error: AuditorError, *, now: datetime) -> Assessment:
    """A failed run: an item when the previous run did not fail the same way (a lasting failure is sent once)."""
    kind = type(error).__name__
    items: tuple[AttentionItem, ...] = ()
    if state.failed != kind:
        first_line = error.message.splitlines()[0] if error.message else kind
        items = (AttentionItem(AttentionKind.RUN_FAILED, state.connection, "", first_line, now,
                               key=f"failed:{kind}:{iso(now)}"),)
    return Assessment(items=items, state=replace(state, failed=kind))


@dataclass(frozen=True)
class Message:
    title: str
    body: str


def compose(
    items: Sequence[AttentionItem],
    *,
    heartbeat: bool,
    now: datetime,
    connections: Sequence[str],
    outputs: Iterable[Path] = (),
) -> Message | None:
    """The one message of a run: every item, worst first, and the run's own output files; None if nothing to send."""
    if not items and not heartbeat:
        return None
    order = list(AttentionKind)
    ordered = sorted(items, key=lambda item: (order.index(item.kind), item.connection, item.who, item.what))
    accounts = ", ".join(connections)
    if ordered:
        title = f"certcentral-auditor: {len(ordered)} item(s) need attention ({accounts})"
    else:
        title = f"certcentral-auditor: run completed, nothing new ({accounts})"
    lines = [f"Run at {minute(now)} of {accounts}."]
    if ordered:
        lines.append("")
        lines.extend(f"- {item.line()}" for item in ordered)
    else:
        lines.append("Nothing needs attention since the previous run.")
    paths = [str(path) for path in outputs]
    if paths:
        lines.append("")
        lines.append("This run's outputs (on the machine that ran it):")
        lines.extend(f"- {path}" for path in paths)
    return Message(title=title, body=_scrub("\n".join(lines)))


#: Anything shaped like a URL with credentials or a token-looking string is cut from a message body.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")


def _scrub(text: str) -> str:
    """No URL leaves in a message (a notification URL holds its service's token): only local paths are named."""
    return _URL.sub("<link removed>", text)


def redact_url(url: str) -> str:
    """A notification URL as messages may show it: the scheme, and the host when it is one.

    Its user, password, path and query hold tokens; so does the "host" of many apprise schemes
    (``slack://TokenA/TokenB/TokenC``): only a name with a dot or port, or ``localhost``, is shown.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "<notification URL>"
    host = rest.split("?", 1)[0].split("#", 1)[0].split("/", 1)[0].rsplit("@", 1)[-1]
    if not (host == "localhost" or "." in host or ":" in host):
        return f"{scheme}://…"
    return f"{scheme}://{host}/…"


#: Sends one message to one URL; True when delivered. Tests inject their own; the default is apprise.
Sender = Callable[[str, Message], bool]


def _apprise() -> Any:
    """apprise, imported when first needed: only runs that notify load it.

    Its plug-ins import the standard library's ``imghdr``, deprecated since Python 3.11: that
    import-time warning is apprise's, not a fault of the run, so it is silenced here only.
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import apprise

        apprise.Apprise().add("json://localhost")  # loads the plug-ins inside the filter
    return apprise


def apprise_sender(url: str, message: Message) -> bool:
    """Deliver through apprise: plain text, one message per URL."""
    apprise = _apprise()
    notifier = apprise.Apprise()
    if not notifier.add(url):
        return False
    return bool(notifier.notify(title=message.title, body=message.body, body_format=apprise.NotifyFormat.TEXT))


def check_urls(urls: Sequence[str]) -> None:
    """Refuse a URL apprise does not know before anything is pulled (exit 2), naming only its scheme."""
    apprise = _apprise()
    for url in urls:
        if not apprise.Apprise().add(url):
            raise ConfigurationError(
                f"The notification URL {redact_url(url)} is not one apprise can send to.",
                hint="Check --notify URL (or notify = [...] in auditor.toml): e.g. mailto://user:pass@host, "
                "json://host/path or slack://...; the schemes are listed at https://github.com/caronc/apprise/wiki.",
            )


def deliver(urls: Sequence[str], message: Message, *, sender: Sender = apprise_sender) -> tuple[str, ...]:
    """Send to every URL; the redacted URLs that failed (empty: all delivered)."""
    failed: list[str] = []
    for url in urls:
        try:
            ok = sender(url, message)
        except Exception:  # any plug-in failure is "not delivered", never a crash of the run
            ok = False
        if not ok:
            failed.append(redact_url(url))
    return tuple(failed)
