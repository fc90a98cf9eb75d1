"""POP3 AUTHORIZATION state: USER/PASS, APOP, failures, locks (RFC 1939 §4, §7)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from twisted.internet.task import Clock

from tests.proto.pop3.harness import (
    APOP_TIMESTAMP,
    FakeAuthenticator,
    FakeMaildrops,
    Transcript,
    make_factory,
    sample_maildrops,
)
from vpop3d.core import sasl
from vpop3d.core.reply import Reply
from vpop3d.proto.pop3.server import POP3ListenerConfig, POP3ServerFactory


def new_transcript(**kwargs: Any) -> Transcript:
    t = Transcript(make_factory(maildrops=sample_maildrops(), **kwargs))
    t.greeting()
    return t


def test_user_pass_login() -> None:
    """USER then PASS logs in and reports the maildrop size."""
    t = new_transcript()
    t.expect("USER fred", "+OK Enter password")
    t.expect("PASS letmein", "+OK 3 messages (89 octets)")


def test_login_with_address_is_passed_through() -> None:
    """USER fred@example.test reaches the Authenticator unchanged and logs in."""
    authenticator = FakeAuthenticator()
    t = Transcript(make_factory(authenticator, sample_maildrops()))
    assert t.login("fred@example.test").startswith("+OK 3 messages")
    assert authenticator.credentials == [sasl.PasswordCredentials("fred@example.test", "letmein")]


def test_login_context_names_service_peer_and_security() -> None:
    """The Authenticator sees service pop3, the peer IP and the TLS state."""
    authenticator = FakeAuthenticator()
    t = Transcript(make_factory(authenticator, sample_maildrops()), peer="198.51.100.4")
    t.login()
    context = authenticator.contexts[0]
    assert (context.service, context.peer_ip, context.secure) == (
        "pop3",
        "198.51.100.4",
        False,
    )


def test_password_may_contain_spaces() -> None:
    """PASS takes the rest of the line as the password (RFC 1939 §7)."""
    authenticator = FakeAuthenticator(passwords={"fred": "let me in"})
    t = Transcript(make_factory(authenticator, sample_maildrops()))
    assert t.login(password="let me in").startswith("+OK 3 messages")


def test_wrong_password_gets_auth_code_and_stays_in_authorization() -> None:
    """A wrong password answers -ERR [AUTH] and a retry may succeed."""
    t = new_transcript()
    t.send("USER fred")
    t.expect("PASS nope", "-ERR [AUTH] Authentication failed")
    t.expect("STAT", "-ERR Command not valid in this state")
    assert t.login().startswith("+OK 3 messages")


def test_pass_without_user() -> None:
    """PASS before USER is refused without counting as a failed login."""
    t = new_transcript()
    t.expect("PASS letmein", "-ERR No user name given, send USER first")
    t.expect("PASS letmein", "-ERR No user name given, send USER first")
    t.expect("PASS letmein", "-ERR No user name given, send USER first")
    assert not t.is_closed()


def test_unknown_user_gets_the_same_reply_as_wrong_password() -> None:
    """An unknown user is indistinguishable from a wrong password."""
    t = new_transcript()
    t.expect("USER nosuch", "+OK Enter password")
    t.expect("PASS letmein", "-ERR [AUTH] Authentication failed")


def test_three_failed_logins_disconnect() -> None:
    """The third failed login in one session closes the connection (manual L6325)."""
    t = new_transcript()
    for _ in range(2):
        t.send("USER fred")
        t.expect("PASS bad", "-ERR [AUTH] Authentication failed")
        assert not t.is_closed()
    t.send("USER fred")
    t.expect(
        "PASS bad",
        "-ERR [AUTH] Authentication failed; too many failed logins, goodbye",
    )
    assert t.is_closed()


def test_max_failed_logins_is_configurable() -> None:
    """With max_failed_logins=1 the first failure disconnects."""
    t = new_transcript(max_failed_logins=1)
    t.send("USER fred")
    t.send("PASS bad")
    assert t.is_closed()


def test_temporary_auth_failure_is_not_counted() -> None:
    """A [SYS/TEMP] failure from the Authenticator is shown and not counted."""
    authenticator = FakeAuthenticator(failure_code="SYS/TEMP")
    t = Transcript(make_factory(authenticator, sample_maildrops(), max_failed_logins=1))
    t.send("USER fred")
    t.expect("PASS bad", "-ERR [SYS/TEMP] Authentication failed")
    assert not t.is_closed()


def test_second_login_gets_in_use_until_first_quits() -> None:
    """A locked maildrop refuses a second login with [IN-USE] (manual L1461)."""
    drops = sample_maildrops()
    factory = make_factory(maildrops=drops)
    first = Transcript(factory)
    second = Transcript(factory)
    assert first.login().startswith("+OK")
    second.send("USER fred")
    second.expect("PASS letmein", "-ERR [IN-USE] Mailbox locked by another session")
    assert not second.is_closed()
    first.expect("QUIT", "+OK signing off")
    second.send("USER fred")
    second.expect("PASS letmein", "+OK 3 messages (89 octets)")


def test_quit_in_authorization_signs_off() -> None:
    """QUIT before login closes without touching any maildrop."""
    drops = sample_maildrops()
    t = Transcript(make_factory(maildrops=drops))
    t.expect("QUIT", "+OK signing off")
    assert t.is_closed()
    assert drops.drops == []


def test_snapshot_hides_new_arrivals() -> None:
    """A message arriving during the session is invisible until the next login."""
    drops = sample_maildrops()
    factory = make_factory(maildrops=drops)
    t = Transcript(factory)
    t.login()
    drops.add("fred", b"Subject: late\r\n\r\nnew\r\n")
    t.expect("STAT", "+OK 3 89")
    t.expect("QUIT", "+OK signing off")
    again = Transcript(factory)
    assert again.login().startswith("+OK 4 messages")


def test_apop_disabled_greeting_has_no_timestamp() -> None:
    """Without plaintext-equivalent secrets there is no timestamp and no APOP."""
    t = Transcript(make_factory(maildrops=sample_maildrops()))
    assert t.greeting() == "+OK POP3 server ready\r\n"
    t.expect("APOP fred " + "0" * 32, "-ERR APOP not available")


def test_apop_login_with_rfc_example_timestamp() -> None:
    """APOP works with the greeting timestamp when enabled (RFC 1939 §7)."""
    authenticator = FakeAuthenticator(plaintext_equivalent=True)
    t = Transcript(make_factory(authenticator, sample_maildrops()))
    assert t.greeting() == f"+OK POP3 server ready {APOP_TIMESTAMP.decode()}\r\n"
    digest = hashlib.md5(APOP_TIMESTAMP + b"letmein", usedforsecurity=False).hexdigest()
    t.expect(f"APOP fred {digest.upper()}", "+OK 3 messages (89 octets)")


def test_apop_wrong_digest_fails() -> None:
    """A wrong APOP digest counts as a failed login."""
    authenticator = FakeAuthenticator(plaintext_equivalent=True)
    t = Transcript(make_factory(authenticator, sample_maildrops()))
    t.greeting()
    t.expect("APOP fred " + "a" * 32, "-ERR [AUTH] Authentication failed")
    t.expect("APOP fred short", "-ERR Invalid APOP digest")


def test_utf8_command() -> None:
    """UTF8 is accepted before login and UTF-8 user names pass through (RFC 6856)."""
    authenticator = FakeAuthenticator(passwords={"jürgen": "pässword"})
    t = Transcript(make_factory(authenticator, FakeMaildrops()))
    t.greeting()
    t.expect("UTF8", "+OK UTF8 enabled")
    t.expect("USER jürgen", "+OK Enter password")
    t.expect("PASS pässword", "+OK 0 messages (0 octets)")


def test_idle_timeout_is_at_least_ten_minutes() -> None:
    """The config refuses an idle timeout under RFC 1939's ten minutes."""
    with pytest.raises(ValueError, match="600"):
        POP3ListenerConfig(idle_timeout=60)


def test_gate_refuses_before_the_greeting() -> None:
    """A refused IP gets one -ERR line and the connection closes (seed-4 §15)."""
    refused: list[str] = []

    def gate(peer_ip: str) -> Reply | None:
        refused.append(peer_ip)
        return Reply(554, "5.7.1", "Access denied") if peer_ip == "192.0.2.66" else None

    drops = sample_maildrops()
    factory = POP3ServerFactory(
        POP3ListenerConfig(), FakeAuthenticator(), drops, Clock(), gate=gate
    )
    blocked = Transcript(factory, peer="192.0.2.66")
    assert blocked.take() == "-ERR Access denied\r\n"
    assert blocked.is_closed()
    blocked.protocol.dataReceived(b"USER fred\r\n")
    assert blocked.take() == ""
    blocked.protocol.connectionLost()
    allowed = Transcript(factory, peer="192.0.2.7")
    assert allowed.greeting() == "+OK POP3 server ready\r\n"
    assert refused == ["192.0.2.66", "192.0.2.7"]
