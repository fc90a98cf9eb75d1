"""The objects every listener and background service is built from (made by ``tap.build``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.ssl import CertificateOptions

from vpop3d.app.auth import AccountAuthenticator
from vpop3d.app.notify import ChangeBus
from vpop3d.app.settings import Settings
from vpop3d.config import BootConfig
from vpop3d.store.db import Database


@dataclass
class ServerContext:
    """What listeners and background services are built from."""

    config: BootConfig
    reactor: Any
    database: Database
    settings: Settings
    blob_store: Any
    bus: ChangeBus
    authenticator: AccountAuthenticator
    tls: CertificateOptions | None
    extras: dict[str, Any] = field(default_factory=dict)

    def shared(self, name: str, make: Callable[[], Any]) -> Any:
        """One instance per server of an app object (delivery agent, mailbox access...)."""
        if name not in self.extras:
            self.extras[name] = make()
        return self.extras[name]
