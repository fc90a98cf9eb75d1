"""The Users pages: grid, add with the spec's validation, edit, delete rules (check 35)."""

from __future__ import annotations

from tests.web.support import field_value
from vpop3d.store import users


def _new_user(client, **fields):
    page = client.get("/admin/users/new.html")
    form = {"csrf": field_value(page.text, "csrf"), "name": "", "password": "", "confirm": ""}
    form.update(fields)
    return client.post("/admin/users/new.html", form)


def test_users_grid_lists_users_with_count(admin, stack):
    """The grid header says how many users are defined and lists them."""
    stack.add_user("fred", real_name="Fred Bloggs")
    page = admin.get("/admin/users.html")
    assert page.code == 200
    assert "(3 users defined)" in page.text
    assert "Fred Bloggs" in page.text
    assert "Outgoing Message Queue: 0 Messages" in page.text


def test_users_grid_filters_and_sorts_server_side(admin, stack):
    """Filters by name substring and sort order come from the query string."""
    for name in ("alice", "albert", "bob"):
        stack.add_user(name)
    page = admin.get("/admin/users.html?name=AL&sort=name&dir=desc")
    assert "albert" in page.text
    assert "bob</a>" not in page.text
    assert page.text.index("alice</a>") < page.text.index("albert</a>")


def test_users_grid_bad_numeric_filter_says_how(admin):
    """A numeric filter that is not n, >n, x..y is explained, not a crash."""
    page = admin.get("/admin/users.html?size=lots")
    assert page.code == 200
    assert "is not a number filter" in page.text


def test_add_user_creates_the_account(admin, stack):
    """A valid Add User form creates the user and redirects to the grid."""
    reply = _new_user(admin, name="Kate", password="kates-pw", confirm="kates-pw", real_name="K")
    assert reply.location == "/admin/users.html"
    assert stack.db.run_sync(users.by_name, "kate") is not None
    assert "User kate has been created." in admin.get("/admin/users.html").text


def test_add_user_validation_messages(admin, stack):
    """Each Add User rule of the manual is refused with a message saying what to fix."""
    cases = [
        ({"name": "bad name", "password": "abcdef", "confirm": "abcdef"}, "1 to 32 letters"),
        ({"name": "x@y", "password": "abcdef", "confirm": "abcdef"}, "no '@'"),
        ({"name": "a" * 33, "password": "abcdef", "confirm": "abcdef"}, "1 to 32"),
        ({"name": "kate", "password": "abcdef", "confirm": "abcdeg"}, "are different"),
        ({"name": "kate", "password": "abc", "confirm": "abc"}, "at least 5 characters"),
        ({"name": "kate", "password": "abc def", "confirm": "abc def"}, "must not contain spaces"),
        ({"name": "Boss", "password": "abcdef", "confirm": "abcdef"}, "already exists"),
        (
            {"name": "kate", "password": "abcdef", "confirm": "abcdef", "real_name": "x" * 81},
            "at most 80 characters",
        ),
    ]
    for fields, message in cases:
        reply = _new_user(admin, **fields)
        assert reply.code == 400, fields
        assert message in reply.text, (fields, reply.text)
    assert stack.db.run_sync(users.by_name, "kate") is None


def test_edit_user_changes_fields_and_password(admin, stack, new_client):
    """Edit saves comments, admin flag, quota and a new password in one submit."""
    stack.add_user("fred", "fredpass")
    page = admin.get("/admin/users/fred/edit.html")
    reply = admin.post(
        "/admin/users/fred/edit.html",
        {
            "csrf": field_value(page.text, "csrf"),
            "real_name": "Fred B",
            "enabled": "on",
            "quota_kb": "1000",
            "password": "freds-new",
            "confirm": "freds-new",
            "group": "",
        },
    )
    assert reply.location == "/admin/users.html"
    fred = stack.db.run_sync(users.by_name, "fred")
    assert (fred.real_name, fred.quota_kb, fred.is_admin) == ("Fred B", 1000, False)
    assert new_client().login("fred", "freds-new").location == "/webmail/"


def test_edit_user_refuses_bad_quota_and_changes_nothing(admin, stack):
    """A bad value in the Edit form leaves the user untouched."""
    stack.add_user("fred", real_name="Old")
    page = admin.get("/admin/users/fred/edit.html")
    reply = admin.post(
        "/admin/users/fred/edit.html",
        {"csrf": field_value(page.text, "csrf"), "real_name": "New", "quota_kb": "-5"},
    )
    assert reply.code == 400
    assert "whole number of kB" in reply.text
    assert stack.db.run_sync(users.by_name, "fred").real_name == "Old"


def test_admin_cannot_clear_own_admin_flag(admin, stack):
    """An admin cannot remove their own Administrator flag [L2531]."""
    page = admin.get("/admin/users/boss/edit.html")
    reply = admin.post(
        "/admin/users/boss/edit.html",
        {"csrf": field_value(page.text, "csrf"), "enabled": "on", "quota_kb": "0"},
    )
    assert reply.code == 400
    assert "own Administrator flag" in reply.text
    assert stack.db.run_sync(users.by_name, "boss").is_admin


