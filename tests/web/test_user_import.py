"""Import users from file (seed-2 §6): preview, column mapping, all-or-nothing import."""

from __future__ import annotations

import stat

import pytest

from tests.web.test_mail_pages import _multipart
from vpop3d.app import userimport
from vpop3d.app.passwords import verify_password
from vpop3d.store import users

HEADER = "User Id,Admin,Password,Comments,Allow send Internet,Forward To\r\n"


def _post_file(admin, csv_text: str, **fields: str):
    form = {"csrf": admin.csrf(), "ignore_first_line": "on", "passwords": "file", **fields}
    body, content_type = _multipart(form, "users.csv", csv_text.encode())
    return admin.request(
        "POST", "/admin/users/import.html", data=body, headers={"Content-Type": content_type}
    )


def _names(stack):
    return sorted(u.name for u in stack.db.run_sync(users.list_all))


def test_preview_shows_first_lines_and_imports_nothing(admin, stack):
    """Preview Import lists the first 5 lines with auto-mapped columns and creates no one."""
    text = HEADER + "".join(f"user{i},0,pw{i}secret,,1,\r\n" for i in range(7))
    reply = _post_file(admin, text, action="preview")
    assert reply.code == 200
    assert "Import Preview (first 5 lines of file)" in reply.text
    assert "<option selected>User Id</option>" in reply.text
    assert "<option selected>Forward To</option>" in reply.text
    table = reply.text.split('id="import-preview"')[1].split("</table>")[0]
    assert "user3" in table
    assert "user4" not in table  # header + 4 rows = the first five lines
    assert "user0" not in _names(stack)


def test_import_creates_users_with_the_spec_columns(admin, stack):
    """Rows become users with admin flag, comments, Internet permission and password."""
    text = HEADER + "ann,1,annsecret,Accounts,0,boss@x.test\r\nbob,0,bobsecret,,1,\r\n"
    reply = _post_file(admin, text, action="import")
    assert reply.code == 303
    page = admin.get("/admin/users.html").text
    assert "Import done: 2 created, 0 updated, 0 left unchanged, 0 removed." in page
    assert "Not imported (not supported yet): Forward To." in page
    ann = stack.db.run_sync(users.by_name, "ann")
    assert ann.is_admin
    assert ann.real_name == "Accounts"
    assert not ann.allow_send_internet
    assert verify_password(ann.password_hash, "annsecret")
    assert not stack.db.run_sync(users.by_name, "bob").is_admin


def test_a_bad_row_imports_nothing_and_names_each_line(admin, stack):
    """Errors are reported with their line numbers and no user from the file is created."""
    text = (
        HEADER
        + "carl,0,carlsecret,,,\r\n"
        + "bad name,0,x,,,\r\n"
        + "dora,maybe,dorasecret,,,\r\n"
        + "eve,0,,,,\r\n"
        + "carl,0,again,,,\r\n"
    )
    reply = _post_file(admin, text, action="import")
    assert reply.code == 400
    assert "Nothing was imported" in reply.text
    assert "line 3: invalid user name 'bad name'" in reply.text
    assert "line 4: Admin must be 1 or 0, not 'maybe'" in reply.text
    assert "line 5: the Password is empty" in reply.text
    assert "line 6: user 'carl' is also on line 2" in reply.text
    assert "carl" not in _names(stack)


def test_existing_users_untouched_unless_update_and_missing_removed(admin, stack):
    """Update off leaves existing users; Remove deletes absent users but never you (check 34)."""
    stack.add_user("old", real_name="keep me")
    stack.add_user("gone")
    text = "User Id,Admin,Comments\r\nold,0,changed\r\nnewbie,0,\r\n"
    reply = _post_file(admin, text, action="import", passwords="username", remove_missing="on")
    assert reply.code == 303, reply.text
    assert stack.db.run_sync(users.by_name, "old").real_name == "keep me"
    assert _names(stack) == ["boss", "newbie", "old"]
    assert verify_password(stack.db.run_sync(users.by_name, "newbie").password_hash, "newbie")
    reply = _post_file(admin, text, action="import", update_existing="on")
    assert reply.code == 303
    assert stack.db.run_sync(users.by_name, "old").real_name == "changed"


