"""CAPABILITY, NOOP, ID, ENABLE and state errors."""

from __future__ import annotations

from tests.proto.imap.fakes import Client


def test_capability_after_login_lists_extensions() -> None:
    """After login the extensions of the core are advertised."""
    client = Client()
    client.login()
    caps = client.lines("a1 CAPABILITY")[0].split()
    for name in ("IMAP4rev1", "IDLE", "NAMESPACE", "UIDPLUS", "MOVE", "ENABLE", "ID",
                 "UNSELECT", "LITERAL+", "CHILDREN", "SPECIAL-USE", "SASL-IR"):  # fmt: skip
        assert name in caps
    assert not any(c.startswith("AUTH=") for c in caps)


def test_id_answers_server_identity() -> None:
    """ID (RFC 2971) is answered with the server's name, in any state."""
    client = Client()
    lines = client.lines('a1 ID ("name" "test-client" "version" "1.0")')
    assert lines[0].startswith('* ID ("name" "vpop3d" "version" ')
    assert lines[1] == "a1 OK ID completed"
    assert client.send("a2 ID NIL").endswith("a2 OK ID completed\r\n")


def test_enable_reports_only_supported() -> None:
    """ENABLE lists what it enabled: CONDSTORE yes, unknown extensions no (RFC 5161)."""
    client = Client()
    client.login()
    assert client.lines("a1 ENABLE X-UNKNOWN") == ["* ENABLED", "a1 OK ENABLE completed"]
    assert client.lines("a2 ENABLE CONDSTORE X-UNKNOWN") == [
        "* ENABLED CONDSTORE",
        "a2 OK ENABLE completed",
    ]


def test_enable_before_login_is_bad() -> None:
    """ENABLE is only valid once authenticated."""
    client = Client()
    assert client.send("a1 ENABLE CONDSTORE").startswith("a1 BAD ")


def test_noop_any_state() -> None:
    """NOOP works before login."""
    assert Client().send("a1 NOOP") == "a1 OK NOOP completed\r\n"


def test_select_before_login_is_bad() -> None:
    """SELECT before authentication is refused with BAD naming the state."""
    out = Client().send("a1 SELECT INBOX")
    assert out == "a1 BAD SELECT not allowed in the not authenticated state\r\n"
