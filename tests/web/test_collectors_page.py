"""Mail Collectors pages over HTTP: list, add/edit/delete of the three types, refusals
that change nothing, Collect now, the Messages tab (Get/Del/forget/reset) and the
Download Rules editor (seed-3 §2-§8)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.web.support import Client
from vpop3d.app.collectoradmin import COLLECT_NOW
from vpop3d.store import collectors as repo
from vpop3d.store import connectors
from vpop3d.store import settings as settings_repo

POP3_FORM = {
    "name": "MyISP",
    "enabled": "on",
    "priority": "20",
    "server": "pop.isp.test",
    "port": "995",
    "tls_mode": "ssl",
    "auth_method": "apop",
    "username": "box",
    "password": "s3cret-pw",
    "leave_days": "7",
    "delete_when_deleted_locally": "on",
    "max_messages": "50",
    "max_size_kb": "2048",
    "use_rules": "on",
    "routing": "headers",
    "accepted_domains": "a.test; b.test",
    "error_action": "address",
    "error_address": "errors@a.test",
    "special": "X-RCPTTO",
    "read_special": "all",
    "read_received": "reversed",
    "ignore_resent": "on",
    "received_need_at": "on",
    "standard_need_at": "on",
    "ignore_from_line": "on",
    "order0": "special",
    "order1": "stop-if-found",
    "order2": "standard",
    "order3": "stop-if-found",
    "order4": "received",
}


@pytest.fixture
def connection_id(stack: Any) -> int:
    return int(stack.db.run_sync(connectors.ensure_default))


def _add(admin: Client, kind: str = "pop3", **changes: str) -> Any:
    form = {"csrf": admin.csrf(), "kind": kind, **POP3_FORM, **changes}
    return admin.post("/admin/collectors/new.html", form)


def _row(stack: Any, name: str = "MyISP") -> dict[str, Any]:
    row = stack.db.read_sync(repo.by_name, name)
    assert row is not None
    return dict(row)


def _id_from(location: str | None) -> int:
    found = re.search(r"/admin/collectors/(\d+)/", location or "")
    assert found, location
    return int(found.group(1))


def test_add_pop3_collector_with_every_general_setting(admin, stack, connection_id):
    """The POP3 form saves every POP3 General, Routing and Routing Errors setting."""
    reply = _add(admin, connection=str(connection_id))
    assert reply.code == 303, reply.text
    row = _row(stack)
    assert reply.location == f"/admin/collectors/{row['id']}/edit.html"
    expected = {
        "kind": "pop3",
        "enabled": True,
        "priority": 20,
        "connection_ids": str(connection_id),
        "server": "pop.isp.test",
        "port": 995,
        "tls_mode": "ssl",
        "tls_verify": True,
        "auth_method": "apop",
        "username": "box",
        "password": "s3cret-pw",
        "leave_days": 7,
        "delete_when_deleted_locally": True,
        "max_messages": 50,
        "max_size_kb": 2048,
        "use_rules": True,
        "remove_duplicates": False,
        "routing": "headers",
        "accepted_domains": "a.test; b.test",
        "error_action": "address",
        "error_address": "errors@a.test",
    }
    assert {key: row[key] for key in expected} == expected
    options = json.loads(row["routing_options"])
    assert options["special"] == ["X-RCPTTO"]
    assert options["read_special"] == "all"
    assert options["disable_implied"] is False
    assert options["order"] == ["special", "stop-if-found", "standard", "stop-if-found", "received"]


def test_list_shows_name_type_server_state_and_result(admin, stack, connection_id):
    """The list shows each collector's name, type, server, enabled state and last result."""
    _add(admin, connection=str(connection_id))
    row = _row(stack)
    stack.db.run_sync(repo.record_result, row["id"], "Error from remote server <b>", 1.7e9)
    page = admin.get("/admin/collectors.html")
    assert page.code == 200
    assert "MyISP" in page.text
    assert "Download from a POP3 Server" in page.text
    assert "pop.isp.test:995" in page.text
    assert "Error from remote server <b>" in page.text
    assert "&lt;b&gt;" in page.body.decode()  # autoescaped
    assert "Mail Collectors" in page.text  # in the navigation


