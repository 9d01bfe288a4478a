"""Issue 15, target 5: the page size measured at pull time, and the rate window shared across processes.

Against the real sandbox over loopback HTTP (its page-size switch shows both answers the real
/user may give, §2.1), and through the CLI in-process for what the pull records and remembers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import AuditorHome, connect_to

from auditor import pipeline
from auditor.client import CertCentralClient
from auditor.client.window import SharedWindow
from auditor.pipeline import Workspace
from auditor.sandbox import Dataset, Faults, SandboxServer
from auditor.store import Store

KEY = "sandbox-admin-key"
USERS = 2_400  # Dataset.generate adds a few anchor users


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return Dataset.generate(USERS, seed=15)


@pytest.fixture(scope="module")
def small() -> Dataset:
    """One page at any size: enough for what is recorded and remembered, cheap to export."""
    return Dataset.generate(120, seed=15)


@pytest.fixture(scope="module")
def server(dataset: Dataset) -> Iterator[SandboxServer]:
    with SandboxServer(dataset, faults=Faults(rate_limits=())) as running:
        yield running


def user_pages(server: SandboxServer) -> list[str]:
    """``GET /user`` as the sandbox saw it, in offset order (pages 2..n arrive in any order)."""
    pages = [(r.query, r.status) for r in server.requests if r.path.endswith("/services/v2/user")]
    return [f"{q} {status}" for q, status in sorted(pages, key=lambda p: int(p[0].split("offset=")[1]))]


def offsets(total: int, step: int) -> range:
    return range(0, total, step)


@pytest.mark.parametrize(
    ("faults", "first", "step"),
    [
        (Faults(rate_limits=()), [], 1000),
        # Capped and saying so (page.limit 500): paged by 500, each page still asked for 1000.
        (Faults(rate_limits=(), max_limit=500), [], 500),
        # Refused outright (400 invalid_limit): the first page is asked again for 500, then all others.
        (Faults(rate_limits=(), max_limit=500, limit_over_1000="reject"), ["limit=1000&offset=0 400"], 500),
    ],
    ids=["honours-1000", "caps-at-500", "refuses-1000"],
)
def test_the_page_size_is_1000_when_served_else_what_the_server_serves(
    server: SandboxServer, dataset: Dataset, faults: Faults, first: list[str], step: int
) -> None:
    server.set_faults(faults)
    server.clear_requests()
    with CertCentralClient(server.base_url, KEY, rate_limits=()) as client:
        result = client.pull_users()
    total = len(dataset.users)
    asked = 1000 if faults.limit_over_1000 == "clamp" else 500
    assert user_pages(server) == [*first, *(f"limit={asked}&offset={o} 200" for o in offsets(total, step))]
    users = next(item for item in result.endpoints if item.path == "/user")
    pages = len(offsets(total, step))
    assert result.complete and (users.page_size, users.received, users.pages) == (step, total, pages)
    # The refused answer is kept with the others: the evidence of what was measured.
    assert len(users.requests) == len(first) + pages


def test_the_page_size_measured_is_recorded_in_the_snapshot_provenance(
    home: AuditorHome, small: Dataset, tmp_path: Path
) -> None:
    with SandboxServer(small, faults=Faults(rate_limits=(), max_limit=500, limit_over_1000="reject")) as running:
        connect_to(home, running.base_url)
        pulled = home.run("pull")
        assert pulled.returncode == 0, pulled.stderr
    # The refused 400 page is kept with the others, and the evidence still holds: the export
    # re-parses the stored users from the raw pages, verify --reperform re-derives them offline.
    bundle, pem = tmp_path / "b.zip", tmp_path / "k.pem"
    exported = home.run("export", "--output", str(bundle), "--no-reports")
    assert exported.returncode == 0, exported.stderr
    pem.write_text(home.run("keys", "public").stdout)
    verified = home.run("verify", str(bundle), "--public-key", str(pem), "--reperform")
    assert verified.returncode == 0 and "Re-performance: PASSED" in verified.stdout, verified.stdout
    with Store.open(home.data_dir, master_key=home.master_key()) as store:
        provenance = store.get_snapshot(1).provenance
    by_path = {item.path: item for item in provenance.endpoints}
    assert by_path["/user"].page_size == 500
    assert by_path["/user"].requests[0][0] == "/user?limit=1000&offset=0"


def test_back_to_back_pulls_share_the_rate_window_and_meet_no_429(home: AuditorHome, small: Dataset) -> None:
    # The sandbox admits 8 requests per second; the client paces for 8 per 1.5 s (padded to 1.8 s),
    # so a loaded machine's jitter cannot push two requests into one server window. One pull of
    # this account is 6 or more requests (me, one user page, service users, keys, IP rules, guest
    # access, ...): two in a row are over 8, so the second must wait for the first one's requests to age out, not
    # find a 429 (as it does when each process starts with an empty window).
    limits = ((8, 1.5),)
    with SandboxServer(small, faults=Faults(rate_limits=((8, 1.0),))) as running:
        connect_to(home, running.base_url)
        running.clear_requests()
        workspace = Workspace(
            data_dir=home.data_dir, master_key_file=home.key_file, client_options={"rate_limits": limits}
        )
        pipeline.pull(workspace, "default")
        one_pull = len(running.requests)
        pipeline.pull(workspace, "default")
        statuses = [r.status for r in running.requests]
    assert one_pull >= 5 and len(statuses) == 2 * one_pull and 429 not in statuses, statuses
    window = (home.data_dir / "rate-window" / "default.json").read_text()
    # Request times only (those past the 1.8 s horizon dropped when the second pull closed), never the key.
    assert json.loads(window)["sent_ms"] and KEY not in window


def test_a_new_client_starts_from_the_requests_an_earlier_one_recorded(tmp_path: Path) -> None:
    now = [1_000.0]
    path = tmp_path / "rate-window" / "default.json"
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    SharedWindow(path, horizon=10, wall=lambda: now[0]).save([now[0] - 0.5, now[0] - 0.2])
    limiter_window = SharedWindow(path, horizon=10, wall=lambda: now[0])
    assert limiter_window.load() == [999.5, 999.8]

    from auditor.client.pacing import RateLimiter

    def history(*, horizon: float) -> SharedWindow:
        return SharedWindow(path, horizon=horizon, wall=lambda: now[0])

    limiter = RateLimiter(((3, 2.0),), monotonic=lambda: now[0] - 900, sleep=sleep, margin=False, history=history)
    limiter.acquire()  # the third request in the window: at once
    assert sleeps == []
    limiter.acquire()  # the fourth waits for the earlier process's first request to age out
    assert len(sleeps) == 1 and 1.4 < sleeps[0] < 1.6
    limiter.flush()  # merged with the file; past the limiter's 2 s horizon, 999.5 is dropped
    assert [round(t, 2) for t in SharedWindow(path, horizon=10, wall=lambda: now[0]).load()] == [999.8, 1000.0, 1001.55]


def test_a_pull_without_details_computes_no_record_digest(
    monkeypatch: pytest.MonkeyPatch, server: SandboxServer
) -> None:
    # The digests serve only --details (is GET /user/{id} still current?): about 20 µs a user.
    import auditor.parsing

    computed: list[int] = []
    real = auditor.parsing.record_digest
    monkeypatch.setattr(auditor.parsing, "record_digest", lambda raw: computed.append(raw["id"]) or real(raw))
    server.set_faults(Faults(rate_limits=()))
    with CertCentralClient(server.base_url, KEY, rate_limits=()) as client:
        result = client.pull_users()
    assert computed == []
    some = result.users[0].id
    assert len(result.record_digests[some]) == 64 and computed == [some]  # computed when read, once
    assert result.record_digests[some] and computed == [some]
