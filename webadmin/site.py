"""The HTTP service on port 5108: web admin and webmail (Klein).

This version serves the health endpoint that monitoring and the test suite use;
the admin pages and webmail are built on this site (issue #9).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from klein import Klein
from twisted.web.server import Site

from vpop3d import __version__

if TYPE_CHECKING:
    from vpop3d.context import ServerContext


class WebApp:
    app = Klein()

    def __init__(self, context: ServerContext) -> None:
        self.context = context
        self.started = time.time()

    @app.route("/health", methods=["GET"])
    def health(self, request: Any) -> bytes:
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        body = {"status": "ok", "version": __version__, "uptime": int(time.time() - self.started)}
        return json.dumps(body).encode()

    @app.route("/", methods=["GET"])
    def root(self, request: Any) -> bytes:
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return f"vpop3d {__version__} on {self.context.config.hostname}\n".encode()


def make_site(context: ServerContext) -> Site:
    site = Site(WebApp(context).app.resource())
    site.displayTracebacks = False
    return site
