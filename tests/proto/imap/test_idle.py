"""IDLE (RFC 2177): immediate updates, DONE, keepalives and timeouts."""

from __future__ import annotations

from tests.proto.imap.fakes import Client, message, with_messages
from vpop3d.proto.imap.session import IMAPConfig


def _idling(count: int = 2) -> tuple[Client, Client]:
    store = with_messages(count)
    watcher, actor = Client(store), Client(store)
    for client in (watcher, actor):
        client.login()
        client.select()
    assert watcher.send("i1 IDLE") == "+ idling\r\n"
    return watcher, actor


def test_idle_reports_delivery_at_once() -> None:
    """A delivery during IDLE is reported without waiting for DONE."""
    watcher, actor = _idling()
    actor.store.deliver(message("fresh"))
    assert watcher.take() == "* 3 EXISTS\r\n* 3 RECENT\r\n"
    assert watcher.send("DONE") == "i1 OK IDLE terminated\r\n"


def test_idle_reports_expunge_and_flags() -> None:
    """Other sessions' expunges and flag changes arrive during IDLE."""
    watcher, actor = _idling(3)
    actor.send("a1 STORE 3 +FLAGS (\\Seen)")
    assert watcher.take() == "* 3 FETCH (UID 3 FLAGS (\\Seen \\Recent))\r\n"
    actor.send("a2 STORE 1 +FLAGS.SILENT (\\Deleted)")
    actor.send("a3 EXPUNGE")
    assert watcher.take().endswith("* 1 EXPUNGE\r\n")


def test_done_is_case_insensitive() -> None:
    """'done' ends IDLE as well."""
    watcher, _ = _idling()
    assert watcher.send("done") == "i1 OK IDLE terminated\r\n"


def test_other_text_than_done_is_bad() -> None:
    """Anything but DONE ends IDLE with BAD."""
    watcher, _ = _idling()
    assert watcher.send("i2 NOOP").startswith("i1 BAD ")


def test_idle_without_selected_mailbox() -> None:
    """IDLE is valid in the authenticated state too."""
    client = Client()
    client.login()
    assert client.send("i1 IDLE") == "+ idling\r\n"
    assert client.send("DONE") == "i1 OK IDLE terminated\r\n"


def test_idle_disabled() -> None:
    """With IDLE disabled in the settings the command is BAD and not advertised."""
    client = Client(config=IMAPConfig(idle_enabled=False))
    assert "IDLE" not in client.greeting
    client.login()
    assert client.send("i1 IDLE").startswith("i1 BAD ")


def test_idle_keepalive_and_autologout() -> None:
    """IDLE sends '* OK Still here' every 10 minutes; 30 silent minutes log out."""
    watcher, _ = _idling()
    watcher.clock.advance(10 * 60)
    assert watcher.take() == "* OK Still here\r\n"
    watcher.clock.advance(10 * 60)
    assert watcher.take() == "* OK Still here\r\n"
    watcher.clock.advance(10 * 60)
    assert "* BYE Autologout" in watcher.take()
    assert watcher.transport.disconnecting


def test_pending_updates_sent_when_idle_starts() -> None:
    """Changes made before IDLE are reported right after the continuation."""
    store = with_messages(1)
    watcher = Client(store)
    watcher.login()
    watcher.select()
    store.deliver(message("early"))
    assert watcher.send("i1 IDLE") == "+ idling\r\n* 2 EXISTS\r\n* 2 RECENT\r\n"


def test_connection_lost_during_idle_stops_watching() -> None:
    """Dropping the connection mid-IDLE unregisters the listener."""
    watcher, actor = _idling()
    watcher.protocol.connectionLost()
    assert len(actor.store.folders["INBOX"].listeners) == 1
