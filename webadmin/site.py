"""The HTTP service on port 5108: web admin, its JSON API and (later) webmail (Klein).

``make_site`` builds one Klein app; each view module registers its routes on it.
Every response carries the security headers; refusals raised as ``Halt`` become
their prepared response.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from klein import Klein
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from vpop3d import __version__
from webadmin import (
    api,
    api_ops,
    views_access,
    views_auth,
    views_bulk,
    views_bulkedit,
    views_collectors,
    views_connectors,
    views_import,
    views_mail,
    views_sessions,
    views_sharing,
    views_system,
    views_users,
    views_wizard,
)
from webadmin.guard import Halt, Web
from webadmin.security import secure_headers

if TYPE_CHECKING:
    from vpop3d.context import ServerContext

STATIC = Path(__file__).parent / "static"
STATIC_TYPES = {".css": b"text/css; charset=utf-8", ".js": b"text/javascript; charset=utf-8"}


def _static_files() -> dict[str, tuple[bytes, bytes]]:
    return {
        path.name: (STATIC_TYPES[path.suffix], path.read_bytes())
        for path in STATIC.iterdir()
        if path.suffix in STATIC_TYPES
    }


def build_app(context: ServerContext) -> Klein:
    app = Klein()
    web = Web(context)
    started = time.time()
    static = _static_files()

    @app.handle_errors(Halt)
    def halted(request: IRequest, failure: Failure) -> bytes:
        assert isinstance(failure.value, Halt)
        return failure.value.body

    @app.route("/health", methods=["GET"])
    def health(request: Request) -> bytes:
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        body = {"status": "ok", "version": __version__, "uptime": int(time.time() - started)}
        return json.dumps(body).encode()

    @app.route("/", methods=["GET"])
    def root(request: Request) -> bytes:
        secure_headers(request)
        request.setResponseCode(303)
        request.setHeader(b"location", b"/admin/index.html")
        return b""

    @app.route("/static/<name>", methods=["GET"])
    def static_file(request: Request, name: str) -> bytes:
        found = static.get(name)
        if found is None:
            request.setResponseCode(404)
            return b"not found"
        request.setHeader(b"content-type", found[0])
        request.setHeader(b"x-content-type-options", b"nosniff")
        request.setHeader(b"cache-control", b"max-age=300")
        return found[1]

    for module in (
        views_access,
        views_auth,
        views_users,
        views_bulk,
        views_bulkedit,
        views_collectors,
        views_connectors,
        views_import,
        views_mail,
        views_sessions,
        views_sharing,
        views_system,
        views_wizard,
        api_ops,
        api,
    ):
        module.register(app, web)
    return app


class Secured(Resource):
    """Wraps the Klein resource: security headers and a UTF-8 default on every page."""

    isLeaf = True

    def __init__(self, inner: Resource) -> None:
        super().__init__()
        self._inner = inner

    def render(self, request: Request) -> Any:
        if not request.path.startswith((b"/static/", b"/health")):
            secure_headers(request)
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return self._inner.render(request)


def make_site(context: ServerContext) -> Site:
    site = Site(Secured(build_app(context).resource()))
    site.displayTracebacks = False
    return site
