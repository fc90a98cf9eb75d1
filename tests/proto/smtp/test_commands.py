"""SMTP command transcripts: greeting, EHLO, the mail transaction and simple verbs."""

from __future__ import annotations

from typing import Any

from tests.proto.smtp.fakes import FakeDelivery, Transcript, make_factory


def transcript(**config: Any) -> tuple[Transcript, FakeDelivery]:
    delivery = FakeDelivery()
    return Transcript(make_factory(delivery, **config)), delivery


def test_greeting_names_host_and_esmtp():
    """The banner is `220 <host> ESMTP server ready` (manual L1546)."""
    t, _ = transcript()
    assert t.greeting == ["220 mail.a.test ESMTP server ready"]


def test_ehlo_lists_extensions_in_order():
    """EHLO answers with the host greeting and the ESMTP keywords of seed-4 §7.11."""
    t, _ = transcript(allow_plaintext_auth_without_tls=True)
    assert t.send("EHLO client.example") == [
        "250-mail.a.test Hello client.example, I'm pleased to meet you",
        "250-PIPELINING",
        "250-SIZE 10000",
        "250-8BITMIME",
        "250-ENHANCEDSTATUSCODES",
        "250-SMTPUTF8",
        "250-DSN",
        "250-CHUNKING",
        "250-AUTH SCRAM-SHA-256 PLAIN LOGIN CRAM-MD5",
        "250 HELP",
    ]


def test_ehlo_hides_plaintext_mechanisms_without_tls():
    """PLAIN and LOGIN are not offered on a plaintext link unless allowed."""
    t, _ = transcript()
    assert "250-AUTH SCRAM-SHA-256 CRAM-MD5" in t.send("EHLO c")


def test_ehlo_without_tls_context_has_no_starttls():
    """STARTTLS is advertised only when a certificate exists (check 13)."""
    t, _ = transcript()
    assert not any("STARTTLS" in line for line in t.send("EHLO c"))


def test_dsn_can_be_disabled():
    """'Disable DSN support' removes DSN and refuses its parameters (L6903)."""
    t, _ = transcript(dsn=False)
    assert not any("DSN" in line for line in t.send("EHLO c"))
    assert t.last("MAIL FROM:<a@b.test> RET=HDRS") == "555 5.5.4 Unsupported parameter"
    t.send("MAIL FROM:<a@b.test>")
    assert t.last("RCPT TO:<fred@a.test> NOTIFY=NEVER").startswith("555 5.5.4")


def test_helo_is_a_single_line():
    """HELO gets one 250 line and no extension list."""
    t, _ = transcript()
    assert t.send("HELO client") == ["250 mail.a.test Hello client, I'm pleased to meet you"]


def test_helo_session_refuses_esmtp_parameters():
    """After HELO (not EHLO) MAIL parameters are refused (RFC 5321 §4.1.2)."""
    t, _ = transcript()
    t.send("HELO client")
    assert t.last("MAIL FROM:<a@b.test> SIZE=10").startswith("555 5.5.4")


def test_full_transaction_queues_the_message():
    """The manual's sample session, reply for reply (L1545-1575)."""
    t, delivery = transcript()
    t.send("EHLO mail.domain.com")
    assert t.send("MAIL FROM:<bob@domain.com>") == ["250 2.1.0 OK"]
    assert t.send("RCPT TO:<fred@a.test>") == ["250 2.1.5 OK"]
    assert t.send("RCPT TO:<katy@a.test>") == ["550 5.1.1 Recipient not recognised"]
    assert t.send("RCPT TO:<kate@a.test>") == ["250 2.1.5 OK"]
    assert t.send("DATA") == ["354 End data with <CR><LF>.<CR><LF>"]
    body = b"Subject: test message\r\n\r\nThis is a test message\r\n"
    assert t.raw(body + b".\r\n") == ["250 2.0.0 OK - queued as Q0001"]
    assert t.send("QUIT") == ["221 2.0.0 Bye, see you later"]
    assert t.closed
    [accepted] = delivery.accepted
    assert accepted.body == body
    assert accepted.envelope.sender == "bob@domain.com"
    assert [r for r, _ in accepted.envelope.recipients] == ["fred@a.test", "kate@a.test"]
    assert accepted.context.peer_host == "mail.domain.com"
    assert accepted.context.peer_ip == "192.0.2.7"


