"""Content-Transfer-Encoding removal for IMAP BINARY (RFC 3516, RFC 2045 §6)."""

from __future__ import annotations

import base64
import binascii

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vpop3d.core.transferdecode import (
    UnknownTransferEncoding,
    binary_section,
    decode,
    decode_base64,
    decode_quoted_printable,
    encoding_name,
    has_nul,
)

PAYLOAD = bytes(range(256)) * 3

MULTIPART = (
    b"From: a@b.test\r\n"
    b"Subject: attachment\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="XX"\r\n'
    b"\r\n"
    b"--XX\r\n"
    b"Content-Type: text/plain; charset=iso-8859-1\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"Gr=FC=DFe, a long line that is soft=\r\n"
    b" broken\r\n"
    b"--XX\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: BASE64\r\n"
    b"\r\n" + base64.encodebytes(PAYLOAD).replace(b"\n", b"\r\n") + b"--XX\r\n"
    b"Content-Type: application/x-odd\r\n"
    b"Content-Transfer-Encoding: x-uuencode\r\n"
    b"\r\n"
    b"begin 644 x\r\n"
    b"--XX\r\n"
    b"Content-Type: message/rfc822\r\n"
    b"\r\n"
    b"Subject: inner\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"aW5uZXI=\r\n"
    b"--XX--\r\n"
)


def test_identity_encodings_pass_through() -> None:
    """7bit, 8bit, binary and a missing header leave the octets unchanged (RFC 2045 §6.2)."""
    body = b"caf\xe9\x00\r\n"
    for name in (None, b"", b"7bit", b"8BIT", "Binary"):
        assert decode(body, name) == body


def test_base64_decoding_is_lenient() -> None:
    """Line breaks and junk are ignored; missing padding is tolerated (RFC 2045 §6.8)."""
    assert decode(b"aGVs\r\nbG8=\r\n", b"base64") == b"hello"
    assert decode_base64(b"aGVsbG8") == b"hello"
    assert decode_base64(b"aGVs*bG8=\r\n=junk") == b"hello"
    assert decode_base64(b"") == b""


def test_quoted_printable_escapes_and_soft_breaks() -> None:
    """=XX escapes become octets and '=' at a line end joins lines (RFC 2045 §6.7)."""
    assert decode(b"Gr=FC=DFe=\r\n tail\r\n", "Quoted-Printable") == b"Gr\xfc\xdfe tail\r\n"
    assert decode_quoted_printable(b"a=3Db=\nc") == b"a=bc"


def test_unknown_encoding_is_refused() -> None:
    """An encoding we cannot undo raises, so IMAP can answer NO [UNKNOWN-CTE]."""
    with pytest.raises(UnknownTransferEncoding) as info:
        decode(b"begin 644 x", b"x-uuencode")
    assert info.value.encoding == "x-uuencode"


def test_encoding_name_token() -> None:
    """Only the mechanism token counts, case-insensitively; comments are dropped."""
    assert encoding_name(b" Base64 (sent by a mailer)") == "base64"
    assert encoding_name("QUOTED-PRINTABLE") == "quoted-printable"
    assert encoding_name(None) == ""


def test_binary_sections_of_a_multipart() -> None:
    """BINARY[n] decodes each leaf part; unknown CTE raises; missing parts are empty."""
    assert binary_section(MULTIPART, (1,)) == b"Gr\xfc\xdfe, a long line that is soft broken"
    assert binary_section(MULTIPART, (2,)) == PAYLOAD
    with pytest.raises(UnknownTransferEncoding):
        binary_section(MULTIPART, (3,))
    assert binary_section(MULTIPART, (4, 1)) == b"inner"
    assert binary_section(MULTIPART, (9,)) == b""
    assert binary_section(MULTIPART, (2, 5)) == b""
    assert binary_section(MULTIPART, ()) == MULTIPART


def test_binary_section_of_a_single_part_message() -> None:
    """Part 1 of a non-multipart message is its body, decoded by the top-level CTE."""
    raw = b"Subject: x\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC\r\n"
    assert binary_section(raw, (1,)) == b"\x00\x01\x02"
    assert binary_section(raw, ()) == raw


def test_multipart_part_is_sent_as_stored() -> None:
    """A multipart or message/rfc822 part has nothing to decode and comes back as stored."""
    assert binary_section(MULTIPART, (4,)).startswith(b"Subject: inner\r\n")


def test_has_nul() -> None:
    """Only data with NUL octets needs a literal8."""
    assert has_nul(b"a\x00b")
    assert not has_nul(b"\xff\xfe\r\n")


@given(st.binary(max_size=600))
def test_base64_round_trip(data: bytes) -> None:
    """Whatever base64 encodes, the decoder gives back, however the lines are folded."""
    encoded = base64.encodebytes(data).replace(b"\n", b"\r\n")
    assert decode(encoded, b"base64") == data


@given(st.binary(max_size=600))
def test_quoted_printable_round_trip(data: bytes) -> None:
    """Quoted-printable output of binary data decodes to the same octets."""
    encoded = binascii.b2a_qp(data, quotetabs=True, istext=False)
    assert decode(encoded, b"quoted-printable") == data


@given(st.binary(max_size=300), st.sampled_from([b"base64", b"quoted-printable", b"8bit"]))
def test_decode_never_crashes(data: bytes, encoding: bytes) -> None:
    """Broken input never raises: mail lies about its encodings."""
    assert isinstance(decode(data, encoding), bytes)
