"""Issue 8.1: faults from CertCentral, through the real CLI.

For each fault the pull either completes correctly or stores nothing, exits with the contract's
code, names the cause, and leaves every earlier snapshot (and the diff between them) as it was.
One sandbox (behind a rewriting proxy, for faults the sandbox has no switch for) serves the whole
module; each test starts from a copy of a data directory that already holds two complete pulls.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from support import AuditorHome, Before, RewritingProxy, check_database, json_answer, snapshot_table

from auditor.errors import ExitCode
from auditor.sandbox import Dataset, Faults, SandboxServer

USERS = 300
PAGE_SIZE = 50
#: No sandbox-side rate limit unless a test asks for one: many pulls run back to back here.
CALM = Faults(rate_limits=())


@pytest.fixture(scope="module")
def sandbox_proxy() -> Iterator[tuple[SandboxServer, RewritingProxy]]:
    with SandboxServer(Dataset.generate(USERS, seed=5), faults=CALM) as server, RewritingProxy(
        server.base_url
    ) as proxy:
        yield server, proxy


@pytest.fixture(scope="module")
def template(
    tmp_path_factory: pytest.TempPathFactory, sandbox_proxy: tuple[SandboxServer, RewritingProxy]
) -> Before:
    """A data directory with a connection (through the proxy) and two complete snapshots."""
    _server, proxy = sandbox_proxy
    return Before.pulled_twice(tmp_path_factory.mktemp("faults-template"), proxy.base_url, page_size=PAGE_SIZE)


@pytest.fixture
def prepared(
    tmp_path: Path, template: Before, sandbox_proxy: tuple[SandboxServer, RewritingProxy]
) -> Iterator[Before]:
    """A copy of the template's data directory and master key for one test."""
    server, proxy = sandbox_proxy
    yield template.copy_to(tmp_path)
    server.set_faults(CALM)
    proxy.rewrite = None


def expected_users(server: SandboxServer) -> int:
    dataset = server.dataset
    return len({user["id"] for user in (*dataset.users, *dataset.service_users)})


def pull(home: AuditorHome, *options: str) -> tuple[int, str]:
    result = home.run(*options, "pull", "--page-size", str(PAGE_SIZE))
    return result.returncode, result.stderr


def assert_nothing_stored_and_nothing_lost(before: Before) -> None:
    """The failed pull left no snapshot, and the earlier ones (and their diff) are unchanged."""
    before.assert_nothing_stored()


def latest_provenance(home: AuditorHome) -> dict[str, object]:
    db = sqlite3.connect(f"file:{home.data_dir / 'auditor.db'}?mode=ro", uri=True)
    try:
        [(text,)] = db.execute("SELECT provenance FROM snapshots ORDER BY id DESC LIMIT 1").fetchall()
    finally:
        db.close()
    return dict(json.loads(text))


def assert_complete_pull(before: Before, server: SandboxServer, stderr: str) -> None:
    rows = snapshot_table(before.home)
    assert rows[: len(before.snapshots)] == before.snapshots
    assert len(rows) == len(before.snapshots) + 1, stderr
    assert rows[-1].rstrip().endswith("yes"), rows[-1]
    [*_, (_id, users, _admins, complete)] = check_database(before.home.data_dir)
    assert complete and users == expected_users(server)
    assert before.home.run("diff").returncode == 0


# --- faults the sandbox injects (every answer, or a share of them) ---------------------------


@dataclass(frozen=True)
class Case:
    faults: Faults
    options: tuple[str, ...] = ()
    #: None: the pull must complete; else the exit code and the words that name the cause.
    fails_with: tuple[ExitCode, tuple[str, ...]] | None = None


