"""The connection test's verdict: whose key this is, and whether an audit with it would see the whole account.

The requests are the client's (``GET /user/me``, then ``GET /user?limit=1&offset=0``, DigiCert's own
advice for checking what a key may do, §3, https://dev.digicert.com/errors/); this turns the
answers into a :class:`~auditor.client.results.ConnectionReport` with its warnings.
"""

from __future__ import annotations

from auditor.client.paging import Page
from auditor.client.results import ConnectionReport
from auditor.models import User


def connection_report(me: User, first_page: Page) -> ConnectionReport:
    """What ``me`` (the key's user) and the first page of ``GET /user`` say about the key."""
    warnings: list[str] = []
    who = me.email or me.username or f"user {me.id}"
    if not me.is_admin:
        warnings.append(
            f"The key's user {who} is not an Administrator (roles: {me.role_names or 'none'}); "
            "CertCentral may show it only some users, so the audit would be partial. Use a View "
            "Only key linked to an unrestricted Administrator."
        )
    if me.restricted:
        divisions = ", ".join(d.name or str(d.id) for d in me.assigned_divisions) or "unknown"
        warnings.append(
            f"The key's user {who} is restricted to some divisions ({divisions}); it sees only "
            "their users, so the audit would be partial. Use a key linked to an unrestricted "
            "Administrator."
        )
    if first_page.total == 0:
        warnings.append("GET /user reported no users at all for this key.")
    account_id = me.account_id
    if account_id is None and first_page.users:
        account_id = User.from_api(first_page.users[0]).account_id
    return ConnectionReport(
        me=me,
        account_id=account_id,
        sees_whole_account=me.is_admin and not me.restricted,
        warnings=tuple(warnings),
        visible_users=first_page.total,
    )
