"""Who is asking: session or HTTP Basic login, admin rights, CSRF, and refusals.

Every page and API handler starts here. A refusal is raised as :class:`Halt`, which
the Klein apps turn into the response it carries (a redirect, a 403 page, JSON).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from twisted.internet.defer import Deferred
from twisted.web.server import Request

from vpop3d.app.auth import principal_for
from vpop3d.context import ServerContext
from vpop3d.core.reply import LoginFailed
from vpop3d.core.sasl import PasswordCredentials
from vpop3d.ports import LoginContext, Principal
from vpop3d.store import users
from vpop3d.store.rows import User
from vpop3d.wiring_delivery import shared_router
from webadmin.render import Renderer
from webadmin.security import ADMIN_NETWORKS_KEY, LoginThrottle, admin_allowed, peer_ip
from webadmin.sessions import SESSION_COOKIE, Session, SessionStore

UNSAFE = {b"POST", b"PUT", b"PATCH", b"DELETE"}


class Halt(Exception):
    """Stop handling the request and answer with ``body`` (status already set)."""

    def __init__(self, body: bytes) -> None:
        super().__init__()
        self.body = body


@dataclass(frozen=True, slots=True)
class Viewer:
    """The logged-in user of one request."""

    user: User
    principal: Principal
    session: Session | None  # None for HTTP Basic (scripts)

    @property
    def is_admin(self) -> bool:
        return self.principal.is_admin

    @property
    def csrf(self) -> str:
        return self.session.csrf if self.session else ""


def _load(conn: Connection, name: str) -> tuple[User, Principal] | None:
    user = users.by_name(conn, name)
    if user is None:
        return None
    return user, principal_for(conn, user)


def json_body(request: Request, code: int, body: Any) -> bytes:
    request.setResponseCode(code)
    request.setHeader(b"content-type", b"application/json")
    return json.dumps(body).encode()


class RoutingAwareDatabase:
    """The store as the web admin uses it: every write also drops the router's cached
    snapshot, so a user, group, domain or mapping change routes mail at once."""

    def __init__(self, context: ServerContext) -> None:
        self._context = context
        self._db = context.database

    def read(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]:
        return self._db.read(fn, *args, **kwargs)

    def call_in_pool(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]:
        return self._db.call_in_pool(fn, *args, **kwargs)

    def call_cpu(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]:
        return self._db.call_cpu(fn, *args, **kwargs)

    def write(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]:
        done: Deferred[Any] = self._db.write(fn, *args, **kwargs)

        def invalidate(result: Any) -> Any:
            routing_changed(self._context)
            return result

        return done.addBoth(invalidate)


def routing_changed(context: ServerContext) -> None:
    """Tell the shared router that admin data changed (wiring_delivery.shared_router)."""
    shared_router(context).invalidate()


class Web:
    """State shared by the page and API apps of one HTTP listener."""

    def __init__(self, context: ServerContext) -> None:
        self.context = context
        self.db = RoutingAwareDatabase(context)
        self.settings = context.settings
        self.sessions = SessionStore(context.reactor)
        self.throttle = LoginThrottle(context.reactor)
        self.renderer = Renderer()

    # -- identity ---------------------------------------------------------------

    async def session_viewer(self, request: Request) -> Viewer | None:
        token = request.getCookie(SESSION_COOKIE)
        session = self.sessions.get(token.decode("ascii", "replace") if token else None)
        if session is None:
            return None
        found = await self.db.read(_load, session.username)
        if found is None:
            self.sessions.end(session.token)
            return None
        return Viewer(found[0], found[1], session)

    async def login(self, request: Request, username: str, password: str) -> Principal:
        """Check a web login (webmail password applies), throttled per address."""
        ip = peer_ip(request)
        if self.throttle.blocked(ip):
            raise LoginFailed()
        context = LoginContext(service="web", peer_ip=ip, secure=request.isSecure())
        try:
            principal: Principal = await self.context.authenticator.authenticate(
                PasswordCredentials(username, password), context
            )
        except LoginFailed:
            self.throttle.failed(ip)
            raise
        self.throttle.succeeded(ip)
        return principal

    async def basic_viewer(self, request: Request) -> Viewer | None:
        header = request.getHeader("authorization")
        if not header or not header.lower().startswith("basic "):
            return None
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise Halt(json_body(request, 401, {"error": "malformed Basic credentials"})) from None
        username, _, password = decoded.partition(":")
        try:
            principal = await self.login(request, username, password)
        except LoginFailed:
            request.setHeader(b"www-authenticate", b'Basic realm="vpop3d"')
            raise Halt(json_body(request, 401, {"error": "login failed"})) from None
        found = await self.db.read(_load, principal.username)
        if found is None:
            raise Halt(json_body(request, 401, {"error": "login failed"}))
        return Viewer(found[0], found[1], None)

    def admin_ip_ok(self, request: Request) -> bool:
        networks = self.settings.get(ADMIN_NETWORKS_KEY, []) or []
        return admin_allowed(peer_ip(request), [str(n) for n in networks])

    # -- page guards ------------------------------------------------------------

    def redirect(self, request: Request, url: str) -> Halt:
        request.setResponseCode(303)
        request.setHeader(b"location", url.encode())
        return Halt(b"")

    def refuse_page(self, request: Request, text: str, viewer: Viewer | None) -> Halt:
        request.setResponseCode(403)
        body = self.renderer.page("refused.html", message=text, viewer=viewer)
        return Halt(body)

    async def admin_page(self, request: Request, *, allow_must_change: bool = False) -> Viewer:
        """The admin viewing a page; POSTs must carry the session's CSRF token."""
        viewer = await self.session_viewer(request)
        if viewer is None:
            raise self.redirect(request, "/admin/index.html")
        if not viewer.is_admin:
            raise self.refuse_page(request, "You are not an administrator.", viewer)
        if not self.admin_ip_ok(request):
            raise self.refuse_page(
                request, "Administration is not allowed from your network address.", viewer
            )
        if request.method in UNSAFE:
            offered = request.args.get(b"csrf", [b""])[0].decode("ascii", "replace")
            assert viewer.session is not None
            if not viewer.session.check_csrf(offered):
                raise self.refuse_page(
                    request,
                    "The form had expired or did not come from this site. "
                    "Reload the page and try again.",
                    viewer,
                )
        if viewer.user.must_change_password and not allow_must_change:
            raise self.redirect(request, "/admin/password.html")
        return viewer

    # -- API guard --------------------------------------------------------------

    async def api_admin(self, request: Request) -> Viewer:
        viewer = await self.basic_viewer(request)
        if viewer is None:
            viewer = await self.session_viewer(request)
            if viewer is None:
                request.setHeader(b"www-authenticate", b'Basic realm="vpop3d"')
                raise Halt(json_body(request, 401, {"error": "log in first"}))
            if request.method in UNSAFE:
                offered = request.getHeader("x-csrf-token")
                assert viewer.session is not None
                if not viewer.session.check_csrf(offered):
                    raise Halt(json_body(request, 403, {"error": "missing or wrong X-CSRF-Token"}))
        if not viewer.is_admin:
            raise Halt(json_body(request, 403, {"error": "administrators only"}))
        if not self.admin_ip_ok(request):
            raise Halt(json_body(request, 403, {"error": "administration not allowed from here"}))
        if viewer.user.must_change_password:
            raise Halt(json_body(request, 403, {"error": "change your password first"}))
        return viewer

    def flash(self, viewer: Viewer, kind: str, text: str) -> None:
        if viewer.session is not None:
            viewer.session.flash.append((kind, text))

    def take_flash(self, viewer: Viewer) -> list[tuple[str, str]]:
        if viewer.session is None:
            return []
        messages, viewer.session.flash = viewer.session.flash, []
        return messages
