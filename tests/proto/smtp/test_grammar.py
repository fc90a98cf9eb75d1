"""The SMTP command grammar: paths, parameters, limits, and its single error type."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vpop3d.ports import EnvelopeParams, RecipientParams
from vpop3d.proto.smtp.grammar import (
    Auth,
    Bdat,
    Data,
    Ehlo,
    Etrn,
    Expn,
    Helo,
    Help,
    MailFrom,
    Noop,
    Quit,
    RcptTo,
    Rset,
    SMTPSyntaxError,
    StartTLS,
    Unknown,
    Vrfy,
    parse_command,
    xtext_decode,
)


@pytest.mark.parametrize(
    ("line", "command"),
    [
        (b"HELO relay.example.org", Helo("relay.example.org")),
        (b"ehlo [192.0.2.1]", Ehlo("[192.0.2.1]")),
        (b"MAIL FROM:<>", MailFrom("", EnvelopeParams())),
        (b"mail from: <Bob@Example.COM>", MailFrom("Bob@Example.COM", EnvelopeParams())),
        (b"RCPT TO:<Postmaster>", RcptTo("Postmaster", RecipientParams())),
        (b'RCPT TO:<"john doe"@example.org>', RcptTo('"john doe"@example.org', RecipientParams())),
        (b'RCPT TO:<"a@b>c"@example.org>', RcptTo('"a@b>c"@example.org', RecipientParams())),
        (b"RCPT TO:<x@[IPv6:2001:db8::1]>", RcptTo("x@[IPv6:2001:db8::1]", RecipientParams())),
        (
            b"RCPT TO:<@hosta.int,@jkl.org:userc@d.bar.org>",
            RcptTo("userc@d.bar.org", RecipientParams()),
        ),
        (b"DATA", Data()),
        (b"BDAT 0 LAST", Bdat(0, True)),
        (b"BDAT 1000", Bdat(1000, False)),
        (b"RSET", Rset()),
        (b"NOOP whatever", Noop()),
        (b"QUIT", Quit()),
        (b"VRFY Smith", Vrfy("Smith")),
        (b"EXPN Example-People", Expn("Example-People")),
        (b"HELP", Help("")),
        (b"STARTTLS", StartTLS()),
        (b"AUTH plain", Auth("PLAIN", None)),
        (b"AUTH PLAIN =", Auth("PLAIN", b"=")),
        (b"ETRN @example.org", Etrn("@example.org")),
        (b"XYZZY", Unknown("XYZZY")),
    ],
)
def test_commands_parse(line: bytes, command: object):
    """Each verb parses to its command value (RFC 5321 §4.1 examples)."""
    assert parse_command(line) == command


def test_mail_parameters():
    """SIZE, BODY, SMTPUTF8, RET, ENVID and AUTH= are understood."""
    command = parse_command(
        b"MAIL FROM:<a@b.test> SIZE=500 BODY=8bitmime RET=full ENVID=a+2Bb AUTH=<>"
    )
    assert command == MailFrom(
        "a@b.test", EnvelopeParams(size=500, body="8BITMIME", ret="FULL", envid="a+b")
    )


def test_rcpt_parameters():
    """NOTIFY and ORCPT (xtext-decoded) are understood."""
    command = parse_command(b"RCPT TO:<a@b.test> NOTIFY=never ORCPT=rfc822;a+40b.test")
    assert command == RcptTo("a@b.test", RecipientParams(("NEVER",), "rfc822;a@b.test"))


@pytest.mark.parametrize(
    ("line", "start"),
    [
        (b"MAIL FROM:<a@b.test> SIZE=1 SIZE=2", "501 5.5.4 Duplicate SIZE"),
        (b"MAIL FROM:<a@b.test> BODY=BINARYMIME", "555 5.5.4"),
        (b"MAIL FROM:<a@b.test> BODY=9BIT", "501 5.5.4 Invalid BODY"),
        (b"MAIL FROM:<a@b.test> RET=ALL", "501 5.5.4 Invalid RET"),
        (b"MAIL FROM:<a@b.test> ENVID=a+zz", "501 5.5.4 Invalid xtext"),
        (b"MAIL FROM:<a@b.test> SMTPUTF8=yes", "501 5.5.4"),
        (b"RCPT TO:<a@b.test> NOTIFY=NEVER,SUCCESS", "501 5.5.4 Invalid NOTIFY"),
        (b"RCPT TO:<a@b.test> ORCPT=a@b", "501 5.5.4 Invalid ORCPT"),
        (b"RCPT TO:<>", "501 5.1.3"),
        (b"RCPT TO:<a.@b.test>", "501 5.1.3"),
        (b"RCPT TO:<a@b_c.test>", "501 5.1.3"),
        (b"RCPT TO:<a@[300.1.1.1]>", "501 5.1.3"),
        (b"RCPT TO:<a@b.test>x", "501 5.1.3"),
        (b"RCPT TO:<" + b"x" * 65 + b"@b.test>", "501 5.1.3"),
        (b"RCPT TO:<@-bad:a@b.test>", "501 5.1.3"),
        (b"RCPT TO:<@a.test,b.test:a@b.test>", "501 5.1.3"),
        (b"MAIL TO:<a@b.test>", "501 5.5.4 Syntax: FROM:"),
        (b"STARTTLS now", "501 5.5.4"),
        (b"QUIT please", "501 5.5.4"),
        (b"VRFY", "501 5.5.4"),
        (b"AUTH", "501 5.5.4"),
        (b"AUTH PLAIN a b", "501 5.5.4"),
        (b"HELO a\tb", "501 5.5.4"),
        (b"NOOP \x00", "500 5.5.2 NUL"),
        (b"NOOP \xc3", "500 5.5.2 Invalid UTF-8"),
        (b"NOOP a\rb", "500 5.5.2 Bare CR"),
        (b"NOOP " + b"a" * 600, "500 5.5.2 Line too long"),
    ],
)
def test_refusals(line: bytes, start: str):
    """Malformed lines raise SMTPSyntaxError carrying the right reply."""
    with pytest.raises(SMTPSyntaxError) as caught:
        parse_command(line)
    assert str(caught.value.reply).startswith(start)


def test_utf8_only_with_smtputf8():
    """UTF-8 addresses need SMTPUTF8 on MAIL (RFC 6531 §3.4) or the utf8 flag on RCPT."""
    with pytest.raises(SMTPSyntaxError, match=r"553 5\.6\.7"):
        parse_command("MAIL FROM:<ü@b.test>".encode())
    assert parse_command("MAIL FROM:<ü@bü.test> SMTPUTF8".encode()) == MailFrom(
        "ü@bü.test", EnvelopeParams(smtputf8=True)
    )
    with pytest.raises(SMTPSyntaxError, match=r"553 5\.6\.7"):
        parse_command("RCPT TO:<ü@b.test>".encode())
    assert parse_command("RCPT TO:<ü@b.test>".encode(), utf8=True) == RcptTo(
        "ü@b.test", RecipientParams()
    )


def test_rcpt_line_may_exceed_512_with_dsn_parameters():
    """RFC 3461 lets RCPT grow by 500 octets for ORCPT."""
    orcpt = "rfc822;" + "a" * 60 + "@" + "b" * 200 + ".test"
    line = f"RCPT TO:<{'x' * 60}@{'y' * 180}.test> ORCPT={orcpt}".encode()
    assert len(line) > 512
    assert isinstance(parse_command(line), RcptTo)


def test_xtext_decode():
    """+XX escapes decode; other characters stay."""
    assert xtext_decode("a+2Bb+3Dc") == "a+b=c"


@given(st.binary(max_size=300))
def test_only_the_grammar_error_escapes(line: bytes):
    """Any byte string either parses or raises SMTPSyntaxError, nothing else."""
    error: SMTPSyntaxError | None = None
    try:
        parse_command(line.replace(b"\n", b""))
    except SMTPSyntaxError as exc:
        error = exc
    assert error is None or 500 <= error.reply.code < 600


@given(
    st.sampled_from([b"MAIL FROM:", b"RCPT TO:", b"mail from: "]),
    st.text(max_size=80),
)
def test_path_fuzz(prefix: bytes, text: str):
    """Random paths never crash the parser."""
    with contextlib.suppress(SMTPSyntaxError):
        parse_command(prefix + b"<" + text.encode() + b">")
