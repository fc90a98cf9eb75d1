"""Admin changes reach the router at once, and the Permissions tab of Edit User."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred

from vpop3d.store import users
from vpop3d.wiring_delivery import shared_router


def _snapshot(web_context: Any) -> Any:
    """The router's snapshot (the synchronous store fires it at once)."""
    results: list[Any] = []
    Deferred.fromCoroutine(shared_router(web_context).snapshot()).addBoth(results.append)
    return results[0]


def test_mapping_user_and_group_changes_invalidate_the_router(admin, web_context):
    """The cached routing snapshot is dropped by each admin write, not after its TTL."""
    before = _snapshot(web_context)
    assert _snapshot(web_context) is before  # cached (the test clock stands still)
    csrf = admin.csrf()
    admin.post("/admin/mappings/add", {"csrf": csrf, "pattern": "sales", "targets": "boss"})
    after = _snapshot(web_context)
    assert [(m.pattern, m.target) for m in after.mappings] == [("sales", "boss")]
    admin.post("/admin/groups/add", {"csrf": csrf, "name": "office"})
    assert "office" in _snapshot(web_context).group_members
    form = {"csrf": csrf, "name": "newbie", "password": "secret1", "confirm": "secret1"}
    admin.post("/admin/users/new.html", form)
    assert "newbie" in _snapshot(web_context).users


def test_implied_mapping_switch_invalidates_too(admin, web_context):
    """Turning the implied mapping off writes only the router's key and drops its cache."""
    before = _snapshot(web_context)
    admin.post("/admin/localmail/settings", {"csrf": admin.csrf()})
    assert _snapshot(web_context) is not before
    assert web_context.settings.get("localmail.disable_implied_mappings") is True


def test_permissions_tab_saves_internet_mail_switches(admin, stack, web_context):
    """Clearing "Allow sending/receiving of Internet mail" is stored and routed at once."""
    stack.add_user("fred")
    page = admin.get("/admin/users/fred/edit.html").text
    assert 'id="allow_send_internet" checked' in page
    assert 'id="allow_receive_internet" checked' in page
    form = {
        "csrf": admin.csrf(),
        "enabled": "on",
        "quota_kb": "100",
        "allow_receive_internet": "on",
    }
    assert admin.post("/admin/users/fred/edit.html", form).code == 303
    fred = stack.db.run_sync(users.by_name, "fred")
    assert not fred.allow_send_internet
    assert fred.allow_receive_internet
    assert fred.quota_kb == 100
    settings = _snapshot(web_context).users["fred"].settings
    assert not settings.allow_send_internet
    assert 'id="allow_send_internet" >' in admin.get("/admin/users/fred/edit.html").text
