"""JSON API for access tables, users CSV import and queue bounce."""

from __future__ import annotations

import pytest

from tests.web.test_api import boss_basic  # noqa: F401  (fixture)
from tests.web.test_queue_page import _enqueue
from vpop3d.store import queue, users


def test_access_table_get_and_put(new_client, boss_basic, web_context):  # noqa: F811
    """GET shows the default rows; PUT validates, stores sorted rows and the global switch."""
    client = new_client()
    reply = client.get("/api/v1/access/pop3", headers=boss_basic)
    assert reply.json()["default"] is True
    assert [r["type"] for r in reply.json()["rules"]] == ["routers", "local-nets"]
    body = {
        "rules": [
            {"allow": True, "type": "any"},
            {"allow": False, "type": "network", "address": "10.0.0.9"},
        ],
        "use_global": True,
    }
    reply = client.request("PUT", "/api/v1/access/pop3", json=body, headers=boss_basic)
    assert reply.code == 200
    assert [r["address"] for r in reply.json()["rules"]] == ["10.0.0.9/32", ""]
    assert web_context.settings.get("pop3.use_global_access") is True
    bad = {"rules": [{"allow": True, "type": "network", "address": "10.0.0.999"}]}
    reply = client.request("PUT", "/api/v1/access/pop3", json=bad, headers=boss_basic)
    assert reply.code == 400
    assert "Rule 1" in reply.json()["error"]
    users_on_global = {"rules": [{"allow": True, "type": "any", "users": ["boss"]}]}
    reply = client.request("PUT", "/api/v1/access/global", json=users_on_global, headers=boss_basic)
    assert reply.code == 400
    assert "no Users column" in reply.json()["error"]
    assert client.get("/api/v1/access/finger", headers=boss_basic).code == 404


def test_import_users_api_is_all_or_nothing(new_client, boss_basic, stack):  # noqa: F811
    """A bad line refuses the whole file with line numbers; a good file creates users."""
    client = new_client()
    bad = {"csv": "User Id,Admin,Password\nann,0,pw-ann\n,0,x\n"}
    reply = client.post("/api/v1/import/users", json=bad, headers=boss_basic)
    assert reply.code == 400
    assert reply.json()["problems"] == ["line 3: the User Id is empty"]
    assert stack.db.run_sync(users.by_name, "ann") is None
    good = {"csv": "User Id\nann\n", "passwords": "username"}
    reply = client.post("/api/v1/import/users", json=good, headers=boss_basic)
    assert reply.code == 200
    assert reply.json()["created"] == ["ann"]
    wrong = {"csv": "User Id\nann\n", "passwords": "random"}
    assert client.post("/api/v1/import/users", json=wrong, headers=boss_basic).code == 400


def test_bounce_api(new_client, boss_basic, stack):  # noqa: F811
    """POST bounce fails the recipients; an unknown id is 404."""
    client = new_client()
    queue_id = _enqueue(stack, "a@remote.test")
    reply = client.post(f"/api/v1/queue/{queue_id}/bounce", headers=boss_basic)
    assert reply.json() == {"bounced": 1}
    assert stack.db.run_sync(queue.entry, queue_id) is None
    assert client.post("/api/v1/queue/999/bounce", headers=boss_basic).code == 404


def test_ops_api_needs_an_admin(new_client, stack):
    """Without credentials the new endpoints answer 401."""
    client = new_client()
    assert client.get("/api/v1/access/smtp").code == 401
    assert client.post("/api/v1/import/users", json={"csv": ""}).code == 401


@pytest.mark.parametrize("path", ["/access/{table}", "/import/users", "/queue/{id}/bounce"])
def test_openapi_describes_the_new_operations(new_client, path):
    """The document lists each new operation."""
    assert path in new_client().get("/api/v1/openapi.json").json()["paths"]


def test_patch_user_internet_mail_permissions(new_client, boss_basic, stack):  # noqa: F811
    """PATCH sets one Internet mail permission and leaves the other as it was."""
    stack.add_user("fred")
    client = new_client()
    reply = client.request(
        "PATCH", "/api/v1/users/fred", json={"allow_send_internet": False}, headers=boss_basic
    )
    assert reply.code == 200
    assert reply.json()["allow_send_internet"] is False
    assert reply.json()["allow_receive_internet"] is True
    fred = stack.db.run_sync(users.by_name, "fred")
    assert not fred.allow_send_internet


def test_patch_unknown_user_permissions_is_404(new_client, boss_basic):  # noqa: F811
    """Changing only a permission of a user who does not exist answers 404, not 500."""
    reply = new_client().request(
        "PATCH", "/api/v1/users/ghost", json={"allow_send_internet": False}, headers=boss_basic
    )
    assert reply.code == 404


def test_api_refuses_nul_and_broken_unicode(new_client, boss_basic, stack):  # noqa: F811
    """Text the store cannot hold (NUL, lone surrogates) is a 400, not a server error."""
    client = new_client()
    for body in (
        b'{"rules": [{"allow": true, "type": "any", "users": ["a\\u0000b"]}]}',
        b'{"rules": [{"allow": true, "type": "any", "users": ["\\udb7e"]}]}',
    ):
        reply = client.request(
            "PUT",
            "/api/v1/access/pop3",
            data=body,
            headers={**boss_basic, "Content-Type": "application/json"},
        )
        assert reply.code == 400
        assert "NUL" in reply.json()["error"]


def test_group_max_outgoing_size_has_an_upper_bound(new_client, boss_basic):  # noqa: F811
    """A size beyond the column's range is refused with a message."""
    client = new_client()
    group = client.post("/api/v1/groups", json={"name": "office"}, headers=boss_basic).json()
    reply = client.request(
        "PATCH",
        f"/api/v1/groups/{group['id']}",
        json={"max_outgoing_kb": 862774793744},
        headers=boss_basic,
    )
    assert reply.code == 400
    assert "at most" in reply.json()["error"]
