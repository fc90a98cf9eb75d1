"""POP3 TRANSACTION commands as transcripts (RFC 1939 §5, §7; manual L1473-1507)."""

from __future__ import annotations

from typing import Any

from tests.proto.pop3.harness import (
    FakeMaildrops,
    Transcript,
    make_factory,
    sample_maildrops,
)

# The manual's sample session (seed-1 §11.1): sizes and UIDLs as printed there.
SAMPLE = [
    (1241, "anh-637722"),
    (23451, "anh-637723"),
    (3321, "anh-637727"),
    (5667, "anh-637729"),
    (27561, "anh-637735"),
]


def body_of_size(size: int, subject: str = "sample") -> bytes:
    """A CRLF message of exactly ``size`` octets."""
    head = f"Subject: {subject}\r\n\r\n".encode()
    filler = size - len(head)
    lines = []
    while filler > 0:
        width = min(filler, 78) - 2
        if width < 1:
            lines.append(b"\r\n")
            filler -= 2
            continue
        lines.append(b"x" * width + b"\r\n")
        filler -= width + 2
    body = head + b"".join(lines)
    assert len(body) == size
    return body


def sample_transcript() -> tuple[Transcript, FakeMaildrops]:
    drops = FakeMaildrops()
    for size, uidl in SAMPLE:
        drops.add("fred", body_of_size(size), uidl)
    return Transcript(make_factory(maildrops=drops)), drops


def test_manual_sample_session() -> None:
    """The manual's sample session replays byte for byte, up to the message body."""
    t, drops = sample_transcript()
    assert t.greeting() == "+OK POP3 server ready\r\n"
    t.expect("USER fred", "+OK Enter password")
    t.expect("PASS letmein", "+OK 5 messages (61241 octets)")
    t.expect("STAT", "+OK 5 61241")
    t.expect(
        "LIST",
        "+OK 5 messages (61241 octets)",
        "1 1241",
        "2 23451",
        "3 3321",
        "4 5667",
        "5 27561",
        ".",
    )
    t.expect(
        "UIDL",
        "+OK 5 messages (61241 octets)",
        "1 anh-637722",
        "2 anh-637723",
        "3 anh-637727",
        "4 anh-637729",
        "5 anh-637735",
        ".",
    )
    retr = t.send("RETR 1")
    assert retr == "+OK 1241 octets\r\n" + body_of_size(1241).decode() + ".\r\n"
    t.expect("DELE 1", "+OK message 1 deleted")
    t.expect("QUIT", "+OK signing off")
    assert t.is_closed()
    assert drops.drops[0].committed == [1]
    assert [item[1] for item in drops.boxes["fred"]] == [u for _, u in SAMPLE[1:]]


def logged_in(**config: Any) -> tuple[Transcript, FakeMaildrops]:
    drops = sample_maildrops()
    t = Transcript(make_factory(maildrops=drops, **config))
    t.greeting()
    assert t.login().startswith("+OK 3 messages")
    return t, drops


def test_list_and_uidl_single_message() -> None:
    """LIST n and UIDL n answer on one line (RFC 1939 §5, §7)."""
    t, _ = logged_in()
    t.expect("LIST 2", "+OK 2 36")
    t.expect("UIDL 3", "+OK 3 anh-637724")
    t.expect("list 1", "+OK 1 28")


def test_message_numbers_out_of_range() -> None:
    """A message number past the end gets -ERR with the maildrop size."""
    t, _ = logged_in()
    t.expect("LIST 4", "-ERR no such message, only 3 messages in maildrop")
    t.expect("RETR 9", "-ERR no such message, only 3 messages in maildrop")
    t.expect("UIDL 0", "-ERR Invalid message number")
    t.expect("DELE x", "-ERR Invalid message number")
    t.expect("TOP 1", "-ERR Wrong number of arguments")
    t.expect("TOP 1 -1", "-ERR Invalid line count")


