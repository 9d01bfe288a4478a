"""What a run notifies: only what is new since the previous run, never a secret; the state kept between runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from factories import make_snapshot, make_user

from auditor.errors import ApiUnavailableError, StoreError
from auditor.models import Change, ChangeKind, ChangeSet, Finding, FindingsResult, Severity
from auditor.notify import (
    AttentionKind,
    Message,
    NotifyState,
    assess_failure,
    assess_run,
    compose,
    deliver,
    load_state,
    redact_url,
    save_state,
    state_path,
)

T0 = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)


def finding(rule: str, severity: Severity, user_id: int | None = 7, email: str = "bob@example.com") -> Finding:
    return Finding(rule_id=rule, severity=severity, title=rule.title(), explanation="", remediation="",
                   user_id=user_id, email=email)


def result(*findings: Finding, snapshot_id: int = 1) -> FindingsResult:
    return FindingsResult(snapshot_id=snapshot_id, evaluated_at=T0, profiles=("soc2",), findings=findings)


def snapshot(snapshot_id: int, at: datetime = T0):
    return make_snapshot([make_user(1, last_login=None)], snapshot_id=snapshot_id, taken_at=at, connection="prod")


def kinds(items) -> list[AttentionKind]:
    return [item.kind for item in items]


def test_only_new_high_findings_count_and_a_second_identical_run_has_nothing() -> None:
    findings = result(finding("stale-login", Severity.HIGH), finding("external-domain", Severity.MEDIUM))
    first = assess_run(NotifyState("prod"), snapshot=snapshot(1), changes=None, findings=findings)
    assert kinds(first.items) == [AttentionKind.NEW_FINDING]
    assert first.items[0].who == "bob@example.com" and "stale-login" in first.items[0].what
    second = assess_run(first.state, snapshot=snapshot(2, T0 + timedelta(days=1)), changes=None, findings=findings)
    assert second.items == ()
    assert second.state.open["stale-login:7"] == T0, "first seen stays the first run's time"


def test_a_closed_finding_that_comes_back_is_reopened_whatever_its_severity() -> None:
    low = finding("external-domain", Severity.LOW)
    state = assess_run(NotifyState("prod"), snapshot=snapshot(1), changes=None, findings=result(low)).state
    state = assess_run(state, snapshot=snapshot(2), changes=None, findings=result()).state
    assert "external-domain:7" in state.closed
    back = assess_run(state, snapshot=snapshot(3), changes=None, findings=result(low))
    assert kinds(back.items) == [AttentionKind.REOPENED_FINDING]


def test_overdue_revocation_and_review_are_their_own_items_at_any_severity() -> None:
    findings = result(finding("revocation-overdue", Severity.MEDIUM),
                      finding("review-overdue", Severity.MEDIUM, user_id=None, email=""))
    items = assess_run(NotifyState("prod"), snapshot=snapshot(1), changes=None, findings=findings).items
    assert sorted(kinds(items)) == sorted([AttentionKind.REVOCATION_OVERDUE, AttentionKind.REVIEW_OVERDUE])


def test_new_and_escalated_administrators_come_from_the_changes() -> None:
    changes = ChangeSet(from_snapshot=1, to_snapshot=2, changes=(
        Change(ChangeKind.ADDED, 8, "new@example.com", after="Administrator", escalation=True, became_admin=True),
        Change(ChangeKind.ROLE, 9, "up@example.com", before="Standard User", after="Manager", escalation=True),
        Change(ChangeKind.SIGNED_IN, 10, "quiet@example.com"),
    ))
    items = assess_run(NotifyState("prod"), snapshot=snapshot(2), changes=changes, findings=result()).items
    assert [(i.kind, i.who) for i in items] == [
        (AttentionKind.NEW_ADMINISTRATOR, "new@example.com"),
        (AttentionKind.ESCALATED_ADMINISTRATOR, "up@example.com"),
    ]
    assert "Standard User -> Manager" in items[1].what


def test_a_lasting_failure_is_one_item_and_success_clears_it() -> None:
    error = ApiUnavailableError("CertCentral answered 503 after 6 attempts.\nmore")
    first = assess_failure(NotifyState("prod"), error, now=T0)
    assert kinds(first.items) == [AttentionKind.RUN_FAILED] and first.items[0].what.endswith("attempts.")
    assert assess_failure(first.state, error, now=T0).items == ()
    cleared = assess_run(first.state, snapshot=snapshot(1), changes=None, findings=result()).state
    assert cleared.failed == ""


def test_the_state_round_trips_through_its_file(tmp_path: Path) -> None:
    assessed = assess_run(NotifyState("prod"), snapshot=snapshot(4), changes=None,
                          findings=result(finding("stale-login", Severity.HIGH)))
    state = NotifyState("prod", snapshot_id=4, open=assessed.state.open, closed=frozenset({"x:1"}),
                        failed="ApiUnavailableError", pending=assessed.items, last_run_at=T0)
    save_state(tmp_path, state)
    assert load_state(tmp_path, "prod") == state
    assert load_state(tmp_path, "other") == NotifyState("other")
    state_path(tmp_path, "prod").write_text("{not json", encoding="utf-8")
    with pytest.raises(StoreError, match="not readable") as caught:
        load_state(tmp_path, "prod")
    assert "Delete it" in caught.value.diagnostics()


def test_a_message_names_items_and_local_outputs_but_no_url() -> None:
    items = assess_run(NotifyState("prod"), snapshot=snapshot(1), changes=None,
                       findings=result(finding("stale-login", Severity.CRITICAL,
                                               email="see https://evil.example/x?token=abc"))).items
    message = compose(items, heartbeat=False, now=T0, connections=["prod"], outputs=[Path("/srv/out/r.html")])
    assert message is not None
    assert "1 item(s) need attention" in message.title
    assert "/srv/out/r.html" in message.body and "2026-11-01 06:00" in message.body
    assert "://" not in message.body and "token=abc" not in message.body
    assert compose((), heartbeat=False, now=T0, connections=["prod"]) is None
    heartbeat = compose((), heartbeat=True, now=T0, connections=["prod"])
    assert heartbeat is not None and "nothing new" in heartbeat.title


def test_delivery_reports_failed_urls_redacted_and_survives_a_raising_plugin() -> None:
    def sender(url: str, message: Message) -> bool:
        if "boom" in url:
            raise RuntimeError("plug-in bug")
        return "ok" in url

    urls = ["json://ok.example/hook", "slack://T000/B000/xyzzy", "json://user:pw@boom.example/x?k=v"]
    failed = deliver(urls, Message("t", "b"), sender=sender)
    assert failed == ("slack://…", "json://boom.example/…")
    assert redact_url("mailto://u:pw@mail.example:587?from=a@b.example") == "mailto://mail.example:587/…"


def test_notify_in_auditor_toml_is_a_list_of_urls_never_shown_in_the_config_repr(tmp_path: Path) -> None:
    from auditor.config import load_config
    from auditor.errors import ConfigurationError

    config = tmp_path / "auditor.toml"
    config.write_text('notify = ["json://hooks.example.com/t0ken"]\n', encoding="utf-8")
    loaded = load_config(config, search_dirs=())
    assert loaded.notify == ("json://hooks.example.com/t0ken",)
    assert "t0ken" not in repr(loaded)
    config.write_text('notify = "json://hooks.example.com/x"\n', encoding="utf-8")
    with pytest.raises(ConfigurationError, match="notify"):
        load_config(config, search_dirs=())
