"""Message analysis for IMAP FETCH/SEARCH/SORT: vpop3d.core.mime."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vpop3d.core.imapenvelope import parse_addresses
from vpop3d.core.imapstring import imap_nstring
from vpop3d.core.mime import (
    MessageSummary,
    SectionSpec,
    analyse,
    base_subject,
    binary,
    header_values,
    parse_section,
    partial,
    section,
    text_for_search,
)


def crlf(text: str) -> bytes:
    """Build a message from readable text: LF becomes CRLF."""
    return text.replace("\n", "\r\n").encode("utf-8")


# The RFC 3501 §8 sample message: 92 lines, 3028 octets of body.
RFC_BODY = ("x" * 31 + "\r\n") * 91 + "y" * 23 + "\r\n"
RFC_HEADER = crlf(
    "Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\n"
    "From: Terry Gray <gray@cac.washington.edu>\n"
    "Subject: IMAP4rev1 WG mtg summary and minutes\n"
    "To: imap@cac.washington.edu\n"
    "cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>\n"
    "Message-Id: <B27397-0100000@cac.washington.edu>\n"
    "MIME-Version: 1.0\n"
    "Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\n"
    "\n"
)
RFC_MESSAGE = RFC_HEADER + RFC_BODY.encode("ascii")

RFC_ENVELOPE = (
    b'("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" "IMAP4rev1 WG mtg summary and minutes" '
    b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
    b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
    b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
    b'((NIL NIL "imap" "cac.washington.edu")) '
    b'((NIL NIL "minutes" "CNRI.Reston.VA.US")("John Klensin" NIL "KLENSIN" "MIT.EDU")) '
    b'NIL NIL "<B27397-0100000@cac.washington.edu>")'
)


def test_rfc3501_text_plain_envelope():
    """The RFC 3501 §8 sample message gives the RFC's ENVELOPE byte for byte."""
    assert analyse(RFC_MESSAGE).envelope == RFC_ENVELOPE


def test_rfc3501_text_plain_body_and_bodystructure():
    """BODY is the RFC 3501 §7.4.2 example; BODYSTRUCTURE adds MD5, dsp, lang, loc."""
    summary = analyse(RFC_MESSAGE)
    assert summary.body == b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3028 92)'
    assert summary.bodystructure == (
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3028 92 NIL NIL NIL NIL)'
    )
    assert summary.size == len(RFC_MESSAGE)
    assert summary.header_size == len(RFC_HEADER)
    assert summary.lines == 92


def _rfc_multipart() -> bytes:
    # the CRLF before a delimiter belongs to the delimiter (RFC 2046 §5.1.1)
    part1 = ("a" * 48 + "\r\n") * 22 + "z" * 52  # 1152 octets, 23 lines
    part2 = ("QUJD" * 15 + "\r\n") * 72 + "Q" * 90  # 4554 octets, 73 lines
    assert (len(part1), len(part2)) == (1152, 4554)
    return crlf(
        "From: Terry Gray <gray@cac.washington.edu>\n"
        "Subject: multipart\n"
        "MIME-Version: 1.0\n"
        'Content-Type: MULTIPART/MIXED; BOUNDARY="xyz"\n'
        "\n"
        "This is the preamble.\n"
        "--xyz\n"
        "Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\n"
        "\n" + part1.replace("\r\n", "\n") + "\n--xyz\n"
        "Content-Type: TEXT/PLAIN; CHARSET=US-ASCII; NAME=cc.diff\n"
        "Content-ID: <960723163407.20117h@cac.washington.edu>\n"
        "Content-Description: Compiler diff\n"
        "Content-Transfer-Encoding: BASE64\n"
        "\n" + part2.replace("\r\n", "\n") + "\n--xyz--\n"
        "epilogue\n"
    )


def test_rfc3501_multipart_body():
    """The RFC 3501 §7.4.2 multipart BODYSTRUCTURE example, non-extensible form."""
    assert analyse(_rfc_multipart()).body == (
        b'(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 1152 23)'
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII" "NAME" "cc.diff") '
        b'"<960723163407.20117h@cac.washington.edu>" "Compiler diff" "BASE64" 4554 73) '
        b'"MIXED")'
    )


