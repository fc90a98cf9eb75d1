"""Builds the outbound QueueRunner from the server context (one per server).

``build_queue_runner(context)`` is the BACKGROUND maker for the SMTP service; it
also publishes ``runner.kick`` as ``context.extras["queue_kick"]`` so the delivery
agent can wake the queue after each commit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from twisted.application.service import IService

from vpop3d.app.dkim import DKIMSigner
from vpop3d.app.queue import QueueRunner

if TYPE_CHECKING:
    from vpop3d.context import ServerContext


def shared_queue_runner(context: ServerContext) -> QueueRunner:
    def make() -> QueueRunner:
        return QueueRunner(
            context.database,
            context.blob_store,
            context.settings,
            context.reactor,
            hostname=context.config.hostname,
            signer=DKIMSigner(context.config.data_dir / "dkim", context.settings).sign,
        )

    return cast(QueueRunner, context.shared("queue_runner", make))


def build_queue_runner(context: ServerContext) -> IService:
    """The BACKGROUND entry: ``("smtp", build_queue_runner)``."""
    runner = shared_queue_runner(context)
    context.extras.setdefault("queue.kick", runner.kick)
    runner.setName("outbound-queue")
    return runner
