"""LOGIN, AUTHENTICATE (SASL, SASL-IR), LOGINDISABLED and failed-login limits."""

from __future__ import annotations

import base64

from tests.proto.imap.fakes import Client, FakeStore
from vpop3d.core.saslclient import ScramClient
from vpop3d.proto.imap.server import ConnectionCounter, IMAPLimits
from vpop3d.proto.imap.session import IMAPConfig

PLAIN = base64.b64encode(b"\x00fred\x00secret").decode()


def test_greeting_advertises_capabilities() -> None:
    """The greeting carries a CAPABILITY code with IMAP4rev1 and the SASL mechanisms."""
    client = Client()
    assert client.greeting.startswith("* OK [CAPABILITY IMAP4rev1 ")
    assert "AUTH=PLAIN" in client.greeting
    assert "LOGINDISABLED" not in client.greeting


def test_login_success_reports_new_capabilities() -> None:
    """A good LOGIN answers OK with the post-login capability list."""
    client = Client()
    out = client.send('a1 LOGIN fred "secret"')
    assert out.startswith("a1 OK [CAPABILITY IMAP4rev1 ")
    assert "UIDPLUS" in out
    assert "MOVE" in out
    assert client.auth.contexts[0].service == "imap"
    assert client.auth.contexts[0].peer_ip == "192.0.2.7"


def test_login_creates_special_use_folders() -> None:
    """The first login creates INBOX, Sent, Drafts, Trash, Junk and Archive."""
    client = Client()
    client.login()
    assert set(client.store.folders) == {"INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"}


def test_login_failure_is_no_authenticationfailed() -> None:
    """A wrong password gets NO [AUTHENTICATIONFAILED] and the session stays unauthenticated."""
    client = Client()
    assert (
        client.send("a1 LOGIN fred wrong")
        == "a1 NO [AUTHENTICATIONFAILED] Authentication failed\r\n"
    )
    assert client.send("a2 SELECT INBOX").startswith("a2 BAD ")


def test_three_failures_disconnect() -> None:
    """The third failed login in a session ends it with BYE (spec seed-4 §8.3)."""
    client = Client()
    client.send("a1 LOGIN fred x")
    client.send("a2 LOGIN fred y")
    out = client.send("a3 LOGIN fred z")
    assert "a3 NO [AUTHENTICATIONFAILED]" in out
    assert "* BYE " in out
    assert client.transport.disconnecting


def test_logindisabled_without_tls() -> None:
    """When plaintext needs TLS, LOGINDISABLED is advertised and LOGIN refused."""
    client = Client(config=IMAPConfig(starttls_available=True, plaintext_without_tls=False))
    assert "LOGINDISABLED" in client.greeting
    assert "STARTTLS" in client.greeting
    assert "AUTH=PLAIN" not in client.greeting
    out = client.send("a1 LOGIN fred secret")
    assert out.startswith("a1 NO [PRIVACYREQUIRED] ")
    assert client.send("a2 AUTHENTICATE PLAIN").startswith("a2 NO [PRIVACYREQUIRED] ")


def test_login_allowed_after_starttls() -> None:
    """After STARTTLS the same session may LOGIN and LOGINDISABLED is gone."""
    client = Client(config=IMAPConfig(starttls_available=True, plaintext_without_tls=False))
    assert client.send("a1 STARTTLS") == "a1 OK Begin TLS negotiation now\r\n"
    assert client.transport.tls_started is not None
    caps = client.send("a2 CAPABILITY")
    assert "LOGINDISABLED" not in caps
    assert "STARTTLS" not in caps
    assert client.send("a3 LOGIN fred secret").startswith("a3 OK ")


def test_starttls_discards_pipelined_bytes() -> None:
    """Commands sent before the TLS handshake are dropped, not executed (RFC 3501 §6.2.1)."""
    client = Client(config=IMAPConfig(starttls_available=True))
    out = client.raw(b"a1 STARTTLS\r\na2 LOGIN fred secret\r\n")
    assert out == "a1 OK Begin TLS negotiation now\r\n"
    assert client.protocol.session.user is None


def test_starttls_refused_when_unavailable() -> None:
    """STARTTLS without a certificate configured is BAD."""
    client = Client()
    assert client.send("a1 STARTTLS").startswith("a1 BAD ")


def test_authenticate_plain_with_continuation() -> None:
    """AUTHENTICATE PLAIN sends an empty challenge and accepts the response line."""
    client = Client()
    assert client.send("a1 AUTHENTICATE PLAIN") == "+ \r\n"
    assert client.send(PLAIN).startswith("a1 OK [CAPABILITY ")


