"""Re-performance of a bundle: re-derive its views from the raw pages and recorded inputs (issue 12 §5).

What is **re-derived from primary evidence**: the users (from the raw ``/user``, service-user and
``/user/{id}`` pages, parsed by ``User.from_api`` as a pull does), and from them the snapshot,
the users roster, the changes and the findings, by the same functions ``auditor export`` uses.

What is a **recorded input** (``evidence/rule-inputs.json``, role ``recorded-input``): what the
rules used that the raw pages do not hold: the pull's provenance, the configuration (profile,
thresholds, rule settings, exceptions), first-seen history, attestations, the previous snapshot,
``is_saml_sso_only`` values reused from earlier pulls, the evaluation time and the export time.
A re-run with ``--previous`` re-derives the previous snapshot from that bundle's raw pages too.

This module holds the format of the recorded inputs, the parsing of raw pages and the comparison
(each difference names the file, the row and the field); ``rederive.py`` runs them over a bundle,
with the rules ``auditor.pipeline.reperform_evidence`` passes in.

(Just over 500 lines: re-deriving each view sits next to the comparison that reports it.)
"""

from __future__ import annotations

import csv
import dataclasses
import enum
import hashlib
import io
import json
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

from auditor import __version__
from auditor.evidence.layout import load_json
from auditor.models import RawPage, Snapshot, UserHistory

__all__ = [
    "RULE_INPUTS_FORMAT",
    "Difference",
    "Reperformance",
    "RuleInputs",
    "compare_member",
    "decode",
    "encode",
    "format_reperformance",
    "parse_rule_inputs",
    "rule_inputs_json",
]

RULE_INPUTS_FORMAT = "certcentral-auditor-rule-inputs/1"
_T = TypeVar("_T")

RE_DERIVED = (
    "evidence/snapshot.json (users parsed from the raw pages; provenance recorded)",
    "views/users.csv",
    "views/findings.json, views/findings.csv",
    "views/changes.json, views/changes.csv",
    "views/exceptions.json, views/exceptions.csv",
    "views/attestations.json, views/attestations.csv",
    "views/access-review.xlsx (cell by cell)",
    "standards/oscal/: the OSCAL assessment plan, results and POA&M",
)
RECORDED = (
    "pull provenance (times, counts, notes, page digests: checked against the raw pages)",
    "configuration: profile, thresholds, rule settings, exceptions",
    "first-seen history, attestations",
    "the identity source: its files' names, SHA-256, rows and mapping, and the records the users matched",
    "the previous snapshot (re-derived from its raw pages when given with --previous)",
    "is_saml_sso_only reused from earlier pulls",
    "evaluation time and export time",
)


# --- a generic, typed JSON form of the domain dataclasses ------------------------------------


def encode(value: Any) -> Any:
    """Dataclasses, enums, datetimes (full precision), paths and tuples as plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {item.name: encode(getattr(value, item.name)) for item in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, Mapping):
        return [[encode(key), encode(item)] for key, item in value.items()]
    if isinstance(value, list | tuple | set | frozenset):
        return [encode(item) for item in value]
    return value


def decode(kind: Any, value: Any) -> Any:
    """The inverse of :func:`encode` for a type hint; ValueError names what does not fit."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return decode(option, value)
            except (ValueError, TypeError) as exc:
                errors.append(str(exc))
        raise ValueError("; ".join(errors) or f"{value!r} does not fit {kind}")
    if origin is tuple:
        args = typing.get_args(kind)
        if not isinstance(value, list):
            raise ValueError(f"expected a list, got {type(value).__name__}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(decode(args[0], item) for item in value)
        if len(args) != len(value):
            raise ValueError(f"expected {len(args)} items, got {len(value)}")
        return tuple(decode(arg, item) for arg, item in zip(args, value, strict=True))
    if origin in (list, set, frozenset):
        if not isinstance(value, list):
            raise ValueError(f"expected a list, got {type(value).__name__}")
        (item_type,) = typing.get_args(kind)
        return origin(decode(item_type, item) for item in value)
    if origin is typing.Literal:
        if value not in typing.get_args(kind):
            raise ValueError(f"{value!r} is not one of {typing.get_args(kind)}")
        return value
    if origin is dict:
        key_type, value_type = typing.get_args(kind)
        if not isinstance(value, list):
            raise ValueError("expected a list of pairs")
        return {decode(key_type, pair[0]): decode(value_type, pair[1]) for pair in value}
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        if not isinstance(value, dict):
            raise ValueError(f"{kind.__name__}: expected an object")
        hints = typing.get_type_hints(kind)
        names = {item.name for item in dataclasses.fields(kind)}
        unknown = set(value) - names
        if unknown:
            raise ValueError(f"{kind.__name__}: unknown field(s) {', '.join(sorted(unknown))}")
        return kind(**{name: decode(hints[name], item) for name, item in value.items()})
    if kind is datetime:
        if not isinstance(value, str):
            raise ValueError("expected a timestamp")
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError(f"timestamp {value!r} has no time zone")
        return parsed
    if kind is date:
        if not isinstance(value, str):
            raise ValueError("expected a date")
        return date.fromisoformat(value)
    if kind is Path:
        if not isinstance(value, str):
            raise ValueError("expected a path")
        return Path(value)
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return kind(value)
    if kind is bool:
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {value!r}")
        return value
    if kind is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"expected a whole number, got {value!r}")
        return value
    if kind is float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ValueError(f"expected a number, got {value!r}")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise ValueError(f"expected text, got {value!r}")
        return value
    if kind is object or kind is Any:
        return value
    raise ValueError(f"cannot read a {kind!r}")


