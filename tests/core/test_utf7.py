"""Modified UTF-7 mailbox names: vpop3d.core.utf7."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vpop3d.core.utf7 import decode, encode

RFC_NAME = "~peter/mail/\u53f0\u5317/\u65e5\u672c\u8a9e"  # RFC 3501 §5.1.3 example
RFC_WIRE = "~peter/mail/&U,BTFw-/&ZeVnLIqe-"


def test_rfc3501_example():
    """The RFC 3501 §5.1.3 example encodes and decodes exactly."""
    assert encode(RFC_NAME) == RFC_WIRE
    assert decode(RFC_WIRE) == RFC_NAME


@pytest.mark.parametrize(
    ("name", "wire"),
    [
        ("INBOX", "INBOX"),
        ("Tom & Jerry", "Tom &- Jerry"),
        ("Entw\u00fcrfe", "Entw&APw-rfe"),
        ("\u00e9\u00e8", "&AOkA6A-"),
        ("\U0001f600", "&2D3eAA-"),  # outside the BMP: a UTF-16 surrogate pair
        ("", ""),
    ],
)
def test_known_forms(name, wire):
    """ASCII passes through, & doubles as &-, other runs become one base64 run."""
    assert encode(name) == wire
    assert decode(wire) == name


@pytest.mark.parametrize(
    "wire",
    [
        "&U,BTFw",  # unterminated
        "&U!BTFw-",  # not modified base64
        "&U/BTFw-",  # "/" is "," in modified base64
        "caf\u00e9",  # 8-bit must be encoded
        "tab\there",  # control characters must be encoded
        "&AGE-",  # encodes printable "a"
        "&ZeVnLIqe-&ZeVnLIqe-",  # adjacent runs
        "&AA-",  # odd number of UTF-16 octets
        "&U,BTFx-",  # non-zero padding bits
        "&2D0-",  # lone surrogate
        "&A-",  # truncated sextet
    ],
)
def test_malformed_names_rejected(wire):
    """Malformed wire names raise ValueError instead of decoding to something odd."""
    with pytest.raises(ValueError):
        decode(wire)


@given(st.text(alphabet=st.characters(exclude_categories=["Cs"])))
def test_round_trip(name):
    """Every name encodes to printable ASCII and decodes back unchanged."""
    wire = encode(name)
    assert all(0x20 <= ord(char) <= 0x7E for char in wire)
    assert decode(wire) == name
