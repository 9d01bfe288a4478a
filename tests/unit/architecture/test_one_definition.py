"""Rules that used to be written twice now have one definition (issue 13).

Privileged-role matching (diff, rules, reviews), the order of findings (rules engine, report,
exports) and the partial-view limitation (a structured field, not words in the pull notes).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import factories
from report_fixtures import make_report_data

from auditor.config import default_config
from auditor.models import FindingsResult, KeyOwner, PrivilegedRoles, Role, Severity, Snapshot, User
from auditor.report._view import Tuning, build_context
from auditor.review import is_privileged
from auditor.rules import evaluate, finding_sort_key

NOW = datetime(2026, 11, 1, tzinfo=UTC)
#: Role id 1 is CertCentral's Administrator, whatever name the API sends with it.
RENAMED_ADMIN = Role(id=1, name="Account Admin")
STANDARD = Role(id=5, name="Standard User")
#: What the client notes when CertCentral will not list service users to this key.
SERVICE_USERS_NOTE = (
    'Service users were NOT read (GET /user/api-only answered 403 access_denied: CertCentral\'s answers for "not '
    'available to this key"). Service users are unknown, not absent, so this snapshot is incomplete and never a '
    "diff baseline. Use a View Only key linked to an unrestricted Administrator."
)


def make_user(user_id: int, *, roles: tuple[Role, ...] = (STANDARD,)) -> User:
    return User(id=user_id, email=f"user{user_id}@example.com", first_name="User", last_name=str(user_id),
                status="active", roles=roles, last_login=NOW - timedelta(days=3))


def test_review_scope_and_rules_agree_on_a_renamed_administrator() -> None:
    user = make_user(1, roles=(RENAMED_ADMIN,))
    privileged = PrivilegedRoles.of(("Administrator",))
    assert privileged.held(user) == ("Account Admin",)
    # Reviews matched by name only, so the campaign's "privileged" scope left this user out.
    assert is_privileged(user, privileged.names)


def test_report_lists_findings_in_the_rules_engine_order() -> None:
    data = make_report_data()
    template = data.findings.findings[0]
    # Catalogue order puts never-signed-in before external-domain; the alphabet does not.
    extra = (
        dataclasses.replace(template, rule_id="external-domain", severity=Severity.MEDIUM, suppressed_by=None),
        dataclasses.replace(template, rule_id="never-signed-in", severity=Severity.MEDIUM, suppressed_by=None),
    )
    engine_order = sorted((*data.findings.findings, *extra), key=finding_sort_key)
    alphabetical = sorted(engine_order, key=lambda f: (f.severity.rank, f.rule_id, f.email.casefold()))
    assert [f.rule_id for f in engine_order] != [f.rule_id for f in alphabetical], "fixture cannot tell them apart"
    data = dataclasses.replace(data, findings=dataclasses.replace(data.findings, findings=tuple(engine_order)))
    rows = build_context(data, mode="html", roster_limit=None, tuning=Tuning())["findings"]
    active = [f for f in engine_order if not f.suppressed]
    assert [(row.rule, row.user_id) for row in rows] == [(f.rule_id, str(f.user_id or "")) for f in active]


def _with_owner(snapshot: Snapshot, *, restricted: bool) -> Snapshot:
    owner = KeyOwner(user_id=9, name="", email="key@example.com", role="Manager", restricted=restricted,
                     divisions=("EU",) if restricted else ())
    return dataclasses.replace(snapshot, provenance=dataclasses.replace(snapshot.provenance, key_owner=owner))


def _limitations(snapshot: Snapshot) -> tuple[str, ...]:
    result: FindingsResult = evaluate(
        snapshot, previous=None, history={}, config=default_config(), attestations=(), now=snapshot.taken_at
    )
    return result.limitations


def test_the_division_view_comes_from_the_key_owner_not_from_note_words() -> None:
    users = [make_user(1)]
    restricted = _with_owner(factories.make_snapshot(users, taken_at=NOW), restricted=True)
    assert any("sees only some divisions" in line for line in _limitations(restricted))
    # A note that mentions divisions is not a restricted key.
    worded = _with_owner(
        factories.make_snapshot(users, taken_at=NOW, notes=("Division names changed during the pull.",)),
        restricted=False,
    )
    assert not any("sees only some divisions" in line for line in _limitations(worded))


def test_a_service_user_refusal_is_not_reported_as_a_partial_view() -> None:
    # The note recommends "an unrestricted Administrator": the report read "restrict" as a restricted key.
    data = make_report_data(complete=False)
    provenance = dataclasses.replace(
        data.snapshot.provenance, notes=(SERVICE_USERS_NOTE,), not_evaluable=("service_users",), endpoints=()
    )
    data = dataclasses.replace(data, snapshot=dataclasses.replace(data.snapshot, provenance=provenance))
    context = build_context(data, mode="html", roster_limit=None, tuning=Tuning())
    assert context["restricted_notes"] == []
    assert SERVICE_USERS_NOTE in context["notes"]
    assert "service users were not read" in context["source"]["result"]