def test_rfc3501_multipart_bodystructure_extensions():
    """The extensible form carries the boundary parameter and NIL dsp/lang/loc."""
    assert analyse(_rfc_multipart()).bodystructure == (
        b'(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 1152 23 NIL NIL NIL NIL)'
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII" "NAME" "cc.diff") '
        b'"<960723163407.20117h@cac.washington.edu>" "Compiler diff" "BASE64" 4554 73 '
        b'NIL NIL NIL NIL) "MIXED" ("BOUNDARY" "xyz") NIL NIL NIL)'
    )


ALTERNATIVE = crlf(
    "Date: Mon, 2 Mar 2026 10:00:00 +0100\n"
    "From: =?UTF-8?B?SsO2cmc=?= <joerg@example.test>\n"
    "To: Bob <BOB@Example.test>, carol@example.test\n"
    "Subject: =?ISO-8859-1?Q?Gr=FC=DFe?= aus Berlin\n"
    "Message-ID: <m1@example.test>\n"
    "MIME-Version: 1.0\n"
    'Content-Type: multipart/mixed; boundary="outer"\n'
    "\n"
    "--outer\n"
    'Content-Type: multipart/alternative; boundary="inner"\n'
    "\n"
    "--inner\n"
    "Content-Type: text/plain; charset=iso-8859-1\n"
    "Content-Transfer-Encoding: quoted-printable\n"
    "\n"
    "Sch=F6ne Gr=FC=DFe\n"
    "--inner\n"
    "Content-Type: text/html; charset=utf-8\n"
    "Content-Transfer-Encoding: base64\n"
    "\n"
    "PHA+U2Now7ZuZSA8Yj5XYXNzZXJtZWxvbmU8L2I+PC9wPg==\n"
    "--inner--\n"
    "--outer\n"
    'Content-Type: application/pdf; name="report.pdf"\n'
    'Content-Disposition: attachment; filename="report.pdf"\n'
    "Content-Language: de, en\n"
    "Content-Location: http://example.test/r.pdf\n"
    "Content-Transfer-Encoding: base64\n"
    "\n"
    "JVBERi0xLjQK\n"
    "--outer--\n"
)


def test_alternative_with_attachment_bodystructure():
    """Nested multipart/alternative plus an attachment with dsp, languages, location."""
    structure = analyse(ALTERNATIVE).bodystructure
    assert structure == (
        b'((("TEXT" "PLAIN" ("CHARSET" "iso-8859-1") NIL NIL "QUOTED-PRINTABLE" 18 1 '
        b"NIL NIL NIL NIL)"
        b'("TEXT" "HTML" ("CHARSET" "utf-8") NIL NIL "BASE64" 48 1 NIL NIL NIL NIL) '
        b'"ALTERNATIVE" ("BOUNDARY" "inner") NIL NIL NIL)'
        b'("APPLICATION" "PDF" ("NAME" "report.pdf") NIL NIL "BASE64" 12 NIL '
        b'("ATTACHMENT" ("FILENAME" "report.pdf")) ("de" "en") "http://example.test/r.pdf") '
        b'"MIXED" ("BOUNDARY" "outer") NIL NIL NIL)'
    )


def test_alternative_sections():
    """Part numbers walk nested multiparts; MIME gives the part header."""
    # the CRLF before each delimiter is not part of the body (RFC 2046 §5.1.1)
    assert section(ALTERNATIVE, SectionSpec((1, 1))) == b"Sch=F6ne Gr=FC=DFe"
    assert section(ALTERNATIVE, SectionSpec((2,))) == b"JVBERi0xLjQK"
    assert section(ALTERNATIVE, SectionSpec((1, 2), "MIME")) == crlf(
        "Content-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"
    )
    assert section(ALTERNATIVE, SectionSpec((1, 3))) == b""
    assert section(ALTERNATIVE, SectionSpec((3,))) == b""
    assert section(ALTERNATIVE, SectionSpec((2, 1))) == b""
    assert section(ALTERNATIVE, SectionSpec((1,), "HEADER")) == b""  # not message/rfc822


def test_alternative_envelope_keeps_encoded_words():
    """ENVELOPE passes RFC 2047 words through; SORT fields are decoded and folded."""
    summary = analyse(ALTERNATIVE)
    assert b'"=?ISO-8859-1?Q?Gr=FC=DFe?= aus Berlin"' in summary.envelope
    assert b'(("=?UTF-8?B?SsO2cmc=?=" NIL "joerg" "example.test"))' in summary.envelope
    assert summary.subject_base == "Grüße aus Berlin"
    assert summary.from_sort == "joerg"
    assert summary.to_sort == "bob"
    assert summary.cc_sort == ""
    assert summary.display_from == "Jörg"
    assert summary.display_to == "Bob"
    assert summary.sent_date == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    assert summary.message_id == "m1@example.test"


