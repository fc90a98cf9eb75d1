"""Shared folders page and /api/v1/shares: list, add, refuse with reasons, remove."""

from __future__ import annotations

import base64
import re

import pytest
from sqlalchemy import Connection

from tests.support.stack import Stack
from tests.web.support import Client, Reply
from vpop3d.app import imapacl, shareadmin
from vpop3d.app.accounts import AdminError
from vpop3d.store import acl, folders, groups, users
from vpop3d.store.tables import folder_acl


@pytest.fixture
def office(stack: Stack) -> dict[str, int]:
    """alice owns Shared and Projects/2026; bob is a secondary member of sales; carol too."""
    ids = {name: stack.add_user(name) for name in ("alice", "bob", "carol")}

    def setup(conn: Connection) -> None:
        folders.create(conn, ids["alice"], "Shared")
        folders.create(conn, ids["alice"], "Projects/2026")
        sales = groups.add(conn, "sales")
        users.set_secondary_groups(conn, ids["bob"], [sales.id])

    stack.db.run_sync(setup)
    return ids


def _acl(stack: Stack, folder: str = "Shared") -> list[tuple[str, str]]:
    return list(stack.db.read_sync(imapacl.folder_acl, "alice", folder))


def _share(admin: Client, **fields: str) -> Reply:
    form = {"csrf": admin.csrf(), "owner": "alice", "folder": "Shared", "preset": "read"}
    form.update(fields)
    return admin.post("/admin/sharing/add", form)


def test_page_lists_shares_in_plain_words(admin, stack, office):
    """Existing shares show owner, folder, grantee, rights in words with the letters as a tip."""
    stack.db.run_sync(imapacl.share, "alice", "Shared", "group:sales", "lrs")
    stack.db.run_sync(imapacl.share, "alice", "Projects/2026", "carol", "lrswipkxtea")
    page = admin.get("/admin/sharing.html")
    assert page.code == 200
    assert 'href="/admin/sharing.html"' in page.text
    assert "Shared folders" in page.text
    rows = re.findall(r"<tr data-share=.*?</tr>", page.text, re.S)
    assert len(rows) == 2
    assert "Projects/2026" in rows[0]
    assert "carol" in rows[0]
    assert "full control" in rows[0]
    assert "group</span> sales" in rows[1]
    assert "read + mark seen" in rows[1]
    assert 'title="RFC 4314 rights: lrs"' in rows[1]
    assert "#users/alice/Shared" in rows[1]


def test_owner_pick_fills_folder_and_grantee_lists(admin, office):
    """Choosing the owner (a GET reload) lists their folders; the owner is no grantee."""
    blank = admin.get("/admin/sharing.html")
    assert 'id="share-form"' not in blank.text
    page = admin.get("/admin/sharing.html?owner=alice").text
    folder_select = re.search(r'<select id="folder".*?</select>', page, re.S)
    assert folder_select is not None
    options = re.findall(r"<option[^>]*>([^<]+)</option>", folder_select.group(0))
    assert options == ["INBOX", "Projects/2026", "Shared"]
    grantee = re.search(r'<select id="grantee".*?</select>', page, re.S)
    assert grantee is not None
    assert 'value="group:sales"' in grantee.group(0)
    assert 'value="bob"' in grantee.group(0)
    assert 'value="alice"' not in grantee.group(0)
    unknown = admin.get("/admin/sharing.html?owner=nobody").text
    assert "There is no user nobody: choose the owner from the list." in unknown
    assert 'id="share-form"' not in unknown


def test_add_share_with_group_preset(admin, stack, office):
    """Sharing with group sales 'read + mark seen' stores lrs and tells the admin the IMAP name."""
    reply = _share(admin, grantee="group:sales", preset="read_seen")
    assert reply.code == 303
    assert ("group:sales", "lrs") in _acl(stack)
    page = admin.get("/admin/sharing.html").text
    assert "they see it as #users/alice/Shared" in page
    grants = stack.db.read_sync(acl.grants_for, office["bob"])
    assert [(g.owner_name, g.folder_name) for g in grants] == [("alice", "Shared")]
    assert stack.db.read_sync(acl.grants_for, office["carol"]) == []


