"""The fleet summary: changes seen in several accounts at once, JSON and escaped HTML."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from auditor.fleet import AccountSummary, FleetSummary, cross_account_changes, summary_html, summary_json
from auditor.models import Change, ChangeKind, ChangeSet
from auditor.report import default_templates_dir

T0 = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)


def changes(*items: Change) -> ChangeSet:
    return ChangeSet(from_snapshot=1, to_snapshot=2, changes=items)


def made_admin(email: str, user_id: int = 5) -> Change:
    return Change(ChangeKind.ROLE, user_id, email, before="Standard User", after="Administrator",
                  escalation=True, became_admin=True)


def test_the_same_person_made_administrator_in_three_accounts_is_one_row() -> None:
    found = cross_account_changes({
        "de": changes(made_admin("Eve@Example.com")),
        "fr": changes(made_admin("eve@example.com", user_id=77)),
        "uk": changes(made_admin("eve@example.com"), Change(ChangeKind.SIGNED_IN, 9, "x@example.com")),
        "us": None,
        "jp": changes(made_admin("someone-else@example.com")),
    })
    assert [(c.change, c.accounts) for c in found] == [("made Administrator", ("de", "fr", "uk"))]


def test_a_change_in_one_account_only_is_not_cross_account() -> None:
    assert cross_account_changes({"de": changes(made_admin("eve@example.com")), "fr": changes()}) == ()


def test_json_and_html_show_every_account_and_escape_what_came_from_the_api() -> None:
    summary = FleetSummary(
        generated_at=T0,
        accounts=(
            AccountSummary(connection="de", ok=True, account_name="<script>alert(1)</script>", account_id=1,
                           users=3, administrators=1, findings={"critical": 1, "high": 0, "medium": 0, "low": 0,
                                                                 "info": 0},
                           review="overdue", last_successful_run=T0, snapshot_id=4),
            AccountSummary(connection="fr", ok=False, error="CertCentral answered 503."),
        ),
        cross_account=tuple(cross_account_changes({"de": changes(made_admin("eve@example.com")),
                                                   "fr": changes(made_admin("eve@example.com"))})),
    )
    document = json.loads(summary_json(summary))
    assert [a["status"] for a in document["accounts"]] == ["ok", "failed"]
    assert document["failed"] == ["fr"]
    assert document["cross_account_changes"] == [
        {"email": "eve@example.com", "change": "made Administrator", "accounts": ["de", "fr"]}
    ]
    html = summary_html(summary, templates_dir=default_templates_dir())
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "failed: CertCentral answered 503." in html and "never" in html
    assert "eve@example.com" in html


def test_a_person_who_is_administrator_in_two_accounts_is_listed_once() -> None:
    from auditor.fleet import shared_administrators

    found = shared_administrators({"corp": ["Tom@Example.com", "a@example.com"], "sub": ["tom@example.com"],
                                   "other": ["b@example.com"]})
    assert [(s.email, s.accounts) for s in found] == [("Tom@Example.com", ("corp", "sub"))]