def test_password_is_never_echoed_and_blank_keeps_it(admin, stack, connection_id):
    """The edit page never contains the password; saving with it blank keeps it."""
    _add(admin, connection=str(connection_id))
    row = _row(stack)
    page = admin.get(f"/admin/collectors/{row['id']}/edit.html")
    assert page.code == 200
    assert "s3cret-pw" not in page.text
    assert "leave empty to keep it" in page.text
    form = {"csrf": admin.csrf(), **POP3_FORM, "password": "", "connection": str(connection_id)}
    form["priority"] = "5"
    reply = admin.post(f"/admin/collectors/{row['id']}/edit.html", form)
    assert reply.code == 303, reply.text
    after = _row(stack)
    assert after["password"] == "s3cret-pw"
    assert after["priority"] == 5
    form["password"] = "new-pw"
    admin.post(f"/admin/collectors/{row['id']}/edit.html", form)
    assert _row(stack)["password"] == "new-pw"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"port": "abc"}, "Port must be a whole number"),
        ({"port": "70000"}, "The port must be a number from 1 to 65535"),
        ({"leave_days": "-1"}, "Leave Messages on Server must be a whole number, 0 or more"),
        ({"server": ""}, "A POP3 collector needs a server"),
        ({"accepted_domains": "*"}, "do not use '*' as an Accepted Domain"),
        ({"routing": "user", "target_user": ""}, "routing to a single user needs a target user"),
        ({"error_address": ""}, "needs that address"),
        ({"name": ""}, "A collector needs a name"),
        ({"order2": "bogus"}, "Header Processing Order"),
    ],
)
def test_add_refusals_explain_and_save_nothing(admin, stack, connection_id, changes, message):
    """A bad value is explained on the re-shown form and no collector is created."""
    reply = _add(admin, connection=str(connection_id), **changes)
    assert reply.code == 400
    assert message.lower() in reply.text.lower()
    assert 'id="form-error"' in reply.text
    assert "s3cret-pw" not in reply.text
    assert stack.db.read_sync(repo.list_all) == []


def test_at_least_one_connection_is_required(admin, stack, connection_id):
    """With a Connection defined, a collector linked to none is refused."""
    reply = _add(admin)
    assert reply.code == 400
    assert "Choose at least one Connection" in reply.text
    assert stack.db.read_sync(repo.list_all) == []


def test_edit_refusal_leaves_the_collector_unchanged(admin, stack, connection_id):
    """A refused edit (a bad number after good ones) leaves every setting as it was."""
    _add(admin, connection=str(connection_id))
    before = _row(stack)
    form = {"csrf": admin.csrf(), **POP3_FORM, "connection": str(connection_id)}
    form.update(server="other.isp.test", username="changed", max_size_kb="lots")
    reply = admin.post(f"/admin/collectors/{before['id']}/edit.html", form)
    assert reply.code == 400
    assert "Maximum Message Size must be a whole number" in reply.text
    assert 'value="other.isp.test"' in reply.text  # the admin's values are kept
    assert _row(stack) == before
    form.update(max_size_kb="10", routing="server", target_address="", target_server="")
    reply = admin.post(f"/admin/collectors/{before['id']}/edit.html", form)
    assert reply.code == 400
    assert "target address and server" in reply.text
    assert _row(stack) == before


def test_smtp_feed_and_odmr_forms(admin, stack, connection_id):
    """The Incoming SMTP feed saves domains, wait and ETRN; ODMR needs its domains."""
    csrf = admin.csrf()
    feed = {
        "csrf": csrf,
        "kind": "smtp-feed",
        "name": "SMTP In",
        "enabled": "on",
        "connection": str(connection_id),
        "accepted_domains": "a.test",
        "wait_seconds": "30",
        "use_etrn": "on",
        "etrn_server": "mx.isp.test:25",
        "etrn_argument": "a.test",
    }
    assert admin.post("/admin/collectors/new.html", feed).code == 303
    row = _row(stack, "SMTP In")
    assert (row["kind"], row["wait_seconds"], row["etrn_server"], row["etrn_argument"]) == (
        "smtp-feed",
        30,
        "mx.isp.test:25",
        "a.test",
    )
    bad = admin.post("/admin/collectors/new.html", {**feed, "name": "x", "etrn_argument": ""})
    assert bad.code == 400
    assert "ETRN needs both" in bad.text
    odmr = {
        "csrf": csrf,
        "kind": "odmr",
        "name": "On demand",
        "connection": str(connection_id),
        "server": "odmr.isp.test",
        "username": "acct",
        "password": "pw",
        "odmr_domains": "",
    }
    refused = admin.post("/admin/collectors/new.html", odmr)
    assert refused.code == 400
    assert "at least one domain" in refused.text
    odmr["odmr_domains"] = "a.test,b.test"
    assert admin.post("/admin/collectors/new.html", odmr).code == 303
    row = _row(stack, "On demand")
    assert (row["kind"], row["port"], row["odmr_domains"]) == ("odmr", 366, "a.test,b.test")
    page = admin.get("/admin/collectors.html").text
    assert "Incoming SMTP Mail Feed" in page
    assert "ODMR (ATRN) Mail Collection" in page
    assert "odmr.isp.test:366" in page