def test_dot_unstuffing_and_8bit_body():
    """Leading dots are unstuffed (RFC 5321 §4.5.2) and 8-bit bytes kept."""
    t, delivery = transcript()
    t.send("EHLO c")
    t.send("MAIL FROM:<> BODY=8BITMIME")
    t.send("RCPT TO:<fred@a.test>")
    t.send("DATA")
    reply = t.raw(b"..leading\r\n\r\n\xc3\xa9t\xc3\xa9\r\n...\r\n.\r\n")
    assert reply == ["250 2.0.0 OK - queued as Q0001"]
    assert delivery.accepted[0].body == b".leading\r\n\r\n\xc3\xa9t\xc3\xa9\r\n..\r\n"
    assert delivery.accepted[0].envelope.sender == ""
    assert delivery.accepted[0].envelope.params.body == "8BITMIME"


def test_body_split_across_packets():
    """The end of data is found however the bytes are split into packets."""
    t, delivery = transcript()
    t.send("EHLO c")
    t.send("MAIL FROM:<a@b.test>")
    t.send("RCPT TO:<fred@a.test>")
    t.send("DATA")
    message = b"line one\r\n.dot\r\nline three\r\n.\r\n"
    for index in range(len(message) - 1):
        assert t.raw(message[index : index + 1]) == []
    assert t.raw(message[-1:]) == ["250 2.0.0 OK - queued as Q0001"]
    assert delivery.accepted[0].body == b"line one\r\ndot\r\nline three\r\n"


def test_transaction_resets_after_delivery():
    """After the 250 for DATA a new MAIL is accepted and RCPT needs MAIL again."""
    t, _ = transcript()
    t.send("EHLO c")
    t.send("MAIL FROM:<a@b.test>")
    t.send("RCPT TO:<fred@a.test>")
    t.send("DATA")
    t.raw(b"x\r\n.\r\n")
    assert t.last("RCPT TO:<fred@a.test>") == "503 5.5.1 Need MAIL command"
    assert t.last("MAIL FROM:<a@b.test>") == "250 2.1.0 OK"


def test_sequence_errors():
    """Commands out of order get 503 5.5.1 with a reason."""
    t, _ = transcript()
    assert t.last("MAIL FROM:<a@b.test>") == "503 5.5.1 Send HELO/EHLO first"
    assert t.last("AUTH PLAIN") == "503 5.5.1 Send EHLO first"
    t.send("EHLO c")
    assert t.last("RCPT TO:<fred@a.test>") == "503 5.5.1 Need MAIL command"
    assert t.last("DATA") == "503 5.5.1 Need MAIL command"
    t.send("MAIL FROM:<a@b.test>")
    assert t.last("MAIL FROM:<a@b.test>") == "503 5.5.1 Sender already specified"
    assert t.last("DATA") == "503 5.5.1 No valid recipients"
    assert t.last("AUTH PLAIN") == "503 5.5.1 AUTH not permitted during a mail transaction"


def test_rset_clears_the_transaction():
    """RSET drops sender and recipients (RFC 5321 §4.1.1.5)."""
    t, _ = transcript()
    t.send("EHLO c")
    t.send("MAIL FROM:<a@b.test>")
    t.send("RCPT TO:<fred@a.test>")
    assert t.send("RSET") == ["250 2.0.0 OK"]
    assert t.last("DATA") == "503 5.5.1 Need MAIL command"


def test_ehlo_again_resets_the_transaction():
    """A second EHLO acts as RSET (RFC 5321 §4.1.4)."""
    t, _ = transcript()
    t.send("EHLO c")
    t.send("MAIL FROM:<a@b.test>")
    t.send("EHLO c")
    assert t.last("RCPT TO:<fred@a.test>") == "503 5.5.1 Need MAIL command"


def test_noop_help_vrfy_expn_etrn():
    """NOOP 250, HELP 214, VRFY 252, EXPN 502 by default (seed-4 §7.8)."""
    t, _ = transcript()
    assert t.send("NOOP anything") == ["250 2.0.0 OK"]
    assert t.send("HELP")[0].startswith("214-2.0.0 Commands: HELO EHLO")
    assert t.send("VRFY fred") == ["252 2.5.2 Cannot VRFY user"]
    assert t.send("EXPN staff") == ["502 5.5.1 EXPN not available"]
    assert t.send("ETRN a.test") == ["502 5.5.1 Command not implemented"]


def test_vrfy_expn_when_enabled():
    """With VRFY/EXPN allowed: 250 per address, 550 unknown, EXPN lists members (seed-4 §7.8)."""
    delivery = FakeDelivery(vrfy_enabled=True)
    t = Transcript(make_factory(delivery))
    t.send("EHLO c")
    assert t.send("VRFY <fred@a.test>") == ["250 2.1.5 <fred@a.test>"]
    assert t.send("VRFY nosuch@a.test") == ["550 5.1.1 Recipient not recognised"]
    assert t.send("EXPN team@a.test") == ["250-2.1.5 <fred@a.test>", "250 2.1.5 <kate@a.test>"]