SANDBOX_CASES = {
    "429-storm": Case(
        Faults(rate_limits=((1, 120.0),), retry_after=0), ("--retries", "3"),
        (ExitCode.CERTCENTRAL_UNAVAILABLE, ("rate limiting", "HTTP 429")),
    ),
    "429-bursts-recover": Case(Faults(rate_limits=((4, 1.0),), retry_after=1)),
    "5xx-bursts-recover": Case(Faults(error_rate=0.25, error_statuses=(500, 502, 503), retry_after=0, seed=1)),
    "500-persistent": Case(
        Faults(error_rate=1.0, error_statuses=(500,)), ("--retries", "2"),
        (ExitCode.CERTCENTRAL_UNAVAILABLE, ("HTTP 500", "after 2 attempts")),
    ),
    "502-persistent": Case(
        Faults(error_rate=1.0, error_statuses=(502,)), ("--retries", "2"),
        (ExitCode.CERTCENTRAL_UNAVAILABLE, ("HTTP 502",)),
    ),
    "503-persistent-html": Case(
        Faults(error_rate=1.0, error_statuses=(503,), non_json_errors=True, retry_after=0), ("--retries", "3"),
        (ExitCode.CERTCENTRAL_UNAVAILABLE, ("HTTP 503", "maintenance")),
    ),
    "html-error-pages-recover": Case(
        Faults(error_rate=0.3, error_statuses=(502, 503), non_json_errors=True, retry_after=0, seed=8)
    ),
    "errors-as-object": Case(
        Faults(error_rate=1.0, error_statuses=(503,), errors_as_object=True, retry_after=0), ("--retries", "2"),
        (ExitCode.CERTCENTRAL_UNAVAILABLE, ("HTTP 503 service_unavailable",)),
    ),
    "timeout": Case(
        Faults(latency_ms=1500), ("--timeout", "0.4", "--retries", "2"),
        (ExitCode.CERTCENTRAL_UNAVAILABLE, ("timed out",)),
    ),
    "reset-mid-body-always": Case(
        Faults(reset_rate=1.0), ("--retries", "2"),
        (ExitCode.CERTCENTRAL_UNAVAILABLE, ("peer closed connection without sending complete message body",)),
    ),
    "reset-mid-body-sometimes": Case(Faults(reset_rate=0.3, seed=2)),
    "truncated-json": Case(
        Faults(truncated_json_rate=1.0), (), (ExitCode.CERTCENTRAL_UNAVAILABLE, ("not JSON",))
    ),
    "empty-200-body": Case(Faults(empty_body_rate=1.0), (), (ExitCode.CERTCENTRAL_UNAVAILABLE, ("empty body",))),
    "page-fails-after-retries": Case(
        Faults(fail_offset=150), ("--retries", "2"),
        (ExitCode.CERTCENTRAL_UNAVAILABLE, ("offset=150", "HTTP 500")),
    ),
}


@pytest.mark.parametrize("name", list(SANDBOX_CASES))
def test_sandbox_fault(name: str, prepared: Before, sandbox_proxy: tuple[SandboxServer, RewritingProxy]) -> None:
    server, _proxy = sandbox_proxy
    case = SANDBOX_CASES[name]
    server.set_faults(case.faults)
    code, stderr = pull(prepared.home, *case.options)
    assert "Traceback" not in stderr
    if case.fails_with is None:
        assert code == ExitCode.OK, stderr
        assert_complete_pull(prepared, server, stderr)
        assert latest_provenance(prepared.home)["retries"] > 0, "the fault never fired"
        return
    exit_code, words = case.fails_with
    assert code == exit_code, stderr
    for word in words:
        assert word in stderr, f"{word!r} not in: {stderr}"
    assert_nothing_stored_and_nothing_lost(prepared)


def test_errors_as_object_on_a_rejected_key_still_says_key_rejected(
    prepared: Before, sandbox_proxy: tuple[SandboxServer, RewritingProxy]
) -> None:
    server, proxy = sandbox_proxy
    server.set_faults(Faults(rate_limits=(), errors_as_object=True))
    result = prepared.home.run(
        "connect", "--connection", "wrong", "--base-url", proxy.base_url, "--key-stdin", stdin="not-a-real-key\n"
    )
    assert result.returncode == ExitCode.KEY_REJECTED, result.stderr
    assert "access_denied_invalid_key" in result.stderr and "Automation" in result.stderr
    assert_nothing_stored_and_nothing_lost(prepared)


# --- faults on one page in the middle of a pull (the rewriting proxy) ------------------------

MID = PAGE_SIZE * 2  # the third page of GET /user


Answer = tuple[int, dict[str, str], bytes]
PageChange = Callable[[dict[str, object]], Answer]


def on_user_page(offset: int, change: PageChange) -> Callable[[str, int, dict[str, str], bytes], Answer | None]:
    """A rewrite hook that changes the 200 answer of ``GET /user`` at ``offset`` (or at any offset >= it
    when ``offset`` is negative: ``-n`` means "from n on")."""

    def rewrite(path: str, status: int, headers: dict[str, str], body: bytes) -> Answer | None:
        parts = urlsplit(path)
        if not parts.path.endswith("/user") or status != 200:
            return None
        at = int(parse_qs(parts.query).get("offset", ["0"])[0])
        if (offset >= 0 and at != offset) or (offset < 0 and at < -offset):
            return None
        return change(json.loads(body))

    return rewrite


def raw(status: int, content_type: str, body: bytes) -> PageChange:
    return lambda _page: (status, {"Content-Type": content_type}, body)


def with_page(edit: Callable[[dict[str, object]], None]) -> PageChange:
    def change(page: dict[str, object]) -> Answer:
        edit(page)
        return json_answer(200, page)

    return change


HTML_PAGE = b"<!DOCTYPE html><html><body><h1>Access Denied</h1><p>Reference #18.5f</p></body></html>"