# --- the recorded inputs ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RuleInputs:
    """``evidence/rule-inputs.json`` read back; ``config`` is decoded by the caller's type."""

    rules_version: str
    tool_version: str
    evaluated_at: datetime
    exported_at: datetime
    snapshot_id: int
    connection: str
    taken_at: datetime
    provenance: Any  # PullProvenance
    previous: Snapshot | None
    history: dict[int, UserHistory]
    attestations: tuple[Any, ...]  # Attestation
    details_reused: dict[int, bool | None]
    config: Any
    #: The identity source's record (``auditor.identity.IdentitySource``, matched records only); None without one.
    identity: Any = None
    #: Access review decisions with their remediation states (absent before issue 14: none).
    reviews: tuple[Any, ...] = ()  # ReviewItem


def rule_inputs_json(
    snapshot: Snapshot,
    *,
    previous: Snapshot | None,
    history: Mapping[int, UserHistory],
    config: Any,
    attestations: Sequence[Any],
    raw_pages: Sequence[RawPage],
    reviews: Sequence[Any] = (),
    evaluated_at: datetime,
    exported_at: datetime,
    rules_version: str,
    identity: Any = None,
) -> bytes:
    """The recorded rule inputs of one export, as deterministic JSON."""
    detail_ids = {_detail_id(page.endpoint) for page in raw_pages} - {None}
    reused = [
        [user.id, user.is_saml_sso_only]
        for user in sorted(snapshot.users, key=lambda u: u.id)
        if snapshot.provenance.details_fetched and user.id not in detail_ids
    ]
    document = {
        "format": RULE_INPUTS_FORMAT,
        "about": {
            "re_derived_from_raw_pages": list(RE_DERIVED),
            "recorded_inputs": list(RECORDED),
        },
        "rules_version": rules_version,
        "tool_version": __version__,
        "evaluated_at": evaluated_at.isoformat(),
        "exported_at": exported_at.isoformat(),
        "snapshot": {
            "id": snapshot.id,
            "connection": snapshot.connection,
            "taken_at": snapshot.taken_at.isoformat(),
            "provenance": encode(snapshot.provenance),
        },
        "previous_snapshot": encode(previous) if previous is not None else None,
        "history": [encode(history[user_id]) for user_id in sorted(history)],
        "attestations": [encode(item) for item in sorted(attestations, key=lambda a: (a.made_at, a.id))],
        "details_reused": reused,
        "config": encode(config),
        "identity": encode(identity) if identity is not None else None,
    }
    if reviews:
        document["reviews"] = [encode(item) for item in reviews]
    return (json.dumps(document, sort_keys=True, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def parse_rule_inputs(
    data: bytes,
    *,
    config_type: type[_T],
    provenance_type: type,
    attestation_type: type,
    identity_type: type | None = None,
    review_type: type | None = None,
) -> tuple[RuleInputs, _T]:
    """Read ``evidence/rule-inputs.json``; ValueError says what does not fit."""
    document = load_json(data, max_depth=64)
    if not isinstance(document, dict) or document.get("format") != RULE_INPUTS_FORMAT:
        raise ValueError(f"not a {RULE_INPUTS_FORMAT} document")
    try:
        snapshot = document["snapshot"]
        history = [decode(UserHistory, item) for item in document["history"]]
        config = decode(config_type, document["config"])
        inputs = RuleInputs(
            rules_version=decode(str, document["rules_version"]),
            tool_version=decode(str, document["tool_version"]),
            evaluated_at=decode(datetime, document["evaluated_at"]),
            exported_at=decode(datetime, document["exported_at"]),
            snapshot_id=decode(int, snapshot["id"]),
            connection=decode(str, snapshot["connection"]),
            taken_at=decode(datetime, snapshot["taken_at"]),
            provenance=decode(provenance_type, snapshot["provenance"]),
            previous=decode(Snapshot | None, document["previous_snapshot"]),
            history={item.user_id: item for item in history},
            attestations=tuple(decode(attestation_type, item) for item in document["attestations"]),
            details_reused={decode(int, pair[0]): decode(bool | None, pair[1]) for pair in document["details_reused"]},
            config=config,
            identity=decode(identity_type, document["identity"])
            if identity_type is not None and document.get("identity") is not None
            else None,
            reviews=tuple(decode(review_type, item) for item in document.get("reviews", []))
            if review_type is not None
            else (),
        )
    except (KeyError, TypeError, IndexError) as exc:
        raise ValueError(f"missing or malformed field ({exc})") from exc
    return inputs, config


# --- what the raw pages say beyond the users (the users are parsed by the client's own parser) --


def key_user_id_from_pages(pages: Sequence[RawPage]) -> int | None:
    """The id of the user the pull's key belongs to, from the snapshot's ``GET /user/me`` page.

    The rules name that user as "the audit key's user" instead of flagging it; re-performance
    reads it from the primary evidence, as the pull stored it.
    """
    for page in pages:
        if page.endpoint != "/user/me" or page.status != 200:
            continue
        try:
            data = json.loads(page.body)
        except (ValueError, RecursionError):
            return None
        value = data.get("id") if isinstance(data, dict) else None
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    return None


def _detail_id(endpoint: str) -> int | None:
    path = endpoint.split("?", 1)[0]
    tail = path.removeprefix("/user/")
    return int(tail) if path.startswith("/user/") and tail.isdigit() else None


# --- comparing what was shipped with what was re-derived ----------------------------------------


@dataclass(frozen=True, slots=True)
class Difference:
    """One place where a shipped view disagrees with its re-derivation."""

    file: str
    row: str
    field: str
    shipped: str
    rederived: str

    def __str__(self) -> str:
        return (
            f"{self.file}: {self.row}, field {self.field}: the bundle has {self.shipped}, "
            f"re-derived {self.rederived}"
        )


@dataclass(frozen=True, slots=True)
class Reperformance:
    """The verdict of ``verify --reperform``."""

    differences: tuple[Difference, ...]
    checked: tuple[str, ...]
    notes: tuple[str, ...] = ()
    error: str = ""
    recorded: tuple[str, ...] = field(default=RECORDED)

    @property
    def ok(self) -> bool:
        return not self.differences and not self.error


def _short(value: Any) -> str:
    if isinstance(value, datetime):  # an XLSX date cell
        value = value.isoformat(timespec="seconds")
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def compare_member(path: str, shipped: bytes, rederived: bytes) -> list[Difference]:
    """Where ``shipped`` and ``rederived`` differ, by row and field (first few differences)."""
    if shipped == rederived:
        return []
    if path.endswith(".json"):
        try:
            left, right = json.loads(shipped), json.loads(rederived)
        except (ValueError, RecursionError):
            return [Difference(path, "the file", "(bytes)", "other bytes", "these bytes")]
        found: list[Difference] = []
        _walk_json(path, "", left, right, found)
        return found[:20] or [Difference(path, "the file", "(formatting)", "other bytes", "canonical JSON")]
    if path.endswith(".csv"):
        return _compare_csv(path, shipped, rederived)
    if path.endswith(".xlsx"):
        return _compare_xlsx(path, shipped, rederived)
    return [Difference(path, "the file", "(bytes)", "other bytes", "these bytes")]


def _row_label(where: str, index: int, item: Any) -> str:
    label = f"{where}[{index}]"
    if isinstance(item, dict):
        for key in ("id", "user_id", "rule", "rule_id"):
            if key in item:
                label += f" ({key} {item[key]})"
                break
    return label


def _walk_json(path: str, where: str, left: Any, right: Any, found: list[Difference]) -> None:
    if len(found) >= 20 or left == right:
        return
    if isinstance(left, dict) and isinstance(right, dict):
        for key in sorted(set(left) | set(right)):
            if left.get(key) != right.get(key):
                if isinstance(left.get(key), dict | list) and isinstance(right.get(key), dict | list):
                    _walk_json(path, f"{where}.{key}" if where else key, left.get(key), right.get(key), found)
                else:
                    row, _, field_name = (f"{where}.{key}" if where else key).rpartition(".")
                    found.append(
                        Difference(path, row or "(top level)", field_name, _short(left.get(key)),
                                   _short(right.get(key)))
                    )
        return
    if isinstance(left, list) and isinstance(right, list):
        for index in range(max(len(left), len(right))):
            a = left[index] if index < len(left) else None
            b = right[index] if index < len(right) else None
            if a == b:
                continue
            label = _row_label(where, index, a if a is not None else b)
            if isinstance(a, dict) and isinstance(b, dict):
                for key in sorted(set(a) | set(b)):
                    if a.get(key) != b.get(key):
                        found.append(Difference(path, label, key, _short(a.get(key)), _short(b.get(key))))
            else:
                found.append(Difference(path, label, "(row)", _short(a), _short(b)))
            if len(found) >= 20:
                return
        return
    row, _, field_name = where.rpartition(".")
    found.append(Difference(path, row or "(top level)", field_name or "(value)", _short(left), _short(right)))


def _compare_csv(path: str, shipped: bytes, rederived: bytes) -> list[Difference]:
    def rows(data: bytes) -> list[list[str]]:
        return list(csv.reader(io.StringIO(data.decode("utf-8-sig", errors="replace"))))

    left, right = rows(shipped), rows(rederived)
    header = right[0] if right else []
    found: list[Difference] = []
    for index in range(max(len(left), len(right))):
        a = left[index] if index < len(left) else []
        b = right[index] if index < len(right) else []
        if a == b:
            continue
        for column in range(max(len(a), len(b))):
            x = a[column] if column < len(a) else None
            y = b[column] if column < len(b) else None
            if x != y:
                name = header[column] if column < len(header) else f"column {column + 1}"
                found.append(Difference(path, f"row {index + 1}", name, _short(x), _short(y)))
        if len(found) >= 20:
            break
    return found or [Difference(path, "the file", "(bytes)", "other bytes", "these bytes")]


def _compare_xlsx(path: str, shipped: bytes, rederived: bytes) -> list[Difference]:
    from openpyxl import load_workbook  # only re-performance pays for it

    try:
        left = load_workbook(io.BytesIO(shipped), read_only=True)
        right = load_workbook(io.BytesIO(rederived), read_only=True)
    except Exception as exc:
        return [Difference(path, "the workbook", "(file)", f"unreadable ({type(exc).__name__})", "a workbook")]
    found: list[Difference] = []
    if left.sheetnames != right.sheetnames:
        return [Difference(path, "the workbook", "sheets", _short(left.sheetnames), _short(right.sheetnames))]
    for name in right.sheetnames:
        a_rows = [tuple(cell for cell in row) for row in left[name].iter_rows(values_only=True)]
        b_rows = [tuple(cell for cell in row) for row in right[name].iter_rows(values_only=True)]
        header = b_rows[0] if b_rows else ()
        for index in range(max(len(a_rows), len(b_rows))):
            a = a_rows[index] if index < len(a_rows) else ()
            b = b_rows[index] if index < len(b_rows) else ()
            for column in range(max(len(a), len(b))):
                x = a[column] if column < len(a) else None
                y = b[column] if column < len(b) else None
                if x != y:
                    label = str(header[column]) if column < len(header) else f"column {column + 1}"
                    found.append(Difference(f"{path} sheet {name}", f"row {index + 1}", label, _short(x), _short(y)))
                    if len(found) >= 20:
                        return found
    return found


def page_digest_differences(provenance: Any, pages: Sequence[RawPage]) -> list[Difference]:
    """The recorded page digests must be the raw pages' own (endpoint and SHA-256, in order)."""
    recorded = [list(pair) for pair in provenance.page_digests]
    actual = [[page.endpoint, hashlib.sha256(page.body).hexdigest()] for page in pages]
    if recorded == actual:
        return []
    found: list[Difference] = []
    _walk_json("evidence/rule-inputs.json", "snapshot.provenance.page_digests", recorded, actual, found)
    return found


def format_reperformance(result: Reperformance) -> str:
    lines = [f"Re-performance: {'PASSED' if result.ok else 'FAILED'}"]
    if result.error:
        lines.append(f"  {result.error}")
    if result.checked:
        lines.append("  Re-derived and compared: " + ", ".join(result.checked))
    lines.append("  Taken as recorded (evidence/rule-inputs.json): " + "; ".join(result.recorded))
    lines.extend(f"  Note: {note}" for note in result.notes)
    for difference in result.differences:
        lines.append(f"  DIFF {difference}")
    return "\n".join(lines) + "\n"
