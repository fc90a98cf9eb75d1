"""FETCH and UID FETCH: items, sections, partials, \\Seen side effects, bad sets."""

from __future__ import annotations

from collections.abc import Sequence

from twisted.internet.defer import Deferred

from tests.proto.imap.fakes import Client, FakeStore, message, with_messages
from vpop3d.proto.imap.mailbox import MessageData
from vpop3d.proto.imap.server import ConnectionCounter, IMAPLimits

MULTIPART = (
    b"From: a@b.test\r\nSubject: parts\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="XX"\r\n\r\n'
    b"--XX\r\nContent-Type: text/plain\r\n\r\nfirst part\r\n"
    b"--XX\r\nContent-Type: text/html\r\n\r\n<p>second</p>\r\n"
    b"--XX--\r\n"
)


def _client(store: FakeStore | None = None) -> Client:
    client = Client(store or with_messages(3))
    client.login()
    client.select()
    return client


def test_fetch_flags_and_uid() -> None:
    """FETCH 1:* (FLAGS UID) lists each message in order."""
    client = _client()
    assert client.lines("a1 FETCH 1:* (UID FLAGS)") == [
        "* 1 FETCH (UID 1 FLAGS (\\Recent))",
        "* 2 FETCH (UID 2 FLAGS (\\Recent))",
        "* 3 FETCH (UID 3 FLAGS (\\Recent))",
        "a1 OK FETCH completed",
    ]


def test_uid_fetch_always_includes_uid() -> None:
    """UID FETCH adds UID to the items even when not asked (RFC 3501 §6.4.8)."""
    client = _client()
    assert client.lines("a1 UID FETCH 2 FLAGS") == [
        "* 2 FETCH (UID 2 FLAGS (\\Recent))",
        "a1 OK UID FETCH completed",
    ]


def test_uid_fetch_star_gives_last_message_even_past_it() -> None:
    """UID FETCH 10:* returns the last message when no UID is that high (RFC 3501 §6.4.8)."""
    client = _client()
    assert client.lines("a1 UID FETCH 10:* FLAGS")[0] == "* 3 FETCH (UID 3 FLAGS (\\Recent))"


def test_uid_fetch_no_match_is_ok() -> None:
    """A UID set matching nothing is not an error."""
    client = _client()
    client.send("a0 UID FETCH 1 FLAGS")
    assert client.send("a1 UID FETCH 7,8 FLAGS") == "a1 OK UID FETCH completed\r\n"


def test_fetch_out_of_range_is_bad() -> None:
    """A message sequence number above EXISTS is BAD."""
    client = _client()
    assert client.send("a1 FETCH 4 FLAGS") == "a1 BAD Invalid message sequence number\r\n"


def test_fetch_body_sets_seen_and_peek_does_not() -> None:
    """BODY[] sets \\Seen and reports FLAGS; BODY.PEEK[] leaves flags alone."""
    store = with_messages(2)
    client = _client(store)
    out = client.send("a1 FETCH 1 BODY.PEEK[]")
    assert "FLAGS" not in out
    assert store.folders["INBOX"].messages[1].flags == frozenset()
    out = client.send("a2 FETCH 2 BODY[]")
    assert "FLAGS (\\Seen \\Recent)" in out
    assert store.folders["INBOX"].messages[2].flags == frozenset({"\\Seen"})


def test_fetch_full_body_is_literal() -> None:
    """BODY[] returns the exact stored octets as a literal."""
    raw = message("exact")
    store = with_messages(0)
    store.folders["INBOX"].add(raw)
    client = _client(store)
    out = client.send("a1 FETCH 1 BODY.PEEK[]")
    assert (
        out == f"* 1 FETCH (BODY[] {{{len(raw)}}}\r\n{raw.decode()})\r\na1 OK FETCH completed\r\n"
    )


def test_fetch_partial() -> None:
    """BODY[]<0.4> returns four octets and echoes only the origin."""
    client = _client()
    assert client.lines("a1 FETCH 1 BODY.PEEK[]<0.4>")[0] == "* 1 FETCH (BODY[]<0> {4}"


def test_fetch_partial_past_end_is_empty() -> None:
    """An origin beyond the end gives an empty string."""
    client = _client()
    assert "BODY[]<100000> {0}" in client.send("a1 FETCH 1 BODY.PEEK[]<100000.10>")


def test_fetch_header_fields() -> None:
    """BODY[HEADER.FIELDS (SUBJECT)] returns only that field plus the blank line."""
    client = _client()
    out = client.send("a1 FETCH 2 BODY.PEEK[HEADER.FIELDS (Subject)]")
    assert out.startswith("* 2 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {15}\r\nSubject: m2\r\n\r\n)")


def test_fetch_header_fields_not() -> None:
    """HEADER.FIELDS.NOT drops the named fields."""
    client = _client()
    out = client.send("a1 FETCH 1 BODY.PEEK[HEADER.FIELDS.NOT (SUBJECT DATE MESSAGE-ID)]")
    assert "Subject:" not in out
    assert "From: a@b.test" in out


def test_fetch_mime_parts() -> None:
    """Part numbers address MIME parts; BODYSTRUCTURE describes them."""
    store = with_messages(0)
    store.folders["INBOX"].add(MULTIPART)
    client = _client(store)
    out = client.send("a1 FETCH 1 (BODY.PEEK[2] BODY.PEEK[1.MIME])")
    assert "BODY[2] {13}\r\n<p>second</p>" in out
    assert "BODY[1.MIME] {28}\r\nContent-Type: text/plain\r\n\r\n" in out
    structure = client.send("a1 FETCH 1 BODYSTRUCTURE")
    assert '("TEXT" "PLAIN"' in structure
    assert '"MIXED" ("BOUNDARY" "XX")' in structure


