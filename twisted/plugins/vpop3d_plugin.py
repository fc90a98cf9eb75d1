"""twistd plugins: ``twistd -n vpop3d`` runs every service; ``vpop3d-smtp``, ``vpop3d-pop3``,
``vpop3d-imap`` and ``vpop3d-web`` run one protocol each, so a site can split the
services over processes or hosts that share one PostgreSQL database.

Imports of vpop3d happen only when twistd actually builds the service.
"""

from __future__ import annotations

from typing import Any

from twisted.application.service import IServiceMaker
from twisted.plugin import IPlugin
from zope.interface import implementer


@implementer(IServiceMaker, IPlugin)
class _VPOP3Maker:
    def __init__(self, tapname: str, description: str, protocols: frozenset[str] | None) -> None:
        self.tapname = tapname
        self.description = description
        self.protocols = protocols

    @property
    def options(self) -> Any:
        from vpop3d.tap import Options

        return Options

    def makeService(self, options: Any) -> Any:
        from vpop3d.tap import ALL_PROTOCOLS, make_service

        return make_service(options, self.protocols or ALL_PROTOCOLS)


vpop3d = _VPOP3Maker("vpop3d", "vpop3d mail server: every service in one process", None)
vpop3d_smtp = _VPOP3Maker(
    "vpop3d-smtp", "vpop3d SMTP (MTA, submission, SMTPS)", frozenset({"smtp"})
)
vpop3d_pop3 = _VPOP3Maker("vpop3d-pop3", "vpop3d POP3 and POP3S", frozenset({"pop3"}))
vpop3d_imap = _VPOP3Maker("vpop3d-imap", "vpop3d IMAP4 and IMAPS", frozenset({"imap"}))
vpop3d_web = _VPOP3Maker(
    "vpop3d-web", "vpop3d web admin and webmail", frozenset({"http", "status"})
)
