"""POP3 in the real server process (``twistd -n vpop3d``): 110 with STLS and 995.

Skipped until ``vpop3d.listeners.BUILDERS`` registers the ``pop3`` builder
(``vpop3d.wiring_pop3.build_pop3_factory``).
"""

from __future__ import annotations

import poplib
import ssl

import pytest
from sqlalchemy import Connection

from tests.support.server import ServerProcess, add_user
from vpop3d.app.mailstore import FolderTarget, store_message
from vpop3d.listeners import BUILDERS
from vpop3d.store import users
from vpop3d.store.blobs import FileBlobStore

pytestmark = [
    pytest.mark.network,
    pytest.mark.skipif("pop3" not in BUILDERS, reason="pop3 builder not registered"),
]
BODY = b"Subject: real server\r\nFrom: a@remote.test\r\n\r\n.dot\r\nbody\r\n"


def deliver(server: ServerProcess, name: str, body: bytes) -> None:
    blobs = FileBlobStore(server.data_dir)
    spool = blobs.new_spool()
    spool.write(body)

    def store(conn: Connection) -> None:
        user = users.by_name(conn, name)
        assert user is not None
        store_message(conn, blobs, spool, [FolderTarget(user.id)])

    server.db.run_sync(store)


def test_session_on_the_real_server(server: ServerProcess) -> None:
    """Greeting, USER/PASS, STAT, RETR, DELE, QUIT against twistd (seed-1 check 8)."""
    add_user(server, "fred", "secret")
    deliver(server, "fred", BODY)
    client = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=20)
    assert client.getwelcome() == b"+OK POP3 server ready"
    client.user("fred")
    assert client.pass_("secret") == b"+OK 1 messages (%d octets)" % len(BODY)
    response, lines, _ = client.retr(1)
    assert response == b"+OK %d octets" % len(BODY)
    assert b"\r\n".join(lines) + b"\r\n" == BODY
    assert client.dele(1) == b"+OK message 1 deleted"
    assert client.quit() == b"+OK signing off"
    again = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=20)
    again.user("fred")
    again.pass_("secret")
    assert again.stat() == (0, 0)
    again.quit()


def test_stls_and_995_with_the_first_run_certificate(server: ServerProcess) -> None:
    """STLS on 110 and implicit TLS on 995 verify against data_dir/tls/selfsigned.crt."""
    add_user(server, "fred", "secret")
    context = ssl.create_default_context(cafile=str(server.data_dir / "tls" / "selfsigned.crt"))
    plain = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=20)
    assert "STLS" in plain.capa()
    plain.stls(context)
    plain.user("fred")
    assert plain.pass_("secret") == b"+OK 0 messages (0 octets)"
    plain.quit()
    secure = poplib.POP3_SSL("127.0.0.1", server.ports["pop3s"], context=context, timeout=20)
    assert secure.getwelcome() == b"+OK POP3 server ready"
    assert "STLS" not in secure.capa()
    secure.user("fred")
    assert secure.pass_("secret") == b"+OK 0 messages (0 octets)"
    secure.quit()
