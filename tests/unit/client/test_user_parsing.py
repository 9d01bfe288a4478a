"""``User.from_api``'s shared role sets and divisions: equal values parse alike, equal-looking ones do not."""

from __future__ import annotations

from auditor.models import Division, Role, User


def test_role_sets_and_divisions_that_compare_equal_but_differ_in_type_parse_as_their_own_values() -> None:
    # 1 == True == 1.0 as dictionary keys; the API's True or 1.0 is no role or division id (§2.2).
    admin = User.from_api({"id": 1, "access_roles": [{"id": 1, "name": "Administrator"}], "container": {
        "id": 5, "name": "Main", "parent_id": 0}})
    odd = User.from_api({"id": 2, "access_roles": [{"id": True, "name": "Administrator"}], "container": {
        "id": 5.0, "name": "Main", "parent_id": False}})
    assert admin.roles == (Role(id=1, name="Administrator"),)
    assert admin.division == Division(id=5, name="Main", parent_id=0)
    assert odd.roles == (Role(id=-1, name="Administrator"),)
    assert odd.division is None


def test_many_distinct_role_sets_still_parse_each_as_its_own() -> None:
    users = [User.from_api({"id": n, "access_roles": [{"id": n, "name": f"role {n}"}]}) for n in range(1, 6000)]
    assert [user.roles for user in users] == [(Role(id=n, name=f"role {n}"),) for n in range(1, 6000)]
