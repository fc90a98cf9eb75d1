"""BINARY (RFC 3516): FETCH BINARY[], BINARY.PEEK[], BINARY.SIZE[] and APPEND literal8."""

from __future__ import annotations

import base64

from tests.proto.imap.fakes import Client, with_messages

PAYLOAD = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))

MESSAGE = (
    b"From: a@b.test\r\n"
    b"To: fred@example.test\r\n"
    b"Subject: picture\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b1"\r\n'
    b"\r\n"
    b"--b1\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"Gr=C3=BC=C3=9Fe\r\n"
    b"--b1\r\n"
    b"Content-Type: image/png\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n" + base64.encodebytes(PAYLOAD).replace(b"\n", b"\r\n") + b"--b1\r\n"
    b"Content-Type: application/x-thing\r\n"
    b"Content-Transfer-Encoding: x-uuencode\r\n"
    b"\r\n"
    b"begin 644 thing\r\n"
    b"--b1--\r\n"
)


def _client() -> Client:
    store = with_messages(1)
    store.folders["INBOX"].add(MESSAGE)
    client = Client(store)
    client.login()
    client.select()
    return client


def _raw(client: Client, line: bytes) -> bytes:
    """Send one command and return the exact octets written back."""
    client.protocol.dataReceived(line + b"\r\n")
    out: bytes = client.transport.value()
    client.transport.clear()
    return out


def test_binary_advertised() -> None:
    """BINARY is in the capability list once logged in."""
    client = _client()
    assert " BINARY" in client.lines("c1 CAPABILITY")[0].split(" SEARCHRES")[0]


def test_fetch_binary_decodes_base64_as_literal8() -> None:
    """A base64 part comes back decoded; it holds NUL so it is a literal8 ~{n}."""
    client = _client()
    out = _raw(client, b"f1 FETCH 2 (BINARY.PEEK[2])")
    expected = b"* 2 FETCH (BINARY[2] ~{%d}\r\n%s)\r\n" % (len(PAYLOAD), PAYLOAD)
    assert out == expected + b"f1 OK FETCH completed\r\n"


def test_fetch_binary_quoted_printable_is_a_plain_literal() -> None:
    """Decoded text without NUL is sent as an ordinary literal."""
    client = _client()
    text = "Grüße".encode()
    out = _raw(client, b"f1 UID FETCH 2 (BINARY.PEEK[1])")
    assert out.startswith(b"* 2 FETCH (UID 2 BINARY[1] {%d}\r\n%s)\r\n" % (len(text), text))


def test_binary_size() -> None:
    """BINARY.SIZE reports the decoded size, whole message included."""
    client = _client()
    out = client.lines("f1 FETCH 2 (BINARY.SIZE[2] BINARY.SIZE[1] BINARY.SIZE[])")
    assert out[0] == (
        f"* 2 FETCH (BINARY.SIZE[2] {len(PAYLOAD)} BINARY.SIZE[1] 7 BINARY.SIZE[] {len(MESSAGE)})"
    )
    assert out[1] == "f1 OK FETCH completed"


def test_binary_partial() -> None:
    """<origin.count> applies to the decoded octets and is echoed as <origin>."""
    client = _client()
    out = _raw(client, b"f1 FETCH 2 (BINARY.PEEK[2]<8.4>)")
    assert out.startswith(b"* 2 FETCH (BINARY[2]<8> ~{4}\r\n\x00\x00\x00\r)\r\n")
    out = _raw(client, b"f2 FETCH 2 (BINARY.PEEK[2]<0.4>)")
    assert out.startswith(b"* 2 FETCH (BINARY[2]<0> {4}\r\n\x89PNG)\r\n")
    out = _raw(client, b"f3 FETCH 2 (BINARY.PEEK[2]<9999.4>)")
    assert out.startswith(b"* 2 FETCH (BINARY[2]<9999> {0}\r\n)\r\n")


def test_binary_sets_seen_but_peek_and_size_do_not() -> None:
    """BINARY[] sets \\Seen like BODY[]; BINARY.PEEK and BINARY.SIZE leave it alone."""
    client = _client()
    client.send("f1 FETCH 2 (BINARY.PEEK[1] BINARY.SIZE[2])")
    assert "\\Seen" not in client.store.folders["INBOX"].messages[2].flags
    out = client.send("f2 FETCH 2 (BINARY[1])")
    assert "FLAGS (\\Seen \\Recent))" in out
    assert "\\Seen" in client.store.folders["INBOX"].messages[2].flags


def test_unknown_cte_fails_the_fetch() -> None:
    """An encoding the server cannot decode gives NO [UNKNOWN-CTE] (RFC 3516 §4)."""
    client = _client()
    out = client.lines("f1 FETCH 2 (BINARY.PEEK[3])")
    assert out[-1].startswith("f1 NO [UNKNOWN-CTE] ")
    out = client.lines("f2 FETCH 2 (BINARY.SIZE[3])")
    assert out[-1].startswith("f2 NO [UNKNOWN-CTE] ")
    assert client.send("n1 NOOP").startswith("n1 OK")  # the session goes on


def test_binary_of_plain_message_and_missing_part() -> None:
    """A 7bit message's part 1 is its body as is; a part that does not exist is empty."""
    client = _client()
    out = _raw(client, b"f1 FETCH 1 (BINARY.PEEK[1] BINARY.PEEK[4])")
    assert out.startswith(b"* 1 FETCH (BINARY[1] {11}\r\nHi there.\r\n BINARY[4] {0}\r\n)\r\n")


def test_bad_binary_syntax() -> None:
    """BINARY takes only part numbers: HEADER, a zero part or a missing ']' are BAD."""
    client = _client()
    for item in ("BINARY[HEADER]", "BINARY[0]", "BINARY[1", "BINARY", "BINARY.SIZE[1]<0.1>"):
        out = client.send(f"b1 FETCH 2 ({item})")
        assert out.startswith("b1 BAD "), (item, out)


def test_append_literal8_with_nul_round_trips() -> None:
    """APPEND accepts a literal8 ~{n}; BINARY[] later returns the same octets as literal8."""
    client = _client()
    body = b"Subject: raw\r\nContent-Transfer-Encoding: binary\r\n\r\nA\x00B\r\n"
    client.protocol.dataReceived(b"a1 APPEND INBOX ~{%d}\r\n" % len(body))
    assert client.transport.value().startswith(b"+ ")
    client.transport.clear()
    out = _raw(client, body)
    assert b"a1 OK [APPENDUID " in out
    assert client.store.appends[-1] == ("INBOX", body)
    client.send("n1 NOOP")
    out = _raw(client, b"f1 FETCH 3 (BINARY.PEEK[1] BINARY.PEEK[])")
    assert out.startswith(
        b"* 3 FETCH (BINARY[1] ~{5}\r\nA\x00B\r\n BINARY[] ~{%d}\r\n%s)" % (len(body), body)
    )


def test_append_non_synchronizing_literal8() -> None:
    """~{n+} (LITERAL+) works for APPEND too."""
    client = _client()
    body = b"Subject: raw\r\n\r\n\x00\r\n"
    out = _raw(client, b"a1 APPEND INBOX (\\Seen) ~{%d+}\r\n%s" % (len(body), body))
    assert b"a1 OK [APPENDUID " in out
    assert client.store.appends[-1] == ("INBOX", body)