def test_add_share_with_custom_letters_replaces_rights(admin, stack, office):
    """Custom letters (obsolete 'd' expanded) replace the grantee's earlier rights."""
    _share(admin, grantee="bob", preset="full")
    assert ("bob", "lrswipkxteacd") in _acl(stack)
    _share(admin, grantee="bob", preset="custom", custom="l r d")
    assert ("bob", "lrted") in _acl(stack)
    assert "delete messages" in admin.get("/admin/sharing.html").text


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"owner": "nobody"}, "There is no user 'nobody'"),
        ({"folder": "Missing"}, "User alice has no folder 'Missing'"),
        ({"grantee": "group:nosuch"}, "There is no group 'nosuch'"),
        ({"grantee": "ghost"}, "There is no user 'ghost' to share with"),
        ({"grantee": "alice"}, "User alice owns this folder and always has full control"),
        ({"grantee": ""}, "Choose who to share the folder with"),
        (
            {"grantee": "bob", "preset": "custom", "custom": "lrz9"},
            "Unknown rights letters '9z': use only l r s w i p k x t e a",
        ),
        ({"grantee": "bob", "preset": "custom", "custom": " "}, "type at least one rights letter"),
        ({"grantee": "bob", "preset": "everything"}, "Unknown rights choice 'everything'"),
    ],
)
def test_validation_errors_explain_and_change_nothing(admin, stack, office, fields, message):
    """Each refusal answers 400 with a sentence naming the problem; no ACL row is written."""
    stack.db.run_sync(imapacl.share, "alice", "Shared", "carol", "lr")
    before = stack.db.read_sync(
        lambda conn: list(conn.execute(folder_acl.select().order_by(folder_acl.c.id)))
    )
    reply = _share(admin, **fields)
    assert reply.code == 400
    assert message in reply.text
    assert 'role="alert" id="form-error"' in reply.text
    after = stack.db.read_sync(
        lambda conn: list(conn.execute(folder_acl.select().order_by(folder_acl.c.id)))
    )
    assert after == before


def test_remove_share(admin, stack, office):
    """Remove drops exactly that share; removing it again says it is gone."""
    stack.db.run_sync(imapacl.share, "alice", "Shared", "group:sales", "lr")
    stack.db.run_sync(imapacl.share, "alice", "Shared", "carol", "lr")
    page = admin.get("/admin/sharing.html").text
    ids = re.findall(r'action="/admin/sharing/(\d+)/delete"', page)
    assert len(ids) == 2
    sales_id = re.search(r'<tr data-share="(\d+)">(?:(?!</tr>).)*group</span> sales', page, re.S)
    assert sales_id is not None
    form = {"csrf": admin.csrf()}
    assert admin.post(f"/admin/sharing/{sales_id.group(1)}/delete", form).code == 303
    assert [w for w, _ in _acl(stack)] == ["alice", "carol"]
    assert "#users/alice/Shared is no longer shared with group sales." in admin.get(PAGE).text
    admin.post(f"/admin/sharing/{sales_id.group(1)}/delete", form)
    assert "That share no longer exists" in admin.get(PAGE).text
    assert [w for w, _ in _acl(stack)] == ["alice", "carol"]


PAGE = "/admin/sharing.html"


def test_posts_without_csrf_are_refused(admin, stack, office):
    """Add and remove without the session's CSRF token answer 403 and change nothing."""
    stack.db.run_sync(imapacl.share, "alice", "Shared", "carol", "lr")
    share_id = re.findall(r'action="/admin/sharing/(\d+)/delete"', admin.get(PAGE).text)[0]
    form = {"owner": "alice", "folder": "Shared", "grantee": "bob", "preset": "full"}
    assert admin.post("/admin/sharing/add", form).code == 403
    assert admin.post("/admin/sharing/add", {**form, "csrf": "forged"}).code == 403
    assert admin.post(f"/admin/sharing/{share_id}/delete", {"csrf": "forged"}).code == 403
    assert _acl(stack) == [("alice", "lrswipkxteacd"), ("carol", "lr")]