def test_search_text_decodes_parts():
    """BODY search text decodes QP and base64 with their charsets; HTML is searchable
    as sent (RFC 3501 §6.4.4) and without its tags (a phrase split by markup)."""
    text = text_for_search(ALTERNATIVE)
    assert "schöne grüsse" in text  # casefold turns ß into ss
    assert "<b>wassermelone</b>" in text
    assert "schöne wassermelone" in text
    assert "jvberi0" not in text  # application/pdf is not text


def test_header_values_decode_rfc2047():
    """header_values decodes encoded words and unfolds continuation lines."""
    raw = crlf(
        "Subject: =?UTF-8?Q?caf=C3=A9?=\n =?UTF-8?Q?_au_lait?=\nX-A: one\nX-a: two\n\nbody\n"
    )
    assert header_values(raw, "subject") == ["café au lait"]
    assert header_values(raw, "X-A") == ["one", "two"]
    assert header_values(raw, "missing") == []


def _nested() -> bytes:
    return crlf(
        "From: outer@example.test\n"
        "Subject: Fwd: report\n"
        'Content-Type: multipart/mixed; boundary="b1"\n'
        "\n"
        "--b1\n"
        "\n"
        "See attached.\n"
        "--b1\n"
        "Content-Type: message/rfc822\n"
        "\n"
        "From: Inner <inner@example.test>\n"
        "Subject: report\n"
        "Date: Tue, 3 Mar 2026 08:00:00 +0000\n"
        "\n"
        "inner body\n"
        "--b1--\n"
    )


def test_nested_message_bodystructure():
    """message/rfc822 parts carry the inner ENVELOPE, BODY and line count."""
    raw = _nested()
    message_part = section(raw, SectionSpec((2,)))
    assert len(message_part) == 101
    summary = analyse(raw)
    inner_envelope = (
        b'("Tue, 3 Mar 2026 08:00:00 +0000" "report" (("Inner" NIL "inner" "example.test"))'
        b' (("Inner" NIL "inner" "example.test")) (("Inner" NIL "inner" "example.test"))'
        b" NIL NIL NIL NIL NIL)"
    )
    assert summary.body == (
        b'(("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 13 1)'
        b'("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 101 ' + inner_envelope + b" "
        b'("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 10 1) 5) "MIXED")'
    )


def test_nested_message_sections():
    """2.HEADER, 2.TEXT and 2.1 address the encapsulated message (RFC 3501 §6.4.5)."""
    raw = _nested()
    assert section(raw, SectionSpec((2,), "HEADER")) == crlf(
        "From: Inner <inner@example.test>\nSubject: report\n"
        "Date: Tue, 3 Mar 2026 08:00:00 +0000\n\n"
    )
    assert section(raw, SectionSpec((2,), "TEXT")) == b"inner body"
    assert section(raw, SectionSpec((2, 1))) == b"inner body"
    assert section(raw, SectionSpec((2,), "MIME")) == b"Content-Type: message/rfc822\r\n\r\n"
    assert section(raw, SectionSpec((2,), "HEADER.FIELDS", ("subject",))) == (
        b"Subject: report\r\n\r\n"
    )
    assert section(raw, SectionSpec((1,))) == b"See attached."
    assert section(raw, SectionSpec((2, 2))) == b""


def test_search_text_includes_attached_message_header():
    """An attached message's header is body text of the outer message for BODY search."""
    text = text_for_search(_nested())
    assert "from: inner <inner@example.test>" in text
    assert "inner body" in text
    assert "fwd: report" not in text  # the outer header is not body


def test_top_level_sections_and_part_one_of_simple_message():
    """HEADER/TEXT/HEADER.FIELDS(.NOT) at the top; a simple message's part 1 is its body."""
    raw = crlf("Subject: hi\nX-Long: a\n  folded\nFrom: a@b.test\n\nline1\nline2\n")
    assert section(raw, SectionSpec()) == raw
    assert section(raw, SectionSpec(text="HEADER")) == raw[: raw.index(b"\r\n\r\n") + 4]
    assert section(raw, SectionSpec(text="TEXT")) == b"line1\r\nline2\r\n"
    assert section(raw, SectionSpec((1,))) == b"line1\r\nline2\r\n"
    assert section(raw, SectionSpec((1,), "MIME")) == section(raw, SectionSpec(text="HEADER"))
    assert section(raw, SectionSpec((2,))) == b""
    assert section(raw, SectionSpec((1, 1))) == b""
    assert section(raw, SectionSpec(text="HEADER.FIELDS", fields=("X-LONG", "from"))) == (
        b"X-Long: a\r\n  folded\r\nFrom: a@b.test\r\n\r\n"
    )
    assert section(raw, SectionSpec(text="HEADER.FIELDS.NOT", fields=("x-long",))) == (
        b"Subject: hi\r\nFrom: a@b.test\r\n\r\n"
    )
    assert section(raw, SectionSpec(text="HEADER.FIELDS", fields=("nope",))) == b"\r\n"
    assert section(raw, SectionSpec(text="MIME")) == b""


