"""The "API keys and automation" section's view (issue 17): the credential inventory, display-ready.

A part the pull could not read is said so ("not readable with this key: unknown, not none"),
never shown as an empty table.
"""

from __future__ import annotations

from typing import Any

from auditor.labels import day
from auditor.models import Snapshot

_PART_WORDS = {
    "api_keys": "API keys and ACME URLs",
    "ip_rules": "IP restriction rules",
    "guest_access": "Guest access",
}


def keys_block(snapshot: Snapshot) -> dict[str, Any]:
    """Template context for ``_keys.html.j2``."""
    inventory = snapshot.credentials
    users = {user.id: user for user in snapshot.users}
    rows = []
    for key in inventory.keys or ():
        owner = users.get(key.owner_id) if key.owner_id is not None else None
        covered = None if inventory.ip_rules is None else inventory.covers(key)
        rows.append(
            {
                "id": key.id,
                "name": key.name or f"(key {key.id})",
                "kind": key.kind,
                "status": key.status or "(unknown)",
                "active": key.is_active,
                "owner": (owner.email if owner is not None else "")
                or (f"{key.owner_name} (user {key.owner_id})" if key.owner_id is not None else "(no owner)"),
                "owner_state": (owner.status or "(unknown)") if owner is not None else "not a user of the account",
                "owner_roles": owner.role_names if owner is not None else "",
                "service_owner": owner is not None and owner.is_service_user,
                "restriction": key.restriction,
                "unrestricted": key.unrestricted,
                "legacy": key.is_legacy,
                "created": day(key.created),
                "last_used": day(key.last_used) or "never",
                "ip": "unknown" if covered is None else ("yes" if covered else "no"),
            }
        )
    missing = snapshot.provenance.not_evaluable
    not_read = [_PART_WORDS[part] for part in ("api_keys", "ip_rules", "guest_access") if part in missing]
    return {
        "read": inventory.read_anything or bool(not_read),
        "keys_read": inventory.keys is not None,
        "rows": rows,
        "active": sum(1 for row in rows if row["active"]),
        "acme": sum(1 for row in rows if row["kind"] == "ACME URL"),
        "ip_rules": None if inventory.ip_rules is None else len(inventory.ip_rules),
        "guest_access": "unknown" if inventory.guest_access is None else ("on" if inventory.guest_access else "off"),
        "guest_url": inventory.guest_access_url,
        "not_evaluable": not_read,
    }