def test_authenticate_plain_sasl_ir() -> None:
    """SASL-IR: the initial response on the command line (RFC 4959)."""
    client = Client()
    assert client.send(f"a1 AUTHENTICATE PLAIN {PLAIN}").startswith("a1 OK [CAPABILITY ")


def test_authenticate_cancel() -> None:
    """A '*' response cancels the exchange with BAD (RFC 3501 §6.2.2)."""
    client = Client()
    client.send("a1 AUTHENTICATE PLAIN")
    assert client.send("*").startswith("a1 BAD ")
    assert client.send("a2 NOOP") == "a2 OK NOOP completed\r\n"


def test_authenticate_bad_base64() -> None:
    """A response that is not base64 is BAD."""
    client = Client()
    client.send("a1 AUTHENTICATE PLAIN")
    assert client.send("!!!").startswith("a1 BAD ")


def test_authenticate_wrong_password() -> None:
    """A wrong SASL PLAIN password is NO [AUTHENTICATIONFAILED]."""
    client = Client()
    bad = base64.b64encode(b"\x00fred\x00nope").decode()
    assert client.send(f"a1 AUTHENTICATE PLAIN {bad}").startswith("a1 NO [AUTHENTICATIONFAILED]")


def test_authenticate_login_mechanism() -> None:
    """AUTHENTICATE LOGIN asks for the username and password in turn."""
    client = Client()
    assert client.send("a1 AUTHENTICATE LOGIN").startswith("+ ")
    assert client.send(base64.b64encode(b"fred").decode()).startswith("+ ")
    assert client.send(base64.b64encode(b"secret").decode()).startswith("a1 OK ")


def test_unknown_mechanism() -> None:
    """An unknown SASL mechanism is refused with NO [CANNOT]."""
    client = Client()
    assert client.send("a1 AUTHENTICATE X-FOO").startswith("a1 NO [CANNOT] ")


def test_login_twice_is_bad() -> None:
    """LOGIN in the authenticated state is a state error."""
    client = Client()
    client.login()
    assert client.send("a2 LOGIN fred secret").startswith("a2 BAD ")


def test_too_many_logins_for_user() -> None:
    """Over the per-user session limit LOGIN is refused with the manual's text."""
    counter = ConnectionCounter()
    limits = IMAPLimits(max_logins_per_user=2)
    store = FakeStore()
    clients = [Client(store, limits=limits, counter=counter) for _ in range(3)]
    clients[0].login()
    clients[1].login()
    out = clients[2].send("a1 LOGIN fred secret")
    assert out == "a1 NO [LIMIT] Too many logins for this user\r\n"
    clients[0].protocol.connectionLost()
    assert clients[2].send("a2 LOGIN fred secret").startswith("a2 OK ")


def test_too_many_connections_from_address() -> None:
    """Over the per-address limit the greeting is a BYE and the connection closes."""
    counter = ConnectionCounter()
    limits = IMAPLimits(max_connections_per_ip=1)
    first = Client(limits=limits, counter=counter)
    second = Client(limits=limits, counter=counter)
    assert first.greeting.startswith("* OK ")
    assert second.greeting == "* BYE Too many connections from this address!\r\n"
    assert second.transport.disconnecting
    first.protocol.connectionLost()
    assert counter.by_ip == {}


def test_authenticate_scram_sha_256() -> None:
    """SCRAM-SHA-256: client-first, server-first, client-final, then the server signature."""
    client = Client()
    scram = ScramClient("fred", "secret")
    first = base64.b64encode(scram.first()).decode()
    challenge = client.send(f"a1 AUTHENTICATE SCRAM-SHA-256 {first}")
    assert challenge.startswith("+ ")
    final = scram.final(base64.b64decode(challenge[2:].strip()))
    server_final = client.send(base64.b64encode(final).decode())
    assert server_final.startswith("+ ")
    assert scram.verify(base64.b64decode(server_final[2:].strip()))
    assert client.send("").startswith("a1 OK [CAPABILITY ")


def test_authenticate_scram_wrong_password() -> None:
    """A wrong SCRAM proof fails with NO [AUTHENTICATIONFAILED]."""
    client = Client()
    scram = ScramClient("fred", "not-it")
    challenge = client.send(
        "a1 AUTHENTICATE SCRAM-SHA-256 " + base64.b64encode(scram.first()).decode()
    )
    final = scram.final(base64.b64decode(challenge[2:].strip()))
    out = client.send(base64.b64encode(final).decode())
    assert out.startswith("a1 NO [AUTHENTICATIONFAILED]")
