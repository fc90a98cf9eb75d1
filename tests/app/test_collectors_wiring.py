"""The collector runner's view of inbound SMTP sessions, through the real wiring."""

from __future__ import annotations

from twisted.internet.task import Clock

from tests.support.stack import Stack
from vpop3d.config import ListenerSpec
from vpop3d.proto.smtp.server import SMTPServerFactory
from vpop3d.wiring_collectors import shared_collector_runner
from vpop3d.wiring_smtp import build_smtp_factory


def _spec(name: str, port: int) -> ListenerSpec:
    return ListenerSpec(name, "smtp", "smtp", port, "127.0.0.1", False, "optional", False)


def test_feed_wait_counts_sessions_on_every_smtp_listener(stack: Stack) -> None:
    """Open sessions on all SMTP listeners are summed; other listeners are not counted."""
    context = stack.server_context(Clock(), "mail.example.test")
    smtp = build_smtp_factory(context, _spec("smtp", 25))
    submission = build_smtp_factory(context, _spec("submission", 587))
    assert isinstance(smtp, SMTPServerFactory)
    assert isinstance(submission, SMTPServerFactory)
    context.extras["listener.smtp"] = smtp
    context.extras["listener.submission"] = submission
    context.extras["listener.status"] = object()
    counted = shared_collector_runner(context)._inbound
    assert counted is not None
    assert counted() == 0
    assert smtp.admit("192.0.2.1") is None
    assert smtp.admit("192.0.2.2") is None
    assert submission.admit("192.0.2.3") is None
    assert counted() == 3
    smtp.release("192.0.2.1")
    assert counted() == 2
