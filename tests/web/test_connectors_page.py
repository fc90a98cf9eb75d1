"""Mail Connectors page: Connection/Sender edits, schedule items and the enable switch."""

from __future__ import annotations

import pytest

from vpop3d.store import connectors


@pytest.fixture
def connection_id(stack):
    return stack.db.run_sync(connectors.ensure_default)


def _sender(stack, connection_id):
    return next(
        s
        for s in stack.db.read_sync(connectors.list_senders)
        if s["connection_id"] == connection_id
    )


def test_page_lists_the_connection(admin, connection_id):
    """The default Connection and its Sender are shown with the schedule switch off."""
    page = admin.get("/admin/connectors.html")
    assert page.code == 200
    assert "Connection: Internet" in page.text
    assert 'id="schedule-enabled" checked' not in page.text


def test_save_sender_relay_with_auth(admin, stack, connection_id):
    """Relay servers, encryption and SMTP auth are saved; an empty password keeps the old one."""
    form = {
        "csrf": admin.csrf(),
        "name": "MyISP",
        "method": "relay",
        "relay_servers": "smtp.isp.test:587; backup.isp.test",
        "encryption": "starttls",
        "auth_required": "on",
        "username": "me",
        "password": "secret1",
    }
    admin.post(f"/admin/connectors/{connection_id}", form)
    sender = _sender(stack, connection_id)
    assert sender["relay_servers"] == "smtp.isp.test:587\nbackup.isp.test"
    assert (sender["encryption"], sender["username"], sender["password"]) == (
        "starttls",
        "me",
        "secret1",
    )
    admin.post(f"/admin/connectors/{connection_id}", {**form, "password": ""})
    assert _sender(stack, connection_id)["password"] == "secret1"
    names = [c["name"] for c in stack.db.read_sync(connectors.list_connections)]
    assert names == ["MyISP"]


def test_bad_sender_values_are_refused(admin, stack, connection_id):
    """A bad relay server or a missing username is explained and nothing changes."""
    before = _sender(stack, connection_id)
    form = {
        "csrf": admin.csrf(),
        "name": "X",
        "method": "relay",
        "relay_servers": "host:notaport",
        "encryption": "starttls_opt",
    }
    admin.post(f"/admin/connectors/{connection_id}", form)
    assert "relay server" in admin.get("/admin/connectors.html").text
    admin.post(
        f"/admin/connectors/{connection_id}",
        {**form, "relay_servers": "ok.test", "auth_required": "on", "username": ""},
    )
    assert "Enter the SMTP username" in admin.get("/admin/connectors.html").text
    assert _sender(stack, connection_id) == before


def test_schedule_switch_and_items(admin, stack, web_context, connection_id):
    """Enable scheduling; add an item for weekdays 09:00-17:30 every hour; delete it."""
    admin.post("/admin/schedule/enable", {"csrf": admin.csrf(), "enabled": "on"})
    assert web_context.settings.get("schedule.enabled") is True
    form = {
        "csrf": admin.csrf(),
        "name": "Office",
        "connection": str(connection_id),
        "interval": "60",
        "start": "09:00",
        "end": "17:30",
    }
    form.update({f"day{i}": "on" for i in range(1, 6)})
    admin.post("/admin/schedule/add", form)
    [item] = stack.db.read_sync(connectors.list_schedule)
    assert (item["interval_min"], item["start_min"], item["end_min"], item["days_mask"]) == (
        60,
        540,
        1050,
        0b0111110,
    )
    assert "09:00\u201317:30" in admin.get("/admin/connectors.html").text
    admin.post(f"/admin/schedule/{item['id']}/delete", {"csrf": admin.csrf()})
    assert stack.db.read_sync(connectors.list_schedule) == []


def test_schedule_item_validation(admin, stack):
    """Bad times, an end before the start, or no day are refused."""
    base = {"csrf": admin.csrf(), "interval": "10", "start": "09:00", "end": "17:00", "day1": "on"}
    for changes, text in (
        ({"start": "9am"}, "is not a time"),
        ({"start": "18:00"}, "end time must not be before"),
        ({"day1": ""}, "at least one day"),
        ({"interval": "0"}, "1 to 1440"),
    ):
        admin.post("/admin/schedule/add", {**base, **changes})
        assert text in admin.get("/admin/connectors.html").text
    assert stack.db.read_sync(connectors.list_schedule) == []
