"""IP Access Restrictions pages (seed-4 §3, §15): rows, ordering, defaults, validation."""

from __future__ import annotations

from twisted.internet.task import Clock

from vpop3d.app.access import AccessControl
from vpop3d.core.netrule import NetworkFacts


def _control(web_context):
    return AccessControl(
        web_context.settings,
        Clock(),
        facts=NetworkFacts.of(["192.168.66.1"], ["127.0.0.0/8", "192.168.66.0/24"]),
    )


def _add(admin, service="pop3", **fields):
    form = {"csrf": admin.csrf(), "restrict": "allow", "type": "network", **fields}
    return admin.post(f"/admin/access/{service}/add", form)


def _rows(admin, service):
    page = admin.get(f"/admin/access.html?service={service}").text
    return [part.split('"', 1)[0] for part in page.split('data-row="')[1:]]


def test_the_default_rows_are_shown_and_apply(admin, web_context):
    """With nothing saved the table shows Block Routers, Allow Local Networks."""
    assert _rows(admin, "pop3") == ["Block Routers", "Allow Local Networks"]
    assert _rows(admin, "global") == []
    control = _control(web_context)
    assert control.verdict("pop3", "192.168.66.7").allowed
    assert not control.verdict("pop3", "192.168.66.1").allowed  # the router


def test_added_rows_are_sorted_most_specific_first_and_used(admin, web_context):
    """Hosts, Routers, networks by prefix, Local Nets, GeoIP, Any: the evaluation order."""
    _add(admin, type="any", restrict="block")
    _add(admin, address="10.1.0.0/16")
    _add(admin, address="10.1.2.3", restrict="block")
    _add(admin, type="geoip", address="ru, cn", restrict="block")
    assert _rows(admin, "pop3") == [
        "Block 10.1.2.3/32",
        "Block Routers",
        "Allow 10.1.0.0/16",
        "Allow Local Networks",
        "Block GeoIP RU,CN",
        "Block Any Host",
    ]
    stored = web_context.settings.get("pop3.access_rules")
    assert stored[2] == {
        "allow": True,
        "type": "network",
        "address": "10.1.0.0/16",
        "allow_unauth": False,
        "users": [],
    }
    control = _control(web_context)
    assert control.verdict("pop3", "10.1.9.9").allowed
    assert not control.verdict("pop3", "10.1.2.3").allowed
    assert not control.verdict("pop3", "8.8.8.8").allowed


def test_host_bits_masks_and_ranges_are_normalised(admin, web_context):
    """192.168.1.57/24 is stored as 192.168.1.0/24; a mask and a range are accepted."""
    _add(admin, address="192.168.1.57/24")
    assert (
        "192.168.1.57/24 was stored as 192.168.1.0/24"
        in admin.get("/admin/access.html?service=pop3").text
    )
    _add(admin, address="172.16.0.0/255.255.0.0")
    _add(admin, address="10.0.0.0-10.0.0.11")
    rows = _rows(admin, "pop3")
    assert "Allow 192.168.1.0/24" in rows
    assert "Allow 172.16.0.0/16" in rows
    assert {"Allow 10.0.0.0/29", "Allow 10.0.0.8/30"} <= set(rows)


def test_bad_input_gets_a_message_and_changes_nothing(admin, web_context):
    """A bad address, a bad mask, an unknown user or a duplicate row is refused with advice."""
    for address, text in [
        ("192.168.1.300", "bad IP address"),
        ("10.0.0.0/255.0.255.0", "non-contiguous subnet mask"),
        ("", "Enter a network address"),
    ]:
        _add(admin, address=address)
        page = admin.get("/admin/access.html?service=pop3").text
        assert text in page
    _add(admin, address="10.0.0.0/8", users="nobody-here")
    assert "No user called nobody-here" in admin.get("/admin/access.html?service=pop3").text
    assert web_context.settings.get("pop3.access_rules") is None
    _add(admin, type="local-nets")
    assert "already has Allow Local Networks" in admin.get("/admin/access.html?service=pop3").text


def test_users_and_unauth_columns(admin, stack, web_context):
    """SMTP rows carry Allow Unauth and Users; the global table has neither column."""
    stack.add_user("paul")
    _add(admin, "smtp", type="any", users="Paul", allow_unauth="on")
    rule = web_context.settings.get("smtp.access_rules")[-1]
    assert rule["users"] == ["paul"]
    assert rule["allow_unauth"] is True
    verdict = _control(web_context).verdict("smtp", "203.0.113.9")
    assert verdict.permits_user("paul")
    assert not verdict.permits_user("kate")
    page = admin.get("/admin/access.html?service=global").text
    assert "Allow Unauth" not in page
    assert 'id="users"' not in page


def test_remove_defaults_and_the_global_switch(admin, web_context):
    """Remove deletes the named row; Defaults restores two rows; use-global is saved."""
    csrf = admin.csrf()
    reply = admin.post(
        "/admin/access/imap/remove", {"csrf": csrf, "row": "0", "key": "Block Routers"}
    )
    assert reply.code == 303
    assert _rows(admin, "imap") == ["Allow Local Networks"]
    admin.post("/admin/access/imap/remove", {"csrf": csrf, "row": "0", "key": "Block Routers"})
    assert "The table changed meanwhile" in admin.get("/admin/access.html?service=imap").text
    admin.post("/admin/access/imap/defaults", {"csrf": csrf})
    assert _rows(admin, "imap") == ["Block Routers", "Allow Local Networks"]
    admin.post("/admin/access/imap/use-global", {"csrf": csrf, "use_global": "on"})
    assert web_context.settings.get("imap.use_global_access") is True
    _add(admin, "global", address="127.0.0.2", restrict="block")
    _add(admin, "global", type="any")
    control = _control(web_context)
    assert not control.verdict("imap", "127.0.0.2").allowed  # the global block wins
    assert control.verdict("imap", "127.0.0.1").allowed


def test_access_pages_refuse_without_csrf_and_unknown_tables(admin, web_context):
    """A POST without the token is refused; an unknown table goes back to SMTP."""
    reply = admin.post("/admin/access/pop3/add", {"type": "any"})
    assert reply.code == 403
    assert web_context.settings.get("pop3.access_rules") is None
    assert admin.get("/admin/access.html?service=finger").location.endswith("service=smtp")