def test_unknown_command_and_syntax_errors():
    """Unknown verbs get 500 5.5.2; bad arguments 501."""
    t, _ = transcript()
    assert t.send("FOO bar") == ["500 5.5.2 Command unrecognized"]
    assert t.send("EHLO") == ["501 5.5.4 Syntax: EHLO hostname"]
    t.send("EHLO c")
    assert t.send("MAIL FROM:bob@b.test") == ["501 5.1.3 Bad address syntax"]
    assert t.send("MAIL FROM:<a@b.test> SIZE=big") == ["501 5.5.4 Invalid SIZE parameter"]
    assert t.send("MAIL FROM:<a@b.test> X-FOO=1") == ["555 5.5.4 Unsupported parameter"]
    assert t.send("DATA now") == ["501 5.5.4 Syntax: DATA takes no arguments"]


def test_nul_and_invalid_utf8_in_commands_are_refused():
    """NUL, bare CR and invalid UTF-8 in a command line get 500 5.5.2."""
    t, _ = transcript()
    assert t.send(b"NOOP \x00") == ["500 5.5.2 NUL character not allowed"]
    assert t.send(b"NOOP \xff\xfe") == ["500 5.5.2 Invalid UTF-8 in command"]
    assert t.send(b"NOOP a\rb") == ["500 5.5.2 Bare CR or LF not allowed"]


def test_sender_refused_by_policy():
    """A ReplyError from check_sender is the reply, and MAIL may be retried."""
    t, _ = transcript()
    t.send("EHLO c")
    assert t.send("MAIL FROM:<spammer@bad.test>") == ["550 5.7.1 Sender Prohibited (test)"]
    assert t.send("MAIL FROM:<ok@b.test>") == ["250 2.1.0 OK"]


def test_relay_refused_without_auth():
    """An unauthenticated RCPT to a remote domain is refused (check 15)."""
    t, _ = transcript()
    t.send("EHLO c")
    t.send("MAIL FROM:<a@b.test>")
    assert t.send("RCPT TO:<x@remote.test>") == ["550 5.7.1 Relaying denied"]


def test_smtputf8_addresses():
    """UTF-8 paths are accepted with SMTPUTF8 and refused with 553 5.6.7 without."""
    t, delivery = transcript()
    delivery.local.add("jöran@a.test")
    t.send("EHLO c")
    assert t.send("MAIL FROM:<jörg@b.test>") == [
        "553 5.6.7 Non-ASCII addresses not permitted for that sender"
    ]
    assert t.send("MAIL FROM:<jörg@b.test> SMTPUTF8") == ["250 2.1.0 OK"]
    assert t.send("RCPT TO:<jöran@a.test>") == ["250 2.1.5 OK"]


def test_dsn_parameters_reach_the_envelope():
    """RET/ENVID and NOTIFY/ORCPT are decoded into the envelope (RFC 3461)."""
    t, delivery = transcript()
    t.send("EHLO c")
    t.send("MAIL FROM:<a@b.test> RET=HDRS ENVID=QQ+2B314")
    t.send("RCPT TO:<fred@a.test> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;fred+40a.test")
    t.send("DATA")
    t.raw(b"x\r\n.\r\n")
    envelope = delivery.accepted[0].envelope
    assert envelope.params.ret == "HDRS"
    assert envelope.params.envid == "QQ+314"
    [(_, params)] = envelope.recipients
    assert params.notify == ("SUCCESS", "DELAY")
    assert params.orcpt == "rfc822;fred@a.test"


def test_source_route_is_ignored():
    """A source route is accepted and dropped, never used for relaying."""
    t, _ = transcript()
    t.send("EHLO c")
    t.send("MAIL FROM:<a@b.test>")
    assert t.send("RCPT TO:<@relay.test,@x.test:fred@a.test>") == ["250 2.1.5 OK"]
    assert t.send("RCPT TO:<@a.test:x@remote.test>") == ["550 5.7.1 Relaying denied"]


def test_our_bug_gives_451_and_session_survives():
    """An unexpected exception in a port answers 451 4.3.0 and the session goes on."""
    t, delivery = transcript()
    t.send("EHLO c")
    t.send("MAIL FROM:<a@b.test>")
    delivery.broken = True
    assert t.send("RCPT TO:<fred@a.test>") == [
        "451 4.3.0 Temporary server error, please try again later"
    ]
    delivery.broken = False
    assert t.send("RCPT TO:<fred@a.test>") == ["250 2.1.5 OK"]