def test_deleted_messages_are_hidden_and_refused() -> None:
    """After DELE a message vanishes from STAT/LIST/UIDL and access is refused."""
    t, drops = logged_in()
    t.expect("DELE 2", "+OK message 2 deleted")
    t.expect("DELE 2", "-ERR message 2 already deleted")
    t.expect("STAT", "+OK 2 53")
    t.expect("LIST", "+OK 2 messages (53 octets)", "1 28", "3 25", ".")
    t.expect("UIDL", "+OK 2 messages (53 octets)", "1 anh-637722", "3 anh-637724", ".")
    t.expect("RETR 2", "-ERR message 2 already deleted")
    t.expect("TOP 2 0", "-ERR message 2 already deleted")
    t.expect("LIST 2", "-ERR message 2 already deleted")
    assert drops.boxes["fred"][1][0] == 2  # nothing removed before QUIT


def test_rset_unmarks_deleted_messages() -> None:
    """RSET unmarks every deleted message (RFC 1939 §5)."""
    t, drops = logged_in()
    t.send("DELE 1")
    t.send("DELE 3")
    t.expect("RSET", "+OK 3 messages (89 octets)")
    t.expect("STAT", "+OK 3 89")
    t.expect("QUIT", "+OK signing off")
    assert drops.drops[0].committed == []
    assert len(drops.boxes["fred"]) == 3


def test_retr_dot_stuffs_lines() -> None:
    """RETR doubles a leading dot and ends with CRLF.CRLF (RFC 1939 §3)."""
    t, _ = logged_in()
    assert t.send("RETR 2") == (
        "+OK 36 octets\r\nSubject: two\r\n\r\n..dotted line\r\nmore\r\n.\r\n"
    )


def test_top_zero_sends_header_and_blank_line() -> None:
    """TOP n 0 sends the header and the separating blank line only (RFC 1939 §7)."""
    t, _ = logged_in()
    assert t.send("TOP 2 0") == "+OK top of message follows\r\nSubject: two\r\n\r\n.\r\n"


def test_top_counts_body_lines() -> None:
    """TOP n 1 adds exactly one body line, dot-stuffed."""
    t, _ = logged_in()
    assert t.send("TOP 2 1") == (
        "+OK top of message follows\r\nSubject: two\r\n\r\n..dotted line\r\n.\r\n"
    )
    assert t.send("TOP 2 50").endswith("..dotted line\r\nmore\r\n.\r\n")


def test_noop_and_stat() -> None:
    """NOOP answers +OK; STAT counts messages and octets."""
    t, _ = logged_in()
    t.expect("NOOP", "+OK")
    t.expect("STAT", "+OK 3 89")


def test_quit_commits_deletions_in_update_state() -> None:
    """QUIT removes the marked messages, by message id, then closes."""
    t, drops = logged_in()
    t.send("DELE 3")
    t.send("DELE 1")
    t.expect("QUIT", "+OK signing off")
    assert drops.drops[0].committed == [1, 3]
    assert [item[0] for item in drops.boxes["fred"]] == [2]
    assert "fred" not in drops.locked
    assert t.is_closed()


def test_dropped_connection_deletes_nothing() -> None:
    """DELE then a dropped connection releases the lock and keeps every message."""
    t, drops = logged_in()
    t.send("DELE 1")
    t.protocol.connectionLost()
    assert drops.drops[0].released
    assert drops.drops[0].committed is None
    assert len(drops.boxes["fred"]) == 3
    assert "fred" not in drops.locked


def test_commit_failure_reports_and_releases() -> None:
    """A failed commit answers -ERR [SYS/TEMP] and still releases the lock."""
    t, drops = logged_in()
    drops.drops[0].commit_error = RuntimeError("disk full")
    t.send("DELE 1")
    t.expect("QUIT", "-ERR [SYS/TEMP] Some deleted messages not removed")
    assert drops.drops[0].released
    assert t.is_closed()


