"""Local Mail (domains, default, implied mapping), Mappings and Groups pages."""

from __future__ import annotations

from vpop3d.store import domains, groups, mappings


def test_add_and_remove_local_domains(admin, stack):
    """Domains separated by semicolons are added; a removed one is gone."""
    csrf = admin.csrf()
    admin.post("/admin/domains/add", {"csrf": csrf, "name": "a.test; b.test"})
    names = {d.name for d in stack.db.run_sync(domains.list_all)}
    assert {"a.test", "b.test"} <= names
    admin.post("/admin/domains/delete", {"csrf": csrf, "name": "b.test"})
    assert "b.test" not in {d.name for d in stack.db.run_sync(domains.list_all)}


def test_invalid_domain_is_explained(admin):
    """A malformed domain name gives a message and is not added."""
    csrf = admin.csrf()
    admin.post("/admin/domains/add", {"csrf": csrf, "name": "bad_domain!"})
    page = admin.get("/admin/localmail.html")
    assert "is not a valid domain name" in page.text


def test_default_domain_switch(admin, stack):
    """Make default moves the Default Domain mark."""
    csrf = admin.csrf()
    admin.post("/admin/domains/add", {"csrf": csrf, "name": "c.test"})
    admin.post("/admin/domains/default", {"csrf": csrf, "name": "c.test"})
    assert stack.db.run_sync(domains.default).name == "c.test"


def test_implied_mapping_switch_is_a_setting(admin, stack, web_context):
    """The implied mapping checkbox drives the router's switch, the only key written."""
    csrf = admin.csrf()
    page = admin.get("/admin/localmail.html")
    assert 'id="implied_mapping" checked' in page.text
    admin.post("/admin/localmail/settings", {"csrf": csrf})
    assert web_context.settings.get("localmail.disable_implied_mappings") is True  # the router
    assert web_context.settings.get("local_mail.implied_mapping") is None
    assert 'id="implied_mapping" checked' not in admin.get("/admin/localmail.html").text
    admin.post("/admin/localmail/settings", {"csrf": csrf, "implied_mapping": "on"})
    assert web_context.settings.get("localmail.disable_implied_mappings") is False


def test_add_and_delete_mapping(admin, stack):
    """A mapping sales -> fred; kate is stored with both targets, then deleted."""
    csrf = admin.csrf()
    admin.post("/admin/mappings/add", {"csrf": csrf, "pattern": "sales", "targets": "fred; kate"})
    rows = stack.db.run_sync(mappings.list_all)
    assert [(m.pattern, m.targets) for m in rows] == [("sales", ("fred", "kate"))]
    page = admin.get("/admin/mappings.html")
    assert "fred, kate" in page.text
    admin.post(f"/admin/mappings/{rows[0].id}/delete", {"csrf": csrf})
    assert stack.db.run_sync(mappings.list_all) == []


def test_mapping_without_target_is_refused(admin, stack):
    """A mapping needs at least one target."""
    admin.post("/admin/mappings/add", {"csrf": admin.csrf(), "pattern": "sales", "targets": ""})
    assert "needs at least one target" in admin.get("/admin/mappings.html").text
    assert stack.db.run_sync(mappings.list_all) == []


def test_groups_grid_add_and_tristate_cells(admin, stack):
    """Groups are added by form and edited per cell through the API (null = no override)."""
    admin.post("/admin/groups/add", {"csrf": admin.csrf(), "name": "office"})
    group = stack.db.run_sync(groups.by_name, "office")
    page = admin.get("/admin/groups.html")
    assert "Allow Receiving Internet Mail" in page.text
    assert f'data-group="{group.id}"' in page.text
    token = admin.csrf()
    for value in (False, None, True):
        reply = admin.request(
            "PATCH",
            f"/api/v1/groups/{group.id}",
            json={"allow_receive_internet": value},
            headers={"X-CSRF-Token": token},
        )
        assert reply.code == 200
        assert reply.json()["allow_receive_internet"] is value
        assert stack.db.run_sync(groups.by_id, group.id).allow_receive_internet is value


def test_group_named_like_a_user_is_refused(admin, stack):
    """Check 34: a group cannot take a user's name."""
    stack.add_user("fred")
    admin.post("/admin/groups/add", {"csrf": admin.csrf(), "name": "fred"})
    assert "already the name of a user" in admin.get("/admin/groups.html").text
    assert stack.db.run_sync(groups.by_name, "fred") is None


def test_group_cell_validation(admin, stack):
    """Bad cell values are refused with a sentence and change nothing."""
    admin.post("/admin/groups/add", {"csrf": admin.csrf(), "name": "office"})
    group = stack.db.run_sync(groups.by_name, "office")
    token = admin.csrf()
    for body, text in (
        ({"max_outgoing_kb": -1}, "Max Outgoing Size"),
        ({"reply_address": "not an address"}, "reply address"),
        ({"enabled": None}, "true or false"),
        ({"colour": "red"}, "nknown group setting"),
    ):
        reply = admin.request(
            "PATCH", f"/api/v1/groups/{group.id}", json=body, headers={"X-CSRF-Token": token}
        )
        assert reply.code == 400
        assert text in reply.json()["error"]
    assert stack.db.run_sync(groups.by_id, group.id) == group


def test_delete_group(admin, stack):
    """Delete removes the group."""
    admin.post("/admin/groups/add", {"csrf": admin.csrf(), "name": "office"})
    group = stack.db.run_sync(groups.by_name, "office")
    admin.post(f"/admin/groups/{group.id}/delete", {"csrf": admin.csrf()})
    assert stack.db.run_sync(groups.by_name, "office") is None


def _multipart(fields: dict[str, str], filename: str, content: bytes) -> tuple[bytes, str]:
    boundary = "vpop3dTestBoundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    parts.append(
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{filename}"\r\nContent-Type: text/csv\r\n\r\n'
        ).encode()
        + content
        + b"\r\n"
    )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def test_mappings_csv_import_and_export(admin, stack):
    """Import skips the header and duplicates, refuses unsupported types per line;
    export writes the five columns."""
    csv_text = (
        b"Email Address,Target mailbox/list,Comment,Type,Mail Collector ID\r\n"
        b"sales,fred\r\n"
        b"sales,fred\r\n"
        b"customer@client.test,kate,,FROM,ALL\r\n"
        b"x@y.test,kate,,POP3,ALL\r\n"
        b",nobody\r\n"
    )
    body, content_type = _multipart({"csrf": admin.csrf()}, "m.csv", csv_text)
    admin.request(
        "POST", "/admin/mappings/import", data=body, headers={"Content-Type": content_type}
    )
    page = admin.get("/admin/mappings.html").text
    assert "2 mapping(s) imported." in page
    assert "Line 5: type 'POP3' is not supported yet." in page
    assert "Line 6: the address and the target are required." in page
    rows = stack.db.run_sync(mappings.list_all)
    assert [(m.pattern, m.targets, m.direction) for m in rows] == [
        ("sales", ("fred",), "to"),
        ("customer@client.test", ("kate",), "from"),
    ]
    export = admin.get("/admin/mappings.csv?titles=1").body.decode().split("\r\n")
    assert export[:3] == [
        "Email Address,Target mailbox/list,Comment,Type,Mail Collector ID",
        "sales,fred,,Normal,ALL",
        "customer@client.test,kate,,FROM,ALL",
    ]
