"""Refusals are logged with their reason; AUTH secrets never reach the log."""

from __future__ import annotations

import base64

from twisted.logger import LogLevel, capturedLogs, formatEvent

from tests.proto.smtp.fakes import FakeDelivery, Transcript, make_factory


def test_refusal_logged_with_reason():
    """A refused RCPT is logged at info with the peer and the reply text."""
    t = Transcript(make_factory(FakeDelivery()))
    t.send("EHLO c")
    t.send("MAIL FROM:<a@b.test>")
    with capturedLogs() as events:
        t.send("RCPT TO:<x@remote.test>")
    texts = [formatEvent(event) for event in events if event["log_level"] == LogLevel.info]
    assert any("192.0.2.7" in text and "Relaying denied" in text for text in texts), texts


def test_auth_payloads_are_redacted():
    """Neither the initial response nor later SASL lines appear in any log event."""
    secret = base64.b64encode(b"\0fred\0topsecret").decode()
    t = Transcript(make_factory(FakeDelivery(), allow_plaintext_auth_without_tls=True))
    t.send("EHLO c")
    with capturedLogs() as events:
        t.send("AUTH PLAIN " + secret)
        t.send("AUTH LOGIN")
        t.send(base64.b64encode(b"fred").decode())
        t.send(base64.b64encode(b"topsecret").decode())
    logged = " ".join(formatEvent(event) for event in events)
    assert "AUTH PLAIN <redacted>" in logged
    assert secret not in logged
    assert base64.b64encode(b"topsecret").decode() not in logged
    assert "topsecret" not in logged