def test_delete_collector_and_its_messages(admin, stack, connection_id):
    """Delete removes the collector and its UIDL inventory."""
    _add(admin, connection=str(connection_id))
    row = _row(stack)
    stack.db.run_sync(repo.see, row["id"], ["u1"], 1.7e9)
    reply = admin.post(f"/admin/collectors/{row['id']}/delete", {"csrf": admin.csrf()})
    assert reply.code == 303
    assert stack.db.read_sync(repo.by_name, "MyISP") is None
    assert stack.db.read_sync(repo.uidls, row["id"]) == {}
    assert "Mail Collector MyISP deleted." in admin.get("/admin/collectors.html").text


def test_posts_need_the_csrf_token(admin, stack, connection_id):
    """Add, delete, collect now and reset without the form's token change nothing."""
    _add(admin, connection=str(connection_id))
    row = _row(stack)
    stack.db.run_sync(repo.see, row["id"], ["u1"], 1.7e9)
    for path in (
        "/admin/collectors/new.html",
        f"/admin/collectors/{row['id']}/delete",
        f"/admin/collectors/{row['id']}/run",
        f"/admin/collectors/{row['id']}/messages/reset",
        "/admin/collectors/rules/save",
    ):
        reply = admin.post(path, {**POP3_FORM, "csrf": "forged", "name": "Other"})
        assert reply.code == 403, path
    assert len(stack.db.read_sync(repo.list_all)) == 1
    assert list(stack.db.read_sync(repo.uidls, row["id"])) == ["u1"]
    assert stack.db.read_sync(repo.list_rules) == []


def test_collect_now_asks_the_server_or_runs_here(admin, stack, connection_id, web_context):
    """Collect now runs the in-process runner when there is one, else leaves the
    request the collector service polls for."""
    _add(admin, connection=str(connection_id))
    row = _row(stack)
    reply = admin.post(f"/admin/collectors/{row['id']}/run", {"csrf": admin.csrf()})
    assert reply.code == 303
    asked = stack.db.read_sync(settings_repo.get, f"{COLLECT_NOW}{row['id']}")
    assert isinstance(asked, float)
    assert "will collect within a few seconds" in admin.get("/admin/collectors.html").text

    from twisted.internet.defer import Deferred, succeed

    ran: list[int] = []

    class Runner:
        def run(self, collector_id: int) -> Deferred[Any]:
            ran.append(collector_id)
            return succeed(None)

    web_context.extras["collectors"] = Runner()
    back = f"/admin/collectors/{row['id']}/messages.html"
    reply = admin.post(f"/admin/collectors/{row['id']}/run", {"csrf": admin.csrf(), "back": back})
    assert reply.location == back
    assert ran == [row["id"]]
    assert "Collecting now with MyISP" in admin.get(back).text