def test_binary_sections():
    """BINARY[part] removes base64/QP, keeps identity encodings, refuses unknown ones."""
    assert binary(ALTERNATIVE, (1, 2)) == "<p>Schöne <b>Wassermelone</b></p>".encode()
    assert binary(ALTERNATIVE, (1, 1)) == "Schöne Grüße".encode("latin-1")
    assert binary(ALTERNATIVE, (2,)) == b"%PDF-1.4\n"
    assert binary(ALTERNATIVE, (1,)) == section(ALTERNATIVE, SectionSpec((1,)))
    assert binary(ALTERNATIVE, (9,)) == b""
    assert binary(ALTERNATIVE, ()) == ALTERNATIVE
    odd = b"Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\n"
    assert binary(odd, (1,)) is None
    plain = b"Content-Transfer-Encoding: 8bit\r\n\r\n\xe9\r\n"
    assert binary(plain, (1,)) == b"\xe9\r\n"


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("", SectionSpec()),
        ("HEADER", SectionSpec(text="HEADER")),
        ("1.2.TEXT", SectionSpec((1, 2), "TEXT")),
        ("3.mime", SectionSpec((3,), "MIME")),
        ("4", SectionSpec((4,))),
        ("header.fields (From To)", SectionSpec((), "HEADER.FIELDS", ("From", "To"))),
        (
            '2.HEADER.FIELDS.NOT ("X-A b" Subject)',
            SectionSpec((2,), "HEADER.FIELDS.NOT", ("X-A b", "Subject")),
        ),
    ],
)
def test_parse_section(text, spec):
    """parse_section reads RFC 3501 section-spec text into a SectionSpec."""
    assert parse_section(text) == spec


def test_section_label_echoes_the_request():
    """label() renders the section name used in the FETCH response."""
    assert SectionSpec((1, 2), "HEADER.FIELDS", ("From", "X-A b")).label() == (
        '1.2.HEADER.FIELDS (From "X-A b")'
    )
    assert SectionSpec().label() == ""
    assert SectionSpec((2,), "MIME").label() == "2.MIME"


@pytest.mark.parametrize(
    "text", ["0", "MIME", "1.FOO", "1.", "HEADER.FIELDS", "HEADER.FIELDS ()", "TEXT x", "1..2"]
)
def test_parse_section_rejects(text):
    """Zero parts, unknown texts, MIME at top level and empty lists are refused."""
    with pytest.raises(ValueError, match=r"section|MIME|header list"):
        parse_section(text)


def test_partial():
    """<origin.count> slices; an origin past the end gives an empty string."""
    assert partial(b"0123456789", 2, 3) == b"234"
    assert partial(b"0123456789", 8, 10) == b"89"
    assert partial(b"0123456789", 20, 5) == b""
    assert partial(b"0123456789", 7) == b"789"


def test_missing_date_and_header_defaults():
    """No Date gives NIL date and sent_date None; Sender/Reply-To copy From."""
    raw = crlf("From: a@example.test\nReply-To:\nSubject: x\n\nbody\n")
    summary = analyse(raw)
    assert summary.sent_date is None
    assert summary.envelope == (
        b'(NIL "x" ((NIL NIL "a" "example.test")) ((NIL NIL "a" "example.test")) '
        b'((NIL NIL "a" "example.test")) NIL NIL NIL NIL NIL)'
    )


def test_envelope_quoting_and_literals():
    """Quotes and backslashes are escaped; 8-bit text travels as a literal."""
    raw = b'Subject: say "hi" \\o/\r\nFrom: \xc3\xa9t\xc3\xa9 <e@x.test>\r\n\r\n'
    envelope = analyse(raw).envelope
    assert b'"say \\"hi\\" \\\\o/"' in envelope
    assert b"(({5}\r\n\xc3\xa9t\xc3\xa9 NIL" in envelope


