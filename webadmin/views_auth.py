"""Login, logout, password change and the webmail landing page (seed-1 §3, §8).

One login page serves admins and users: admins land in the admin pages, other
users in webmail [L458]. The login form carries a token that must match a cookie
set with the page, which both proves cookies work and defeats login CSRF.
"""

from __future__ import annotations

import secrets

from klein import Klein
from twisted.web.server import Request

from vpop3d.app import accounts
from vpop3d.core.reply import LoginFailed
from webadmin import views_system, views_wizard
from webadmin.forms import arg
from webadmin.guard import Viewer, Web
from webadmin.security import peer_ip
from webadmin.sessions import LOGIN_COOKIE, SESSION_COOKIE

MIN_PASSWORD_KEY = "security.min_password_length"  # noqa: S105  (a setting name)


def _login_page(web: Web, request: Request, error: str = "", username: str = "") -> bytes:
    token = secrets.token_urlsafe(24)
    request.addCookie(
        LOGIN_COOKIE,
        token.encode(),
        path=b"/",
        httpOnly=True,
        sameSite="strict",
        secure=request.isSecure(),
    )
    return web.renderer.page("login.html", token=token, error=error, username=username)


def _set_session_cookie(request: Request, token: str, max_age: int | None) -> None:
    request.addCookie(
        SESSION_COOKIE,
        token.encode(),
        path=b"/",
        httpOnly=True,
        sameSite="lax",
        secure=request.isSecure(),
        max_age=None if max_age is None else str(max_age).encode(),
    )


def password_problem(web: Web, new: str, confirm: str) -> str | None:
    """Why a new password typed in a form is refused (seed-2 §2), or None."""
    minimum = web.settings.get_int(MIN_PASSWORD_KEY, 5)
    if new != confirm:
        return "The password and its confirmation are different."
    if len(new) < minimum:
        return f"The password must have at least {minimum} characters."
    if " " in new:
        return "The password must not contain spaces."
    return None


def register(app: Klein, web: Web) -> None:
    @app.route("/admin/", methods=["GET"])
    def admin_root(request: Request) -> bytes:
        raise web.redirect(request, "/admin/index.html")

    @app.route("/admin/index.html", methods=["GET"])
    async def index(request: Request) -> bytes:
        viewer = await web.session_viewer(request)
        if viewer is None:
            return _login_page(web, request)
        if viewer.user.must_change_password:
            raise web.redirect(request, "/admin/password.html")
        if not viewer.is_admin or not web.admin_ip_ok(request):
            raise web.redirect(request, "/webmail/")
        viewer = await web.admin_page(request)
        if arg(request, "firstconfig") == "1":
            raise web.redirect(request, "/admin/wizard.html?start=1")
        if views_wizard.should_offer(web, viewer):
            return views_wizard.offer_page(web, viewer)
        return await views_system.landing(web, request, viewer)

    @app.route("/admin/login", methods=["POST"])
    async def login(request: Request) -> bytes:
        username = arg(request, "username").strip()
        token = arg(request, "token")
        cookie = request.getCookie(LOGIN_COOKIE)
        if not token or cookie is None or not secrets.compare_digest(cookie.decode(), token):
            request.setResponseCode(400)
            return _login_page(
                web,
                request,
                "Your browser did not send the login cookie. Cookies are required in order "
                "to log on; enable them and try again.",
                username,
            )
        if web.throttle.blocked(peer_ip(request)):
            request.setResponseCode(429)
            return _login_page(
                web, request, "Too many failed logins from your address. Wait a few minutes."
            )
        try:
            principal = await web.login(request, username, arg(request, "password"))
        except LoginFailed:
            request.setResponseCode(401)
            return _login_page(web, request, "Login failed: wrong username or password.", username)
        remember = arg(request, "remember") == "on"
        session = web.sessions.create(principal.username, persistent=remember)
        _set_session_cookie(request, session.token, web.sessions.max_age(session))
        request.addCookie(LOGIN_COOKIE, b"", path=b"/", max_age=b"0")
        target = "/admin/index.html" if principal.is_admin else "/webmail/"
        raise web.redirect(request, target)

    @app.route("/admin/logout", methods=["POST"])
    async def logout(request: Request) -> bytes:
        viewer = await web.session_viewer(request)
        if viewer is not None and viewer.session is not None:
            if not viewer.session.check_csrf(arg(request, "csrf")):
                raise web.refuse_page(request, "Reload the page and log off again.", viewer)
            web.sessions.end(viewer.session.token)
        _set_session_cookie(request, "", 0)
        raise web.redirect(request, "/admin/index.html")

    @app.route("/admin/forgotten.html", methods=["GET"])
    def forgotten(request: Request) -> bytes:
        return web.renderer.page("forgotten.html")

    @app.route("/admin/password.html", methods=["GET", "POST"])
    async def change_password(request: Request) -> bytes:
        viewer = await web.session_viewer(request)
        if viewer is None or viewer.session is None:
            raise web.redirect(request, "/admin/index.html")
        error = ""
        if request.method == b"POST":
            if not viewer.session.check_csrf(arg(request, "csrf")):
                raise web.refuse_page(request, "Reload the page and try again.", viewer)
            error = await _change(web, request, viewer)
            if not error:
                web.flash(viewer, "ok", "Your password has been changed.")
                raise web.redirect(request, "/admin/index.html" if viewer.is_admin else "/webmail/")
            request.setResponseCode(400)
        return web.renderer.page(
            "password.html",
            viewer=viewer,
            error=error,
            forced=viewer.user.must_change_password,
        )

    @app.route("/webmail/", methods=["GET"])
    async def webmail(request: Request) -> bytes:
        viewer = await web.session_viewer(request)
        if viewer is None:
            raise web.redirect(request, "/admin/index.html")
        if viewer.user.must_change_password:
            raise web.redirect(request, "/admin/password.html")
        return web.renderer.page(
            "webmail.html",
            viewer=viewer,
            show_admin=viewer.is_admin and web.admin_ip_ok(request),
            flashes=web.take_flash(viewer),
        )


async def _change(web: Web, request: Request, viewer: Viewer) -> str:
    current = arg(request, "current")
    new = arg(request, "new")
    problem = password_problem(web, new, arg(request, "confirm"))
    if problem:
        return problem
    if new == current:
        return "Choose a password different from the current one."
    try:
        await web.login(request, viewer.user.name, current)
    except LoginFailed:
        return "The current password is wrong."
    try:
        await web.db.write(accounts.set_password, viewer.user.name, new)
        if viewer.user.webmail_password_hash:
            await web.db.write(accounts.set_password, viewer.user.name, new, webmail=True)
    except accounts.AdminError as exc:
        return str(exc)
    return ""