def test_messages_tab_lists_marks_forgets_and_resets(admin, stack, connection_id):
    """The Messages tab shows each UIDL with its dates and state; Get/Del set the
    flags; Forget drops one row; Reset forgets them all."""
    _add(admin, connection=str(connection_id))
    cid = _row(stack)["id"]
    stack.db.run_sync(repo.see, cid, ["uid-seen", "uid-got", "uid-<x>"], 1_700_000_000.0)
    stack.db.run_sync(
        repo.mark_stored, cid, "uid-got", 1_700_000_100.0, subject="Hello there", sender="a@x.test"
    )
    page = admin.get(f"/admin/collectors/{cid}/messages.html")
    assert page.code == 200
    for text in ("uid-seen", "uid-got", "Hello there", "a@x.test", "downloaded", "2023-11-1"):
        assert text in page.text
    assert "uid-&lt;x&gt;" in page.body.decode()
    assert "seen, not downloaded" in page.text

    def mark(uidl: str, what: str) -> Any:
        form = {"csrf": admin.csrf(), "uidl": uidl, "what": what}
        return admin.post(f"/admin/collectors/{cid}/messages/mark", form)

    assert mark("uid-got", "get").code == 303
    assert mark("uid-seen", "del").code == 303
    rows = stack.db.read_sync(repo.uidls, cid)
    assert (rows["uid-got"]["get_flag"], rows["uid-seen"]["del_flag"]) == (True, True)
    mark("uid-seen", "clear")
    assert stack.db.read_sync(repo.uidls, cid)["uid-seen"]["del_flag"] is False
    mark("nope", "get")
    assert (
        "no longer on the Messages tab" in admin.get(f"/admin/collectors/{cid}/messages.html").text
    )

    mark("", "del")  # the Del column header: every row
    flags = stack.db.read_sync(repo.uidls, cid)
    assert [(r["get_flag"], r["del_flag"]) for r in flags.values()] == [(False, True)] * 3
    mark("", "clear")
    flags = stack.db.read_sync(repo.uidls, cid)
    assert [(r["get_flag"], r["del_flag"]) for r in flags.values()] == [(False, False)] * 3

    form = {"csrf": admin.csrf(), "uidl": "uid-got"}
    assert admin.post(f"/admin/collectors/{cid}/messages/reset", form).code == 303
    assert sorted(stack.db.read_sync(repo.uidls, cid)) == ["uid-<x>", "uid-seen"]
    admin.post(f"/admin/collectors/{cid}/messages/reset", {"csrf": admin.csrf()})
    assert stack.db.read_sync(repo.uidls, cid) == {}
    assert "2 message(s) forgotten" in admin.get(f"/admin/collectors/{cid}/messages.html").text


def test_queried_messages_await_a_decision(admin, stack, connection_id):
    """A message a Query rule left at the server is listed with Download and Delete."""
    _add(admin, connection=str(connection_id))
    cid = _row(stack)["id"]
    stack.db.run_sync(repo.see, cid, ["q1"], 1_700_000_000.0)
    stack.db.run_sync(repo.set_disposition, cid, "q1", "queried")
    page = admin.get(f"/admin/collectors/{cid}/messages.html").text
    assert "Awaiting your decision" in page
    assert "awaiting decision (rule: Query)" in page
    form = {"csrf": admin.csrf(), "uidl": "q1", "what": "get"}
    admin.post(f"/admin/collectors/{cid}/messages/mark", form)
    assert stack.db.read_sync(repo.uidls, cid)["q1"]["get_flag"] is True


def test_download_rules_editor(admin, stack):
    """Rules are added with conditions, edited, moved, deleted; an unbalanced If or a
    bad regex is refused and nothing changes."""

    def save(**values: str) -> Any:
        form = {"csrf": admin.csrf(), "match": "all", **values}
        return admin.post("/admin/collectors/rules/save", form)

    reply = admin.request(
        "POST",
        "/admin/collectors/rules/save",
        data={
            "csrf": admin.csrf(),
            "name": "spam",
            "action": "delete-silently",
            "match": "any",
            "cond_field": ["Subject", "", "From"],
            "cond_op": ["contains", "contains", "ends with"],
            "cond_data": ["viagra", "", "@spam.test"],
            "cond_not": ["2"],
        },
    )
    assert reply.code == 303, reply.text
    [rule] = stack.db.read_sync(repo.list_rules)
    assert (rule["name"], rule["action"], rule["match_all"]) == ("spam", "delete-silently", False)
    assert json.loads(rule["conditions"]) == [
        {"field": "Subject", "op": "contains", "data": "viagra", "not": False},
        {"field": "From", "op": "ends with", "data": "@spam.test", "not": True},
    ]
    assert save(name="boss", action="redirect", targets="boss").code == 303
    refused = save(name="x", action="copy")
    assert refused.code == 400
    assert "needs a Redirect to / Copy to list" in refused.text
    refused = save(name="x", action="if", cond_field="Subject", cond_op="regex matches",
                   cond_data="/(/")  # fmt: skip
    assert refused.code == 400
    assert "not valid" in refused.text
    refused = save(name="lonely", action="endif")
    assert refused.code == 400
    assert "EndIf rule must follow an If" in refused.text
    assert [r["name"] for r in stack.db.read_sync(repo.list_rules)] == ["spam", "boss"]

    page = admin.get("/admin/collectors/rules.html")
    assert "Delete Silently" in page.text
    assert "2 condition(s)" in page.text
    boss = stack.db.read_sync(repo.list_rules)[1]
    admin.post(f"/admin/collectors/rules/{boss['id']}/move", {"csrf": admin.csrf(), "dir": "up"})
    assert [r["name"] for r in stack.db.read_sync(repo.list_rules)] == ["boss", "spam"]
    edit = admin.get(f"/admin/collectors/rules.html?edit={boss['id']}")
    assert 'value="boss"' in edit.text
    assert save(id=str(boss["id"]), name="boss2", action="copy", targets="boss").code == 303
    assert stack.db.read_sync(repo.list_rules)[0]["action"] == "copy"
    admin.post(f"/admin/collectors/rules/{boss['id']}/delete", {"csrf": admin.csrf()})
    assert [r["name"] for r in stack.db.read_sync(repo.list_rules)] == ["spam"]
    assert save(name="when", action="if", cond_field="Subject", cond_data="x").code == 303
    assert "1 If rule(s) still need an EndIf" in admin.get("/admin/collectors/rules.html").text