def test_transaction_commands_refused_before_login() -> None:
    """STAT, LIST, RETR, DELE, NOOP, RSET before login are in the wrong state."""
    t = Transcript(make_factory(maildrops=sample_maildrops()))
    t.greeting()
    for line in ("STAT", "LIST", "UIDL 1", "RETR 1", "TOP 1 1", "DELE 1", "RSET", "NOOP"):
        t.expect(line, "-ERR Command not valid in this state")


def test_authorization_commands_refused_after_login() -> None:
    """USER, PASS, APOP, AUTH, STLS and UTF8 are refused in TRANSACTION."""
    t, _ = logged_in()
    for line in ("USER fred", "PASS x", "AUTH PLAIN", "STLS", "UTF8"):
        t.expect(line, "-ERR Command not valid in this state")


def test_unknown_and_malformed_commands() -> None:
    """Unknown verbs, stray arguments and empty lines get -ERR and change nothing."""
    t, _ = logged_in()
    t.expect("FOO", "-ERR Unknown command")
    t.expect("STAT 1", "-ERR Wrong number of arguments")
    t.expect("", "-ERR Empty command")
    t.expect(b"LIST \xff", "-ERR Invalid UTF-8 in command")
    t.expect("STAT", "+OK 3 89")


def test_overlong_line_is_refused() -> None:
    """A command line over 255 octets gets -ERR and the session carries on."""
    t, _ = logged_in()
    t.expect("NOOP " + "x" * 300, "-ERR Line too long")
    t.expect("STAT", "+OK 3 89")


def test_overlong_line_split_across_segments() -> None:
    """A long line arriving in pieces is refused once, at its end."""
    t, _ = logged_in()
    t.protocol.dataReceived(b"LIST " + b"9" * 200)
    t.protocol.dataReceived(b"9" * 200)
    assert t.take() == ""
    t.protocol.dataReceived(b"9\r\nSTAT\r\n")
    assert t.take() == "-ERR Line too long\r\n+OK 3 89\r\n"


def test_longest_line_split_before_lf_is_accepted() -> None:
    """A 255-octet line whose LF arrives late is still accepted (RFC 2449 §4)."""
    t, _ = logged_in()
    t.take()
    t.protocol.dataReceived(b"PASS " + b"p" * 248 + b"\r")
    t.protocol.dataReceived(b"\n")
    assert t.take() == "-ERR Command not valid in this state\r\n"


def test_bare_lf_line_ends_are_accepted() -> None:
    """Commands ending in bare LF are understood (lenient framing)."""
    t, _ = logged_in()
    t.take()
    t.protocol.dataReceived(b"STAT\n")
    assert t.take() == "+OK 3 89\r\n"


def test_trailing_blank_line_fix_strips_empty_lines() -> None:
    """With the Internet Mail 1160 fix, RETR drops blank lines at the end."""
    drops = FakeMaildrops()
    drops.add("fred", b"Subject: a\r\n\r\nbody\r\n\r\n\r\n")
    t = Transcript(make_factory(maildrops=drops, last_line_fix=True))
    t.login()
    assert t.send("RETR 1").endswith("\r\n\r\nbody\r\n.\r\n")
    plain = Transcript(make_factory(maildrops=FakeMaildrops(boxes=drops.boxes)))
    plain.login()
    assert plain.send("RETR 1").endswith("body\r\n\r\n\r\n.\r\n")


def test_bare_lf_body_is_sent_with_crlf() -> None:
    """A stored body with bare LF line ends goes out with CRLF."""
    drops = FakeMaildrops()
    drops.add("fred", b"Subject: lf\n\nline\n.\nlast")
    t = Transcript(make_factory(maildrops=drops))
    t.login()
    assert t.send("RETR 1") == ("+OK 28 octets\r\nSubject: lf\r\n\r\nline\r\n..\r\nlast\r\n.\r\n")


def test_body_stream_is_closed_after_retr() -> None:
    """RETR closes the message stream it opened."""
    t, drops = logged_in()
    t.send("RETR 1")
    t.send("TOP 2 0")
    assert len(drops.opened) == 2
    assert all(stream.closed for stream in drops.opened)