def test_group_syntax():
    """Groups become start/end markers with NIL host (RFC 3501 §7.4.2)."""
    raw = crlf("To: undisclosed-recipients:;\nCc: Team: a@x.test, B <b@x.test>;, c@y.test\n\n")
    envelope = analyse(raw).envelope
    assert b'((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL))' in envelope
    assert (
        b'((NIL NIL "Team" NIL)(NIL NIL "a" "x.test")("B" NIL "b" "x.test")'
        b'(NIL NIL NIL NIL)(NIL NIL "c" "y.test"))'
    ) in envelope


def test_address_forms():
    """Comments name bare addresses, routes fill adl, quoted names are unquoted."""
    parsed = parse_addresses(b'a@b.test (Alice A), "Smith, Bob" <@r1,@r2:bob@c.test>, nohost, <>')
    assert [(a.name, a.adl, a.mailbox, a.host) for a in parsed] == [
        (b"Alice A", None, b"a", b"b.test"),
        (b"Smith, Bob", b"@r1,@r2", b"bob", b"c.test"),
        (None, None, b"nohost", b".MISSING-HOST-NAME."),
    ]


def test_imap_nstring():
    """NIL, quoted and literal forms of an IMAP nstring."""
    assert imap_nstring(None) == b"NIL"
    assert imap_nstring(b"") == b'""'
    assert imap_nstring(b"a\r\nb") == b"{4}\r\na\r\nb"
    assert imap_nstring(b"a\x00b") == b'"ab"'


@pytest.mark.parametrize(
    ("subject", "base", "reply"),
    [
        ("Re: hello", "hello", True),
        ("RE: Re: re:hello", "hello", True),
        ("Fwd: [list] Re: hello (fwd)", "hello", True),
        ("[list] hello", "hello", False),
        ("[list]", "[list]", False),
        ("[Fwd: Re: hello]", "hello", True),
        ("  hello \t  world  ", "hello world", False),
        ("Re [x]: hello", "hello", True),
        ("Reply: hello", "Reply: hello", False),
        ("", "", False),
    ],
)
def test_base_subject(subject, base, reply):
    """RFC 5256 §2.1 base subject extraction and the reply/forward flag."""
    assert base_subject(subject) == (base, reply)


def test_base_subject_long_blob_chain():
    """Thousands of leading blobs are stripped in one pass, keeping the last if alone."""
    assert base_subject("[a]" * 5000 + "x") == ("x", False)
    assert base_subject("[a] " * 5000) == ("[a]", False)


def test_references_and_in_reply_to_fallback():
    """References wins; without it the first In-Reply-To msg-id is used."""
    both = crlf("References: <a@x> <b@x>\n\t<c@x>\nIn-Reply-To: <z@x>\nMessage-ID: <d@x>\n\n")
    only = crlf("In-Reply-To: <z@x> <y@x>\n\n")
    assert analyse(both).references == ("a@x", "b@x", "c@x")
    assert analyse(both).message_id == "d@x"
    assert analyse(only).references == ("z@x",)


def test_summary_json_round_trip():
    """to_json/from_json keep every field, 8-bit bytes and the aware date."""
    raw = b"Subject: \xe9t\xe9\r\nDate: Tue, 3 Mar 2026 08:00:00 +0530\r\n\r\nbody\r\n"
    summary = analyse(raw)
    again = MessageSummary.from_json(summary.to_json())
    assert again == summary
    assert again.sent_date == datetime(2026, 3, 3, 8, tzinfo=timezone(timedelta(hours=5.5)))


def test_summary_from_json_rejects_garbage():
    """from_json refuses data it did not write."""
    with pytest.raises(ValueError, match="summary"):
        MessageSummary.from_json('{"v": 2}')
    with pytest.raises(ValueError, match="summary"):
        MessageSummary.from_json('{"v": 1, "envelope": 5}')


def test_message_without_header():
    """A message with no header fields is all body, typed text/plain."""
    raw = b"just some text\r\nmore\r\n"
    summary = analyse(raw)
    assert summary.header_size == 0
    assert summary.body == b'("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 22 2)'
    assert section(raw, SectionSpec(text="TEXT")) == raw
    assert summary.envelope == b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"