def test_random_passwords_go_to_a_private_log(admin, stack, web_context):
    """Random passwords are written to importusers.log (mode 0600) and work."""
    reply = _post_file(admin, "User Id\r\nrandy\r\n", action="import", passwords="random")
    assert reply.code == 303
    log = web_context.config.data_dir / "importusers.log"
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    name, password = log.read_text().strip().split(",")
    assert name == "randy"
    assert verify_password(stack.db.run_sync(users.by_name, "randy").password_hash, password)


def test_chosen_columns_override_titles_and_no_header_uses_defaults(admin, stack):
    """Without a header row the columns are User Id, Admin, Password; a chosen mapping wins."""
    reply = _post_file(admin, "zed,1,zedsecret\r\n", action="import", ignore_first_line="")
    assert reply.code == 303
    assert stack.db.run_sync(users.by_name, "zed").is_admin
    reply = _post_file(
        admin,
        "x,yan,yansecret\r\n",
        action="import",
        ignore_first_line="",
        col0="Ignore",
        col1="User Id",
        col2="Password",
    )
    assert reply.code == 303
    assert stack.db.run_sync(users.by_name, "yan") is not None


def test_import_refuses_clearing_your_own_admin_flag(admin, stack):
    """Updating yourself to Admin 0 is refused and nothing changes."""
    reply = _post_file(admin, "User Id,Admin\r\nboss,0\r\n", action="import", update_existing="on")
    assert reply.code == 400
    assert "cannot clear your own Administrator flag" in reply.text
    assert stack.db.run_sync(users.by_name, "boss").is_admin


def test_import_needs_a_file_and_the_csrf_token(admin):
    """An empty upload is refused with a message; a POST without the token is refused."""
    reply = _post_file(admin, "", action="import")
    assert reply.code == 400
    assert "Choose a CSV file" in reply.text
    assert admin.post("/admin/users/import.html", {"action": "import"}).code == 403


def test_read_rows_counts_physical_lines_across_quoted_newlines():
    """Line numbers follow the file, even when a quoted cell spans two lines."""
    rows = userimport.read_rows('a,"x\ny"\n\nb,z\n')
    assert [line for line, _ in rows] == [1, 4]


def test_import_with_no_user_id_column_is_refused():
    """A mapping without a User Id column cannot be imported."""
    with pytest.raises(userimport.ImportRefused, match="User Id"):
        userimport.import_users(
            None,  # type: ignore[arg-type]  # refused before the database is used
            "Admin\n1\n",
            userimport.ImportOptions(),
            acting_user="boss",
        )


def test_passwords_hashed_before_the_transaction_are_used(stack):
    """import_users stores the secrets computed beforehand instead of hashing again."""
    options = userimport.ImportOptions(passwords=userimport.PasswordMode.FROM_FILE)
    text = "User Id,Password\r\nkim,kim-pw1\r\nold,old-pw1\r\n"
    stack.add_user("old")
    plan = userimport.plan_passwords(text, options, frozenset({"old"}))
    assert plan.to_hash == ("kim-pw1",)
    hashed = userimport.hash_all(plan.to_hash, keep_plain=False)
    stack.db.run_sync(userimport.import_users, text, options, acting_user="x", hashed=hashed)
    kim = stack.db.run_sync(users.by_name, "kim")
    assert kim.password_hash == hashed["kim-pw1"].password_hash


def test_random_plan_passwords_are_the_ones_stored(stack):
    """With "Randomly" the planned passwords are the ones set and reported."""
    options = userimport.ImportOptions(passwords=userimport.PasswordMode.RANDOM)
    text = "User Id\r\nrae\r\n"
    plan = userimport.plan_passwords(text, options, frozenset())
    result = stack.db.run_sync(
        userimport.import_users, text, options, acting_user="x", random=plan.random
    )
    assert result.random_passwords == [("rae", plan.random["rae"])]
    stored = stack.db.run_sync(users.by_name, "rae").password_hash
    assert verify_password(stored, plan.random["rae"])
