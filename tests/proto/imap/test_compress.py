"""COMPRESS=DEFLATE (RFC 4978): raw DEFLATE both ways after the tagged OK."""

from __future__ import annotations

import zlib

from tests.proto.imap.fakes import Client, with_messages


class _Deflated:
    """The client's side of a compressed connection."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.out = zlib.compressobj(wbits=-15)
        self.into = zlib.decompressobj(wbits=-15)

    def send(self, line: str) -> str:
        data = self.out.compress(line.encode() + b"\r\n") + self.out.flush(zlib.Z_SYNC_FLUSH)
        self.client.protocol.dataReceived(data)
        out = self.into.decompress(self.client.transport.value()).decode()
        self.client.transport.clear()
        return out


def _compressed() -> _Deflated:
    client = Client(with_messages(2))
    client.login()
    assert client.send("z1 COMPRESS DEFLATE") == "z1 OK DEFLATE active\r\n"
    client.transport.clear()
    return _Deflated(client)


def test_compress_advertised_after_login_only() -> None:
    """COMPRESS=DEFLATE appears once authenticated; before that COMPRESS is BAD."""
    client = Client(with_messages(0))
    assert "COMPRESS=DEFLATE" not in client.greeting
    assert client.lines("z0 COMPRESS DEFLATE")[0].startswith("z0 BAD")
    client.login()
    assert " COMPRESS=DEFLATE" in client.lines("c1 CAPABILITY")[0]


def test_commands_and_responses_are_deflated() -> None:
    """After the OK, commands are inflated and responses deflated with sync flushes."""
    deflated = _compressed()
    out = deflated.send("s1 SELECT INBOX")
    assert "* 2 EXISTS\r\n" in out
    assert "s1 OK [READ-WRITE]" in out
    out = deflated.send("f1 FETCH 1:2 (FLAGS)")
    assert out == (
        "* 1 FETCH (FLAGS (\\Recent))\r\n* 2 FETCH (FLAGS (\\Recent))\r\nf1 OK FETCH completed\r\n"
    )


def test_compress_twice_and_unknown_mechanism() -> None:
    """A second COMPRESS is NO [COMPRESSIONACTIVE]; an unknown mechanism is BAD."""
    client = Client(with_messages(0))
    client.login()
    assert client.lines("z0 COMPRESS LZMA")[0].startswith("z0 BAD")
    deflated = _compressed()
    assert deflated.send("z2 COMPRESS DEFLATE") == (
        "z2 NO [COMPRESSIONACTIVE] DEFLATE is already active\r\n"
    )


def test_garbage_after_compress_closes() -> None:
    """Data that does not inflate ends the connection."""
    deflated = _compressed()
    deflated.client.protocol.dataReceived(b"\xff\xff\xff\xff not deflate")
    assert deflated.client.transport.disconnecting
