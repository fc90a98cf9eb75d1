"""Login, sessions, CSRF, must-change-password and admin/non-admin separation."""

from __future__ import annotations

from tests.web.support import field_value
from vpop3d.store import users


def test_login_page_has_the_spec_texts(new_client):
    """Check 1: /admin/index.html shows the login fields and texts of the manual."""
    page = new_client().get("/admin/index.html")
    assert page.code == 200
    for text in (
        "Username",
        "Password",
        "Remember me next time I connect",
        "LOG ON",
        "Forgotten Password",
        "Please note that JavaScript and Cookies are required in order to log on.",
    ):
        assert text in page.text


def test_pages_carry_security_headers(new_client):
    """Every page forbids framing and sniffing and has a strict CSP."""
    page = new_client().get("/admin/index.html")
    assert page.header("x-frame-options") == "DENY"
    assert page.header("x-content-type-options") == "nosniff"
    assert "default-src 'self'" in (page.header("content-security-policy") or "")
    assert page.header("content-type") == "text/html; charset=utf-8"


def test_default_admin_must_change_password_first(new_client, stack):
    """Check 2: postmaster/admin logs in, is sent to change the initial password, then in."""
    client = new_client()
    reply = client.login("postmaster", "admin")
    assert reply.code == 303
    assert client.get("/admin/index.html").location == "/admin/password.html"
    assert client.get("/admin/users.html").location == "/admin/password.html"
    page = client.get("/admin/password.html")
    assert "initial password" in page.text
    csrf = field_value(page.text, "csrf")
    bad = client.post(
        "/admin/password.html",
        {"csrf": csrf, "current": "admin", "new": "abc", "confirm": "abc"},
    )
    assert bad.code == 400
    assert "at least 5 characters" in bad.text
    done = client.post(
        "/admin/password.html",
        {"csrf": csrf, "current": "admin", "new": "n3w-Secret", "confirm": "n3w-Secret"},
    )
    assert done.location == "/admin/index.html"
    landing = client.get("/admin/index.html")
    assert landing.code == 200
    assert "Setup Wizard" in landing.text  # a fresh server offers the wizard next
    user = stack.db.run_sync(users.by_name, "postmaster")
    assert not user.must_change_password


def test_wrong_password_is_refused(new_client):
    """Check 2: a wrong password gets the login page again with a message, no session."""
    client = new_client()
    reply = client.login("postmaster", "wrong")
    assert reply.code == 401
    assert "Login failed" in reply.text
    assert "vpop3d_session" not in client.cookies
    assert client.get("/admin/users.html").location == "/admin/index.html"


def test_login_without_the_cookie_is_refused(new_client):
    """The login form only works with its cookie (cookies required, no login CSRF)."""
    client = new_client()
    page = client.get("/admin/index.html")
    token = field_value(page.text, "token")
    client.cookies.clear()
    reply = client.post(
        "/admin/login", {"username": "postmaster", "password": "admin", "token": token}
    )
    assert reply.code == 400
    assert "Cookies are required" in reply.text


def test_session_cookie_is_httponly_and_samesite(new_client):
    """The session cookie cannot be read by scripts or sent cross-site."""
    client = new_client()
    reply = client.login("postmaster", "admin")
    cookie = next(c for c in reply.headers["set-cookie"] if c.startswith("vpop3d_session="))
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Max-Age" not in cookie


def test_remember_me_makes_a_persistent_cookie(new_client):
    """ "Remember me next time I connect" gives the session cookie a lifetime."""
    client = new_client()
    reply = client.login("postmaster", "admin", remember=True)
    cookie = next(c for c in reply.headers["set-cookie"] if c.startswith("vpop3d_session="))
    assert "Max-Age=2592000" in cookie


def test_non_admin_lands_in_webmail_without_admin_item(stack, new_client):
    """Check 3: a user logs in on the same page, lands in WebMail, and /admin/* is refused."""
    stack.add_user("fred", "fredpass")
    client = new_client()
    assert client.login("fred", "fredpass").location == "/webmail/"
    page = client.get("/webmail/")
    assert "WebMail" in page.text
    assert 'id="admin-link"' not in page.text
    for path in ("/admin/users.html", "/admin/groups.html", "/admin/queue.html"):
        refused = client.get(path)
        assert refused.code == 403
        assert "not an administrator" in refused.text
    assert client.get("/api/v1/users").code == 403


def test_admin_sees_admin_item_in_webmail(admin):
    """Check 3: an admin in WebMail has the Admin menu item."""
    page = admin.get("/webmail/")
    assert 'id="admin-link"' in page.text


def test_post_without_csrf_token_is_refused(admin, stack):
    """A state change without the session's CSRF token changes nothing."""
    reply = admin.post("/admin/domains/add", {"name": "evil.test", "csrf": "forged"})
    assert reply.code == 403
    reply = admin.post("/admin/domains/add", {"name": "evil.test"})
    assert reply.code == 403
    page = admin.get("/admin/localmail.html")
    assert "evil.test" not in page.text


def test_logout_ends_the_session(admin):
    """Log off ends the session on the server."""
    csrf = admin.csrf()
    token = admin.cookies["vpop3d_session"]
    assert admin.post("/admin/logout", {"csrf": csrf}).location == "/admin/index.html"
    admin.cookies["vpop3d_session"] = token
    assert admin.get("/admin/users.html").location == "/admin/index.html"


def test_repeated_failures_are_throttled(new_client, web_context):
    """After ten failed logins from one address even the right password is refused."""
    client = new_client()
    for _ in range(10):
        assert client.login("postmaster", "nope").code == 401
    blocked = client.login("postmaster", "admin")
    assert blocked.code == 429
    assert "Too many failed logins" in blocked.text
    web_context.reactor.now += 301
    assert client.login("postmaster", "admin").code == 303


def test_admin_ip_rule_spares_loopback(admin, stack, web_context):
    """An admin-network rule never locks out loopback (seed-1 §3 [L465])."""
    stack.put_setting("web.admin_allowed_networks", ["192.0.2.0/24"])
    web_context.settings.load_sync()
    assert admin.get("/admin/users.html").code == 200


def test_deleted_user_loses_the_session(admin, stack, new_client):
    """A user's sessions end when the account is deleted."""
    stack.add_user("fred", "fredpass")
    fred = new_client()
    fred.login("fred", "fredpass")
    csrf = admin.csrf()
    admin.post("/admin/users/fred/delete", {"csrf": csrf})
    assert fred.get("/webmail/").location == "/admin/index.html"