def test_fetch_rfc822_items() -> None:
    """RFC822.HEADER and RFC822.SIZE behave as in RFC 3501 §6.4.5."""
    client = _client()
    out = client.send("a1 FETCH 1 (RFC822.SIZE RFC822.HEADER)")
    assert f"RFC822.SIZE {len(message('m1'))}" in out
    assert "RFC822.HEADER {" in out
    assert "\\Seen" not in out


def test_fetch_rfc822_sets_seen() -> None:
    """RFC822 (the whole message) sets \\Seen."""
    store = with_messages(1)
    client = _client(store)
    out = client.send("a1 FETCH 1 RFC822")
    assert "RFC822 {" in out
    assert "FLAGS (\\Seen \\Recent)" in out


def test_fetch_macros() -> None:
    """FAST expands to FLAGS INTERNALDATE RFC822.SIZE."""
    client = _client()
    line = client.lines("a1 FETCH 1 FAST")[0]
    assert line.startswith('* 1 FETCH (FLAGS (\\Recent) INTERNALDATE "17-Jul-2026 02:44:25 +0000"')
    assert "RFC822.SIZE" in line


def test_fetch_bad_item_is_bad() -> None:
    """An unknown item is a syntax error."""
    client = _client()
    assert client.send("a1 FETCH 1 (FLAGS BOGUS)").startswith("a1 BAD ")


def test_fetch_in_authenticated_state_is_bad() -> None:
    """FETCH without a selected mailbox is BAD."""
    client = Client()
    client.login()
    assert client.send("a1 FETCH 1 FLAGS") == "a1 BAD No mailbox selected\r\n"


def test_fetch_streams_in_batches() -> None:
    """FETCH over many messages loads them in batches, not all at once."""
    store = with_messages(450)
    client = _client(store)
    loads: list[int] = []
    selected = store.selected[-1]
    original = selected.load

    def counting(uids: Sequence[int], with_body: bool) -> Deferred[Sequence[MessageData]]:
        loads.append(len(uids))
        return original(uids, with_body)

    selected.load = counting  # type: ignore[method-assign]  # spy on the fake
    out = client.lines("a1 FETCH 1:* RFC822.SIZE")
    assert len(out) == 451
    assert loads == [200, 200, 50]


def test_fetch_star_on_empty_mailbox_is_ok() -> None:
    """FETCH 1:* on an empty mailbox answers OK with no data; FETCH 1 is BAD."""
    client = _client(with_messages(0))
    assert client.send("a1 FETCH 1:* FLAGS") == "a1 OK FETCH completed\r\n"
    assert client.send("a2 FETCH 1 FLAGS").startswith("a2 BAD ")


def test_fetch_waits_while_client_lags() -> None:
    """Body FETCH streams batch by batch, pausing while the transport buffer is full."""
    store = with_messages(45)
    client = _client(store)
    gate = client.transport.producer
    assert gate is not None
    gate.pauseProducing()
    out = client.send("a1 FETCH 1:* BODY.PEEK[]")
    assert out.count(" FETCH (") == 20
    gate.resumeProducing()
    out = client.take()
    assert out.count(" FETCH (") == 25
    assert out.endswith("a1 OK FETCH completed\r\n")


def test_too_many_concurrent_fetches() -> None:
    """A FETCH over the per-user limit waits 40 s for a slot, then fails (seed-4 §8.3)."""
    counter = ConnectionCounter()
    limits = IMAPLimits(max_user_fetches=1)
    store = with_messages(2)
    first = Client(store, limits=limits, counter=counter)
    second = Client(store, limits=limits, counter=counter, clock=first.clock)
    for client in (first, second):
        client.login()
        client.select()
    pending: Deferred[Sequence[MessageData]] = Deferred()
    held = store.selected[0]
    held.load = lambda uids, with_body: pending  # type: ignore[method-assign]  # stall FETCH
    assert first.send("a1 FETCH 1 RFC822.SIZE") == ""
    assert second.send("b1 FETCH 1 RFC822.SIZE") == ""
    first.clock.advance(41)
    assert second.take() == "b1 NO [LIMIT] Too many current FETCHes active\r\n"
    pending.callback([])
    assert first.take().startswith("a1 NO [EXPUNGEISSUED]")
    assert second.send("b2 FETCH 1 RFC822.SIZE").endswith("b2 OK FETCH completed\r\n")


def test_queued_fetch_gets_freed_slot() -> None:
    """A waiting FETCH runs as soon as the running one finishes."""
    counter = ConnectionCounter()
    limits = IMAPLimits(max_user_fetches=1)
    store = with_messages(1)
    first = Client(store, limits=limits, counter=counter)
    second = Client(store, limits=limits, counter=counter, clock=first.clock)
    for client in (first, second):
        client.login()
        client.select()
    pending: Deferred[Sequence[MessageData]] = Deferred()
    original = store.selected[0].load
    store.selected[0].load = lambda uids, with_body: pending  # type: ignore[method-assign]  # stall
    first.send("a1 FETCH 1 RFC822.SIZE")
    assert second.send("b1 FETCH 1 RFC822.SIZE") == ""
    loaded: list[Sequence[MessageData]] = []
    original([1], False).addCallback(loaded.append)
    pending.callback(loaded[0])
    assert second.take().endswith("b1 OK FETCH completed\r\n")