def test_non_admin_cannot_see_the_page(new_client, stack, office):
    """A plain user logging in gets no sharing page."""
    client = new_client()
    client.login("bob", "secret")
    assert client.get(PAGE).code in (303, 403)


def test_user_edit_page_shows_shares_both_ways(admin, stack, office):
    """bob's page lists alice's folder reaching him through group sales; alice's lists hers."""
    stack.db.run_sync(imapacl.share, "alice", "Shared", "group:sales", "lr")
    stack.db.run_sync(imapacl.share, "alice", "Projects/2026", "anyone", "lrs")
    bob = admin.get("/admin/users/bob/edit.html").text
    section = bob[bob.index('id="user-shares"') :]
    assert "#users/alice/Shared</code> (group sales): <span" in section
    assert "#users/alice/Projects/2026</code> (everyone)" in section
    assert 'href="/admin/sharing.html?owner=bob"' in section
    alice = admin.get("/admin/users/alice/edit.html").text
    assert "Shared with group sales:" in alice
    carol = admin.get("/admin/users/carol/edit.html").text
    assert "group sales" not in carol[carol.index('id="user-shares"') :]


def _basic(name: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{name}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_api_create_list_delete(admin, stack, office):
    """POST /api/v1/shares creates (preset or letters), GET lists, DELETE removes."""
    auth = _basic("boss", "bosspass")
    body = {"owner": "alice", "folder": "Shared", "grantee": "group:sales", "rights": "read"}
    made = admin.post("/api/v1/shares", json=body, headers=auth)
    assert made.code == 201
    share = made.json()
    assert (share["grantee"], share["rights"], share["label"]) == ("group:sales", "lr", "read")
    assert share["imap_name"] == "#users/alice/Shared"
    letters = admin.post(
        "/api/v1/shares", json={**body, "grantee": "bob", "rights": "lrs"}, headers=auth
    )
    assert letters.json()["label"] == "read + mark seen"
    bad = admin.post("/api/v1/shares", json={**body, "grantee": "alice"}, headers=auth)
    assert bad.code == 400
    assert "owns this folder" in bad.json()["error"]
    missing = admin.post("/api/v1/shares", json={"owner": "alice"}, headers=auth)
    assert missing.code == 400
    listed = admin.get("/api/v1/shares", headers=auth).json()
    assert [(s["grantee"], s["rights"]) for s in listed] == [("bob", "lrs"), ("group:sales", "lr")]
    gone = admin.request("DELETE", f"/api/v1/shares/{share['id']}", headers=auth)
    assert gone.code == 204
    again = admin.request("DELETE", f"/api/v1/shares/{share['id']}", headers=auth)
    assert again.code == 404
    huge = admin.request("DELETE", f"/api/v1/shares/{2**70}", headers=auth)
    assert huge.code == 404
    assert [w for w, _ in _acl(stack)] == ["alice", "bob"]


def test_openapi_describes_shares(admin):
    """The OpenAPI document lists /shares and /shares/{id} with the Share schema."""
    doc = admin.get("/api/v1/openapi.json").json()
    assert set(doc["paths"]["/shares"]) == {"get", "post"}
    assert "delete" in doc["paths"]["/shares/{id}"]
    assert "Share" in doc["components"]["schemas"]


def test_rights_words_and_choices():
    """Presets map to fixed letters; other rights read as words; bad choices are refused."""
    assert [shareadmin.rights_from(k, "") for k in shareadmin.PRESETS] == [
        "lr",
        "lrs",
        "lrswipte",
        "lrswipkxtea",
    ]
    assert shareadmin.describe("rl") == "read"
    assert shareadmin.describe("lrswipkxtea") == "full control"
    assert shareadmin.describe("lri") == "see, read, add messages"
    assert shareadmin.rights_from("custom", "r l c") == "lrkx"
    with pytest.raises(AdminError, match=r"unknown rights letters '\+'"):
        shareadmin.rights_from("custom", "+lr")