def test_missing_final_boundary_and_bad_boundary():
    """A missing close delimiter ends the last part at EOF; no delimiter at all
    degrades the multipart to text/plain."""
    truncated = crlf('Content-Type: multipart/mixed; boundary="q"\n\n--q\n\nfirst\n--q\n\nsecond\n')
    summary = analyse(truncated)
    assert summary.body.startswith(b'(("TEXT" "PLAIN"')
    assert section(truncated, SectionSpec((2,))) == b"second\r\n"
    nobound = crlf('Content-Type: multipart/mixed; boundary="q"\n\nno parts here\n')
    assert analyse(nobound).body.startswith(b'("TEXT" "PLAIN"')
    noparam = crlf("Content-Type: multipart/mixed\n\nno boundary\n")
    assert analyse(noparam).body.startswith(b'("TEXT" "PLAIN"')
    garbage = crlf("Content-Type: ???\n\nx\n")
    assert analyse(garbage).body.startswith(b'("TEXT" "PLAIN" ("CHARSET" "us-ascii")')


def test_lf_only_message():
    """Bare-LF messages are tolerated: header and parts split on LF too."""
    raw = b'Subject: lf\nContent-Type: multipart/mixed; boundary="z"\n\n--z\n\none\n--z--\n'
    assert section(raw, SectionSpec((1,))) == b"one"
    assert analyse(raw).subject_base == "lf"


def test_bad_charset_and_8bit_junk_in_search():
    """Unknown or bytes-only charsets fall back to UTF-8/cp1252 instead of failing."""
    raw = b"Content-Type: text/plain; charset=x-nonsense\r\n\r\ncaf\xc3\xa9\r\n"
    assert "café" in text_for_search(raw)
    latin = b"Content-Type: text/plain; charset=us-ascii\r\n\r\ncaf\xe9 \x80\r\n"
    assert "café €" in text_for_search(latin)
    raw2 = b"Content-Type: text/plain; charset=base64\r\nSubject: =?rot13?Q?uryyb?=\r\n\r\nok\r\n"
    assert text_for_search(raw2) == "ok "
    assert header_values(raw2, "subject") == ["uryyb"]


def test_digest_parts_default_to_message():
    """Parts of multipart/digest without Content-Type are message/rfc822."""
    raw = crlf(
        'Content-Type: multipart/digest; boundary="d"\n\n--d\n\nSubject: one\n\nbody\n--d--\n'
    )
    assert b'("MESSAGE" "RFC822" NIL NIL NIL "7BIT"' in analyse(raw).body
    assert section(raw, SectionSpec((1,), "HEADER")) == b"Subject: one\r\n\r\n"


def test_deep_nesting_is_capped():
    """Hostile nesting depth does not recurse without bound."""
    raw = b""
    for level in range(200):
        raw = (
            f'Content-Type: multipart/mixed; boundary="b{level}"\r\n\r\n--b{level}\r\n'.encode()
            + raw
            + f"\r\n--b{level}--\r\n".encode()
        )
    summary = analyse(raw)
    assert summary.bodystructure.count(b'"MIXED"') <= 41


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_never_raise(raw):
    """analyse/section/search never raise on arbitrary bytes."""
    summary = analyse(raw)
    assert summary.size == len(raw)
    assert MessageSummary.from_json(summary.to_json()) == summary
    section(raw, SectionSpec((1, 2), "MIME"))
    text_for_search(raw)


_PIECES = st.sampled_from(
    [
        b"Content-Type: multipart/mixed; boundary=x\r\n",
        b"Content-Type: message/rfc822\r\n",
        b"Content-Transfer-Encoding: base64\r\n",
        b"Content-Transfer-Encoding: quoted-printable\r\n",
        b"Subject: =?utf-8?b?w6k=?= =?bad?q?x?=\r\n",
        b'From: a <b@c>, (x) "q\\"" <@d:e@f>; g:;\r\n',
        b"Date: Tue, 99 Foo 2026\r\n",
        b"\r\n",
        b"--x\r\n",
        b"--x--\r\n",
        b" folded\r\n",
        b"=C3=\r\n",
        b"\xff\xfe\x00\r\n",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, max_size=40))
def test_random_mime_shapes_never_raise(pieces):
    """MIME-looking junk parses; every part number listed by depth 2 is addressable."""
    raw = b"".join(pieces)
    summary = analyse(raw)
    assert summary.bodystructure.startswith(b"(")
    for first in range(1, 4):
        for second in (None, 1, 2):
            path = (first,) if second is None else (first, second)
            for text in (None, "MIME", "HEADER", "TEXT"):
                section(raw, SectionSpec(path, text))
