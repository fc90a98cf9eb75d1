"""UTF8=ACCEPT (RFC 6855) and LITERAL- (RFC 7888)."""

from __future__ import annotations

from tests.proto.imap.fakes import Client, message, with_messages
from vpop3d.proto.imap.session import IMAPConfig


def test_utf8_accept_advertised_and_enabled() -> None:
    """UTF8=ACCEPT is offered after login and ENABLE reports it enabled."""
    client = Client(with_messages(0))
    client.login()
    assert " UTF8=ACCEPT" in client.lines("c1 CAPABILITY")[0]
    assert client.lines("e1 ENABLE UTF8=ACCEPT") == [
        "* ENABLED UTF8=ACCEPT",
        "e1 OK ENABLE completed",
    ]


def test_mailbox_names_are_utf7_until_enabled() -> None:
    """Without UTF8=ACCEPT names travel as modified UTF-7."""
    client = Client(with_messages(0))
    client.login()
    assert "c1 OK" in client.send("c1 CREATE Entw&APw-rfe")
    assert '* LIST (\\HasNoChildren) "/" "Entw&APw-rfe"' in client.lines('l1 LIST "" Entw*')


def test_utf8_names_after_enable() -> None:
    """After ENABLE UTF8=ACCEPT names are plain UTF-8 both ways, in quoted strings."""
    client = Client(with_messages(0))
    client.login()
    client.send("e1 ENABLE UTF8=ACCEPT")
    assert "c1 OK" in client.send('c1 CREATE "Entwürfe"')
    assert "Entwürfe" in client.store.folders
    assert '* LIST (\\HasNoChildren) "/" "Entwürfe"' in client.lines('l1 LIST "" Entw*')
    out = client.lines('s1 STATUS "Entwürfe" (MESSAGES)')
    assert out[0] == '* STATUS "Entwürfe" (MESSAGES 0)'


def test_utf8_append_data_item() -> None:
    """APPEND ... UTF8 (~{n}) stores the literal8 once UTF8=ACCEPT is on, BAD before."""
    client = Client(with_messages(0))
    client.login()
    body = message("Grüße")
    before = client.raw(b"a0 APPEND INBOX UTF8 (~{%d+}\r\n%s)\r\n" % (len(body), body))
    assert before.startswith("a0 BAD")
    client.send("e1 ENABLE UTF8=ACCEPT")
    out = client.raw(b"a1 APPEND INBOX UTF8 (~{%d+}\r\n%s)\r\n" % (len(body), body))
    assert "a1 OK [APPENDUID" in out
    assert client.store.appends[-1] == ("INBOX", body)


def test_literal_minus_advertised_and_limit() -> None:
    """With LITERAL-, small {n+} literals work and larger ones are refused with TOOBIG."""
    client = Client(with_messages(0), config=IMAPConfig(literal_plus=False))
    assert " LITERAL- " in client.greeting
    assert "LITERAL+" not in client.greeting
    client.login()
    small = message("small")
    assert "a1 OK" in client.raw(b"a1 APPEND INBOX {%d+}\r\n%s\r\n" % (len(small), small))
    big = b"x" * 5000
    out = client.raw(b"a2 APPEND INBOX {%d+}\r\n" % len(big))
    assert out.startswith("a2 BAD [TOOBIG]")
    assert client.transport.disconnecting


def test_literal_plus_default_has_no_small_limit() -> None:
    """The default LITERAL+ accepts non-synchronizing APPEND literals over 4096 octets."""
    client = Client(with_messages(0))
    assert " LITERAL+ " in client.greeting
    client.login()
    big = message("big", "y" * 6000 + "\r\n")
    assert "a1 OK" in client.raw(b"a1 APPEND INBOX {%d+}\r\n%s\r\n" % (len(big), big))
