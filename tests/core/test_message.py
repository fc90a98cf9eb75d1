"""Trace headers and header scanning (RFC 5321 §4.4, RFC 3848, RFC 8314 §7.4)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from vpop3d.core.message import (
    TraceInfo,
    date_header,
    header_end,
    header_values,
    original_recipient_headers,
    received_header,
    return_path_header,
    scan_headers,
    with_protocol,
)

WHEN = datetime(2026, 11, 24, 22, 0, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"esmtp": False}, "SMTP"),
        ({}, "ESMTP"),
        ({"auth": True}, "ESMTPA"),
        ({"tls": True}, "ESMTPS"),
        ({"tls": True, "auth": True}, "ESMTPSA"),
        ({"utf8": True}, "UTF8SMTP"),
        ({"utf8": True, "tls": True, "auth": True}, "UTF8SMTPSA"),
    ],
)
def test_with_protocol(kwargs: dict[str, bool], expected: str) -> None:
    """RFC 3848 / RFC 6531 §3.7.3 with-protocol keywords."""
    assert with_protocol(**kwargs) == expected


def test_received_plain() -> None:
    """A plain inbound Received: line has from/by/with/id, then ; and the date."""
    header = received_header(
        TraceInfo("mail.domain.test", "192.0.2.7", "mx.a.test", WHEN, queue_id="Q1")
    )
    assert header == (
        b"Received: from mail.domain.test ([192.0.2.7])\r\n"
        b"\tby mx.a.test\r\n"
        b"\twith ESMTP id Q1;\r\n"
        b"\tTue, 24 Nov 2026 22:00:05 +0000\r\n"
    )


def test_received_tls_and_auth() -> None:
    """TLS + AUTH gives ESMTPSA and the RFC 8314 tls clause with the cipher suite."""
    header = received_header(
        TraceInfo(
            "laptop",
            "2001:db8::7",
            "mx.a.test",
            WHEN,
            queue_id="Q2",
            peer_rdns="client.example.test",
            tls_description="TLSv1.3 TLS_AES_256_GCM_SHA384",
            authenticated=True,
            recipient="fred@a.test",
        )
    ).decode()
    assert header.startswith("Received: from laptop (client.example.test [IPv6:2001:db8::7])\r\n")
    assert "\twith ESMTPSA id Q2\r\n" in header
    assert "\tfor <fred@a.test>\r\n" in header
    assert "\ttls TLS_AES_256_GCM_SHA384 (TLSv1.3);\r\n" in header
    assert header.endswith("+0000\r\n")


def test_received_sanitises_helo() -> None:
    """Client-supplied text cannot inject header lines or comment breaks."""
    header = received_header(TraceInfo("evil\r\nX-Injected: 1 (x)", "192.0.2.7", "mx.a.test", WHEN))
    assert b"X-Injected: 1\r\n" not in header
    assert header.count(b"\r\n") == 4


def test_return_path() -> None:
    """Return-Path records the envelope sender; <> for the null sender."""
    assert return_path_header("bob@domain.test") == b"Return-Path: <bob@domain.test>\r\n"
    assert return_path_header("") == b"Return-Path: <>\r\n"


MESSAGE = (
    b"Subject: test message\r\n"
    b"From: Bobby Tables <bob@domain.com>\r\n"
    b"To: joe@example.com,\r\n"
    b"\tkaty@example.com\r\n"
    b"Received: one\r\n"
    b"received: two\r\n"
    b"\r\n"
    b"This is a test message\r\n"
    b"Subject: not a header\r\n"
)


def test_scan_headers_unfolds_and_stops_at_body() -> None:
    """Folded fields are unfolded; body lines are never taken as headers."""
    headers = scan_headers(MESSAGE)
    assert header_values(headers, "to") == ["joe@example.com, katy@example.com"]
    assert header_values(headers, "Subject") == ["test message"]
    assert header_values(headers, "RECEIVED") == ["one", "two"]


def test_header_end() -> None:
    """header_end points at the first body octet."""
    end = header_end(MESSAGE)
    assert end is not None
    assert MESSAGE[end:].startswith(b"This is")
    assert header_end(b"\r\nbody") == 2
    assert header_end(b"Subject: x\r\n") is None


def test_scan_headers_tolerates_8bit() -> None:
    """Latin-1 bytes in a header do not break the scan."""
    headers = scan_headers(b"Subject: caf\xe9\r\n\r\n")
    assert header_values(headers, "subject") == ["caf\ufffd"]


def test_date_and_original_recipient_headers() -> None:
    """Date: uses RFC 5322 form; one X-VPOP3-ORIGRCPT per recipient."""
    assert date_header(WHEN) == b"Date: Tue, 24 Nov 2026 22:00:05 +0000\r\n"
    assert original_recipient_headers(["a@x.test", "b@x.test"]) == (
        b"X-VPOP3-ORIGRCPT: <a@x.test>\r\nX-VPOP3-ORIGRCPT: <b@x.test>\r\n"
    )
