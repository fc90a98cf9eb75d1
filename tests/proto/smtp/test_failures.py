"""Our own failures (spool, delivery, auth backend) give 4xx and leave the session usable."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from twisted.internet.defer import Deferred, fail

from tests.proto.smtp.fakes import (
    FakeAuthenticator,
    FakeDelivery,
    FakeSpool,
    Transcript,
    make_factory,
)
from vpop3d.core import sasl
from vpop3d.core.reply import LoginFailed, ReplyError
from vpop3d.ports import Envelope, LoginContext, Principal, SMTPContext, Spool

TEMP = "451 4.3.0 Temporary server error, please try again later"


class BrokenSpool(FakeSpool):
    def write(self, data: bytes) -> None:
        raise OSError("disk full")


@dataclass
class FlakyDelivery(FakeDelivery):
    spool_mode: str = "ok"  # "ok", "open-fails", "write-fails"
    accept_error: Exception | None = None

    def open_spool(self) -> FakeSpool:
        if self.spool_mode == "open-fails":
            raise OSError("no spool dir")
        spool = BrokenSpool() if self.spool_mode == "write-fails" else FakeSpool()
        self.spools.append(spool)
        return spool

    def accept(self, context: SMTPContext, envelope: Envelope, spool: Spool) -> Deferred[str]:
        if self.accept_error is not None:
            return fail(self.accept_error)
        return super().accept(context, envelope, spool)


def send_message(t: Transcript, body: bytes = b"hello\r\n") -> list[str]:
    t.send("EHLO c")
    t.send("MAIL FROM:<a@b.test>")
    t.send("RCPT TO:<fred@a.test>")
    t.send("DATA")
    return t.raw(body + b".\r\n")


def test_spool_that_cannot_open_gives_451():
    """If no spool can be opened the body is read and answered 451 4.3.0."""
    t = Transcript(make_factory(FlakyDelivery(spool_mode="open-fails")))
    assert send_message(t) == [TEMP]
    assert t.send("NOOP") == ["250 2.0.0 OK"]


def test_spool_write_failure_gives_451_and_discards():
    """A failing spool write is answered 451 and the spool is discarded."""
    delivery = FlakyDelivery(spool_mode="write-fails")
    t = Transcript(make_factory(delivery))
    assert send_message(t) == [TEMP]
    assert delivery.spools[0].discarded


def test_accept_refusal_is_the_reply_and_spool_discarded():
    """A ReplyError from accept (e.g. content policy) is sent as is."""
    refusal = ReplyError.of(554, "5.7.1", "Message Prohibited (test)")
    delivery = FlakyDelivery(accept_error=refusal)
    t = Transcript(make_factory(delivery))
    assert send_message(t) == ["554 5.7.1 Message Prohibited (test)"]
    assert delivery.spools[0].discarded
    assert t.send("MAIL FROM:<a@b.test>") == ["250 2.1.0 OK"]


def test_accept_crash_is_a_temporary_failure():
    """An unexpected error in accept is 451 4.3.0, never a 5xx."""
    delivery = FlakyDelivery(accept_error=RuntimeError("database gone"))
    t = Transcript(make_factory(delivery))
    assert send_message(t) == [TEMP]
    assert delivery.spools[0].discarded


def test_connection_lost_while_port_call_pending():
    """A result arriving after the client left writes nothing and raises nothing."""
    delivery = FakeDelivery(hold=True)
    t = Transcript(make_factory(delivery))
    t.send("EHLO c")
    t.send("MAIL FROM:<a@b.test>")
    t.protocol.connectionLost()
    delivery.held[0].callback(None)
    assert t.take() == []


def test_connection_lost_in_data_discards_the_spool():
    """A connection dropped mid-DATA leaves no half message behind."""
    delivery = FakeDelivery()
    t = Transcript(make_factory(delivery))
    t.send("EHLO c")
    t.send("MAIL FROM:<a@b.test>")
    t.send("RCPT TO:<fred@a.test>")
    t.send("DATA")
    t.raw(b"partial body\r\n")
    t.protocol.connectionLost()
    assert delivery.spools[0].discarded
    assert delivery.accepted == []


class TemporaryAuthenticator(FakeAuthenticator):
    def authenticate(
        self, credentials: sasl.Credentials, context: LoginContext
    ) -> Deferred[Principal]:
        return fail(LoginFailed("Directory unavailable", response_code="SYS/TEMP"))


def test_auth_backend_outage_is_454_and_not_counted():
    """A temporary login failure answers 454 4.7.0 and does not count as a failed AUTH."""
    t = Transcript(
        make_factory(
            FakeDelivery(),
            TemporaryAuthenticator(),
            allow_plaintext_auth_without_tls=True,
            max_auth_failures=1,
        )
    )
    t.send("EHLO c")
    line = "AUTH PLAIN " + base64.b64encode(b"\0fred\0secret").decode()
    assert t.send(line) == ["454 4.7.0 Temporary authentication failure"]
    assert t.send(line) == ["454 4.7.0 Temporary authentication failure"]
    assert not t.closed