def test_pages_need_an_administrator(new_client, stack, connection_id):
    """Without a login the collector pages redirect to the login page."""
    client = new_client()
    for path in ("/admin/collectors.html", "/admin/collectors/rules.html"):
        reply = client.get(path)
        assert reply.code == 303
        assert reply.location == "/admin/index.html"


def test_json_api_lists_messages_resets_and_collects(admin, stack, connection_id):
    """/api/v1/collectors: the list, the Messages tab, reset and collect now (with the
    CSRF header), 404 for unknown ids; all described in openapi.json."""
    _add(admin, connection=str(connection_id))
    cid = _row(stack)["id"]
    stack.db.run_sync(repo.see, cid, ["u1", "u2"], 1_700_000_000.0)
    [listed] = admin.get("/api/v1/collectors").json()
    assert (listed["id"], listed["name"], listed["kind"], listed["server"]) == (
        cid,
        "MyISP",
        "pop3",
        "pop.isp.test:995",
    )
    tab = admin.get(f"/api/v1/collectors/{cid}/messages").json()
    assert [(m["uidl"], m["state"], m["retrieved_at"]) for m in tab] == [
        ("u1", "seen", None),
        ("u2", "seen", None),
    ]
    token = {"X-CSRF-Token": admin.csrf()}
    assert admin.request("DELETE", f"/api/v1/collectors/{cid}/messages").code == 403
    reset = admin.request("DELETE", f"/api/v1/collectors/{cid}/messages", headers=token)
    assert reset.json() == {"forgotten": 2}
    run = admin.request("POST", f"/api/v1/collectors/{cid}/run", headers=token)
    assert run.code == 202
    assert run.json()["started"] is True
    for path in ("/api/v1/collectors/99/messages", "/api/v1/collectors/99999999999999/messages"):
        assert admin.get(path).code == 404
    assert admin.get("/admin/collectors/99999999999999/edit.html").code == 404
    paths = admin.get("/api/v1/openapi.json").json()["paths"]
    assert {"/collectors", "/collectors/{id}/messages", "/collectors/{id}/run"} <= set(paths)


def test_query_delay_and_hold_settings(admin, stack, web_context):
    """The Query Download Delay and Hold Obsolete UIDLs days are saved; nonsense is
    explained and not saved."""
    form = {"csrf": admin.csrf(), "query_delay": "21", "hold_days": "5"}
    assert admin.post("/admin/collectors/settings", form).code == 303
    assert stack.db.read_sync(settings_repo.get, "collectors.query_download_delay_days") == 21
    assert stack.db.read_sync(settings_repo.get, "collectors.hold_obsolete_uidl_days") == 5
    admin.post("/admin/collectors/settings", {**form, "query_delay": "-3"})
    page = admin.get("/admin/collectors/rules.html").text
    assert "from 0 to 3650" in page
    assert 'name="query_delay" value="21"' in page