def test_check_35_admin_deletion_rules(admin, stack, new_client, unchange_postmaster):
    """Check 35: not yourself; another admin may; never the last admin."""
    csrf = admin.csrf()
    admin.post("/admin/users/boss/delete", {"csrf": csrf})
    assert "cannot delete the account you are logged in as" in admin.get("/admin/users.html").text
    assert stack.db.run_sync(users.by_name, "boss") is not None

    other = new_client()
    assert other.login("postmaster", "admin").code == 303
    other.post("/admin/users/boss/delete", {"csrf": other.csrf()})
    assert stack.db.run_sync(users.by_name, "boss") is None

    # postmaster is now the last admin: neither deletable nor demotable.
    stack.add_user("helper", "helperpw", is_admin=True)
    third = new_client()
    third.login("helper", "helperpw")
    page = third.get("/admin/users/helper/edit.html")
    # helper demotes... no: helper removes postmaster's rights while two admins exist.
    third.post(
        "/admin/users/postmaster/edit.html",
        {"csrf": field_value(page.text, "csrf"), "enabled": "on", "quota_kb": "0"},
    )
    assert not stack.db.run_sync(users.by_name, "postmaster").is_admin
    reply = other.get("/admin/users.html")
    assert reply.code == 403  # postmaster is no longer an admin
    stack.add_user("plain", "plainpw")
    # helper is the last admin: another session of helper cannot demote it.
    page = third.get("/admin/users/helper/edit.html")
    assert "is_admin" in page.text
    api = third.request(
        "PATCH",
        "/api/v1/users/helper",
        json={"is_admin": False},
        headers={"X-CSRF-Token": third.csrf()},
    )
    assert api.code == 400
    # And it cannot be deleted (by itself here; the store refuses the last admin anyway).
    third.post("/admin/users/helper/delete", {"csrf": third.csrf()})
    assert stack.db.run_sync(users.by_name, "helper").is_admin


def test_bulk_add_creates_valid_rows_and_reports_bad_ones(admin, stack):
    """Bulk add creates the valid rows and keeps the bad ones with their error."""
    page = admin.get("/admin/users/bulk.html")
    form = {"csrf": field_value(page.text, "csrf")}
    form.update({"name0": "ann", "password0": "ann-pw1", "name1": "bad name", "password1": "x"})
    reply = admin.post("/admin/users/bulk.html", form)
    assert reply.code == 400
    assert "1 to 32 letters" in reply.text
    assert stack.db.run_sync(users.by_name, "ann") is not None
    assert stack.db.run_sync(users.by_name, "bad name") is None


def test_export_users_csv(admin, stack):
    """userlist.csv has the title row and one line per user, without passwords."""
    stack.add_user("fred", real_name='Fred "F", Jr')
    reply = admin.get("/admin/userlist.csv?titles=1&verbose=1")
    assert reply.header("content-type") == "text/csv; charset=utf-8"
    lines = reply.body.decode().split("\r\n")
    assert lines[0] == "User Id,Admin,Comments,Allow send Internet,Allow receive Internet,Enabled"
    assert 'fred,0,"Fred ""F"", Jr",1,1,1' in lines
    assert "boss,1,,1,1,1" in lines


def test_edit_user_primary_and_secondary_groups(admin, stack):
    """The General tab sets the primary group and any number of secondary groups."""
    from vpop3d.store import groups

    office = stack.db.run_sync(groups.add, "office").id
    sales = stack.db.run_sync(groups.add, "sales").id
    stack.add_user("fred")
    page = admin.get("/admin/users/fred/edit.html")
    admin.request(
        "POST",
        "/admin/users/fred/edit.html",
        data=[
            ("csrf", field_value(page.text, "csrf")),
            ("enabled", "on"),
            ("quota_kb", "0"),
            ("group", "office"),
            ("secondary", str(office)),
            ("secondary", str(sales)),
            ("secondary", "99999"),
        ],
    )
    fred = stack.db.run_sync(users.by_name, "fred")
    assert fred.primary_group_id == office
    assert sorted(stack.db.run_sync(users.secondary_groups, fred.id)) == sorted([office, sales])
    page = admin.get("/admin/users/fred/edit.html")
    assert f'name="secondary" value="{sales}" checked' in page.text


def test_bulk_edit_sets_ticked_fields_on_selected_users(admin, stack):
    """Bulk edit selects by wildcard and applies only the ticked changes."""
    from vpop3d.store import groups

    groups_id = stack.db.run_sync(groups.add, "retired").id
    for name in ("sam", "sue", "tom"):
        stack.add_user(name, real_name="old")
    page = admin.get("/admin/users/bulkedit.html?pattern=s*")
    assert "(2 Selected)" in page.text
    reply = admin.request(
        "POST",
        "/admin/users/bulkedit.html?pattern=s*",
        data=[
            ("csrf", field_value(page.text, "csrf")),
            ("action", "apply"),
            ("user", "sam"),
            ("user", "sue"),
            ("set_quota_kb", "on"),
            ("value_quota_kb", "2048"),
            ("set_group", "on"),
            ("value_group", "retired"),
            ("value_real_name", "not applied"),
        ],
    )
    assert reply.location == "/admin/users.html"
    for name in ("sam", "sue"):
        user = stack.db.run_sync(users.by_name, name)
        assert (user.quota_kb, user.primary_group_id, user.real_name) == (2048, groups_id, "old")
    assert stack.db.run_sync(users.by_name, "tom").quota_kb == 0


def test_bulk_edit_refuses_disabling_every_admin(admin, stack):
    """Disabling all administrators at once is refused and nothing changes."""
    page = admin.get("/admin/users/bulkedit.html")
    reply = admin.request(
        "POST",
        "/admin/users/bulkedit.html",
        data=[
            ("csrf", field_value(page.text, "csrf")),
            ("action", "apply"),
            ("user", "boss"),
            ("user", "postmaster"),
            ("set_enabled", "on"),
        ],
    )
    assert reply.code == 400
    assert "last administrator" in reply.text
    assert stack.db.run_sync(users.by_name, "boss").enabled
    assert stack.db.run_sync(users.by_name, "postmaster").enabled
