"""The JSON API: authentication, CSRF, validation and the OpenAPI document."""

from __future__ import annotations

import base64

import pytest

from vpop3d.store import users


def _basic(name, password):
    token = base64.b64encode(f"{name}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture
def boss_basic(stack):
    stack.add_user("boss", "bosspass", is_admin=True)
    return _basic("boss", "bosspass")


def test_openapi_document_is_served(new_client):
    """/api/v1/openapi.json describes every API path."""
    reply = new_client().get("/api/v1/openapi.json")
    assert reply.code == 200
    doc = reply.json()
    assert doc["openapi"].startswith("3.")
    assert {"/users", "/users/{name}", "/groups/{id}", "/mappings", "/queue"} <= set(doc["paths"])


def test_api_needs_a_login(new_client):
    """Without a session or Basic credentials the API answers 401."""
    reply = new_client().get("/api/v1/users")
    assert reply.code == 401
    assert reply.json() == {"error": "log in first"}


def test_api_wrong_basic_password_is_401(new_client, boss_basic):
    """Wrong Basic credentials are refused."""
    reply = new_client().get("/api/v1/users", headers=_basic("boss", "nope"))
    assert reply.code == 401


def test_api_basic_auth_lists_users(new_client, boss_basic):
    """A script with an admin's Basic credentials reads the Users grid."""
    reply = new_client().get("/api/v1/users?sort=name", headers=boss_basic)
    assert reply.code == 200
    body = reply.json()
    assert body["defined"] == 2
    assert [u["name"] for u in body["users"]] == ["boss", "postmaster"]


def test_api_non_admin_gets_403(new_client, stack):
    """A non-admin's credentials give 403."""
    stack.add_user("fred", "fredpass")
    reply = new_client().get("/api/v1/users", headers=_basic("fred", "fredpass"))
    assert reply.code == 403


def test_api_session_write_needs_csrf_header(admin, stack):
    """With a session cookie, a write without X-CSRF-Token is refused."""
    reply = admin.request("POST", "/api/v1/domains", json={"name": "x.test"})
    assert reply.code == 403
    assert "X-CSRF-Token" in reply.json()["error"]
    reply = admin.request(
        "POST", "/api/v1/domains", json={"name": "x.test"}, headers={"X-CSRF-Token": admin.csrf()}
    )
    assert reply.code == 201


def test_api_user_lifecycle(new_client, boss_basic, stack):
    """Add, read, change and delete a user over the API."""
    client = new_client()
    made = client.request(
        "POST",
        "/api/v1/users",
        json={"name": "kate", "password": "katepass", "real_name": "Kate"},
        headers=boss_basic,
    )
    assert made.code == 201
    assert made.json()["name"] == "kate"
    changed = client.request(
        "PATCH", "/api/v1/users/kate", json={"quota_kb": 500}, headers=boss_basic
    )
    assert changed.json()["quota_kb"] == 500
    assert client.get("/api/v1/users/kate", headers=boss_basic).json()["real_name"] == "Kate"
    assert client.request("DELETE", "/api/v1/users/kate", headers=boss_basic).code == 204
    assert stack.db.run_sync(users.by_name, "kate") is None
    assert client.get("/api/v1/users/kate", headers=boss_basic).code == 404


def test_api_validation_errors(new_client, boss_basic):
    """Bad bodies get 400 with a sentence, never 500."""
    client = new_client()
    cases = [
        ("POST", "/api/v1/users", b"not json"),
        ("POST", "/api/v1/users", b"[1]"),
        ("POST", "/api/v1/users", b'{"name": "x"}'),
        ("POST", "/api/v1/users", b'{"name": 5, "password": "abcdef"}'),
        ("POST", "/api/v1/users", b'{"name": "ok", "password": "abcdef", "quota_kb": -1}'),
        ("PATCH", "/api/v1/users/boss", b'{"is_admin": false}'),
        ("PATCH", "/api/v1/users/boss", b'{"password": "x"}'),
        ("POST", "/api/v1/mappings", b'{"pattern": "a", "targets": [1]}'),
        ("POST", "/api/v1/domains", b'{"name": "bad domain"}'),
        ("PUT", "/api/v1/settings/local-mail", b'{"implied_mapping": "yes"}'),
        ("POST", "/api/v1/groups", b'{"name": "boss"}'),
    ]
    for method, path, body in cases:
        reply = client.request(
            method, path, data=body, headers={**boss_basic, "Content-Type": "application/json"}
        )
        assert reply.code == 400, (method, path, body, reply.body)
        assert reply.json()["error"]


def test_api_bad_numeric_filter_is_400(new_client, boss_basic):
    """The grid filter syntax errors are reported as 400."""
    reply = new_client().get("/api/v1/users?messages=%3E%3Ex", headers=boss_basic)
    assert reply.code == 400
    assert "x..y" in reply.json()["error"]


def test_api_mappings_domains_settings_queue(new_client, boss_basic):
    """The remaining collections answer with their JSON shapes."""
    client = new_client()
    made = client.request(
        "POST",
        "/api/v1/mappings",
        json={"pattern": "sales", "targets": ["boss"]},
        headers=boss_basic,
    )
    assert made.code == 201
    listed = client.get("/api/v1/mappings", headers=boss_basic).json()
    assert listed[0]["targets"] == ["boss"]
    gone = client.request("DELETE", f"/api/v1/mappings/{listed[0]['id']}", headers=boss_basic)
    assert gone.code == 204
    assert client.request("DELETE", "/api/v1/mappings/999", headers=boss_basic).code == 404
    domains = client.get("/api/v1/domains", headers=boss_basic).json()
    assert domains == [{"name": "example.test", "default": True}]
    put = client.request(
        "PUT", "/api/v1/settings/local-mail", json={"implied_mapping": False}, headers=boss_basic
    )
    assert put.json() == {"implied_mapping": False}
    assert client.get("/api/v1/queue", headers=boss_basic).json() == []
    assert client.get("/api/v1/dashboard", headers=boss_basic).json()["users"] == 2


def test_api_unknown_path_and_empty_patch(new_client, boss_basic):
    """Unknown API paths are JSON 404s; an empty PATCH changes nothing and answers 200."""
    client = new_client()
    reply = client.request("DELETE", "/api/v1/queue/1.5", headers=boss_basic)
    assert reply.code == 404
    assert reply.json() == {"error": "no such API resource"}
    same = client.request("PATCH", "/api/v1/users/boss", json={}, headers=boss_basic)
    assert same.code == 200
    assert same.json()["is_admin"] is True
    assert client.request("PATCH", "/api/v1/users/nobody", json={}, headers=boss_basic).code == 404


def test_api_cannot_disable_the_last_enabled_admin(new_client, boss_basic, stack):
    """With postmaster disabled, disabling boss too is refused: one admin stays enabled."""
    client = new_client()
    reply = client.request(
        "PATCH", "/api/v1/users/postmaster", json={"enabled": False}, headers=boss_basic
    )
    assert reply.code == 200
    reply = client.request(
        "PATCH", "/api/v1/users/boss", json={"enabled": False}, headers=boss_basic
    )
    assert reply.code == 400
    assert "last administrator" in reply.json()["error"]
    assert stack.db.run_sync(users.by_name, "boss").enabled
