"""The status service (seed-4 §13, port 5109): a read-only JSON status for monitors.

The VPOP3 Status Monitor's protocol is proprietary; its portable equivalent is this
HTTP endpoint, ``GET /status``, for administrators (HTTP Basic over the loopback or
a trusted network) answering version, uptime, listeners and queue size.
"""

from __future__ import annotations

import base64
import json
import time
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site

from vpop3d import __version__
from vpop3d.core.reply import LoginFailed
from vpop3d.core.sasl import PasswordCredentials
from vpop3d.ports import LoginContext, Principal
from vpop3d.store import queue

if TYPE_CHECKING:
    from vpop3d.context import ServerContext


class StatusResource(Resource):
    isLeaf = True

    def __init__(self, context: ServerContext) -> None:
        super().__init__()
        self.context = context
        self.started = time.time()

    def render_GET(self, request: Request) -> Any:  # noqa: N802  twisted.web naming
        if request.path != b"/status":
            request.setResponseCode(404)
            return b"not found\n"
        header = request.getHeader("authorization") or ""
        scheme, _, payload = header.partition(" ")
        try:
            user, _, password = base64.b64decode(payload).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            user = password = ""
        if scheme.lower() != "basic" or not user:
            return self._challenge(request)
        peer = getattr(request.getClientAddress(), "host", "")
        login = self.context.authenticator.authenticate(
            PasswordCredentials(user, password), LoginContext("status", peer, False)
        )
        login.addCallback(self._answer, request).addErrback(self._refuse, request)
        return NOT_DONE_YET

    def _challenge(self, request: Request) -> bytes:
        request.setResponseCode(401)
        request.setHeader(b"www-authenticate", b'Basic realm="vpop3d status"')
        return b"administrator login required\n"

    def _refuse(self, failure: Any, request: Request) -> None:
        failure.trap(LoginFailed)
        request.write(self._challenge(request))
        request.finish()

    def _answer(self, principal: Principal, request: Request) -> Deferred[None]:
        if not principal.is_admin:
            request.setResponseCode(403)
            request.write(b"administrators only\n")
            request.finish()
            return Deferred.fromCoroutine(_noop())

        def send(queued: int) -> None:
            config = self.context.config
            body = {
                "version": __version__,
                "hostname": config.hostname,
                "uptime": int(time.time() - self.started),
                "listeners": [{"name": s.name, "port": s.port} for s in config.enabled_listeners()],
                "queue": queued,
            }
            request.setHeader(b"content-type", b"application/json")
            request.write(json.dumps(body).encode())
            request.finish()

        return self.context.database.read(queue.count).addCallback(send)


async def _noop() -> None:
    return None


class StatusFactory(Site):
    def __init__(self, context: ServerContext) -> None:
        super().__init__(StatusResource(context))
        self.displayTracebacks = False