MID_PULL_FAILURES = {
    "truncated-json": (raw(200, "application/json", b'{"users": [{"id": 1, "email": "a@'), ("not JSON",)),
    "empty-200-body": (raw(200, "application/json", b""), ("empty body",)),
    "html-200-page": (raw(200, "text/html", HTML_PAGE), ("not JSON", "text/html")),
    "users-missing": (with_page(lambda page: page.pop("users")), ("without a 'users' list",)),
    "users-is-object": (with_page(lambda page: page.update(users={"id": 5})), ("without a 'users' list",)),
    "users-is-string": (with_page(lambda page: page.update(users="[]")), ("without a 'users' list",)),
    "users-is-null": (with_page(lambda page: page.update(users=None)), ("without a 'users' list",)),
    "page-total-missing": (with_page(lambda page: page.pop("page")), ("page.total",)),
    "page-total-text": (with_page(lambda page: page.update(page={"total": "300"})), ("page.total",)),
    "user-without-id": (with_page(lambda page: page["users"][3].pop("id")), ("no numeric id",)),  # type: ignore[index]
    "body-is-a-list": (raw(200, "application/json", b"[]"), ("not an object",)),
}


@pytest.mark.parametrize("name", list(MID_PULL_FAILURES))
def test_bad_page_mid_pull_stores_nothing(
    name: str, prepared: Before, sandbox_proxy: tuple[SandboxServer, RewritingProxy]
) -> None:
    _server, proxy = sandbox_proxy
    change, words = MID_PULL_FAILURES[name]
    proxy.rewrite = on_user_page(MID, change)
    code, stderr = pull(prepared.home)
    assert code == ExitCode.CERTCENTRAL_UNAVAILABLE, stderr
    assert f"offset={MID}" in stderr, "the message must name the page"
    for word in words:
        assert word in stderr, f"{word!r} not in: {stderr}"
    assert "Traceback" not in stderr
    assert_nothing_stored_and_nothing_lost(prepared)


def test_page_total_that_changes_mid_pull_is_stored_as_incomplete(
    prepared: Before, sandbox_proxy: tuple[SandboxServer, RewritingProxy]
) -> None:
    _server, proxy = sandbox_proxy

    def grow(page: dict[str, object]) -> None:
        page["page"]["total"] += 7  # type: ignore[index,operator]

    proxy.rewrite = on_user_page(-MID, with_page(grow))
    code, stderr = pull(prepared.home)
    assert code == ExitCode.OK, stderr
    assert "INCOMPLETE" in stderr and "page.total changed during the pull" in stderr
    rows = snapshot_table(prepared.home)
    assert rows[:2] == prepared.snapshots and rows[2].rstrip().endswith("NO (incomplete)")
    check_database(prepared.home.data_dir)
    # Never a silent baseline: the default diff still compares the two complete snapshots.
    diff = prepared.home.run("diff", "--format", "json")
    assert diff.returncode == 0 and diff.stdout == prepared.diff


def test_duplicate_ids_across_pages_that_hide_a_user_make_an_incomplete_snapshot(
    prepared: Before, sandbox_proxy: tuple[SandboxServer, RewritingProxy]
) -> None:
    server, proxy = sandbox_proxy
    first_user = json.loads(
        json.dumps({key: value for key, value in server.dataset.users[0].items() if key != "container_id"})
    )

    def repeat_first(page: dict[str, object]) -> None:
        users = page["users"]
        assert isinstance(users, list)
        users[0] = {**users[0], "id": first_user["id"], "email": first_user["email"]}

    proxy.rewrite = on_user_page(MID, with_page(repeat_first))
    code, stderr = pull(prepared.home)
    assert code == ExitCode.OK, stderr
    assert "INCOMPLETE" in stderr and "expected" in stderr
    assert snapshot_table(prepared.home)[2].rstrip().endswith("NO (incomplete)")
    [*_, (_id, users, _admins, complete)] = check_database(prepared.home.data_dir)
    assert not complete and users == expected_users(server) - 1  # one row per id, the hidden user missing
    diff = prepared.home.run("diff", "--format", "json")
    assert diff.returncode == 0 and diff.stdout == prepared.diff, "an incomplete pull must not become removals"


def test_duplicate_ids_across_pages_that_hide_nobody_make_a_complete_snapshot(
    prepared: Before, sandbox_proxy: tuple[SandboxServer, RewritingProxy]
) -> None:
    server, proxy = sandbox_proxy
    seen: dict[int, object] = {}

    def remember_then_repeat(path: str, status: int, headers: dict[str, str], body: bytes):  # type: ignore[no-untyped-def]
        parts = urlsplit(path)
        if not parts.path.endswith("/user") or status != 200:
            return None
        page = json.loads(body)
        offset = int(parse_qs(parts.query).get("offset", ["0"])[0])
        if offset == 0:
            seen[0] = page["users"][1]
            return None
        if offset == MID and 0 in seen:
            page["users"].append(seen[0])  # the same user again, on a later page
            return json_answer(200, page)
        return None

    proxy.rewrite = remember_then_repeat
    code, stderr = pull(prepared.home)
    assert code == ExitCode.OK, stderr
    assert "INCOMPLETE" not in stderr
    assert_complete_pull(prepared, server, stderr)
