"""SEARCH evaluation and SORT keys: vpop3d.core.imapsearch."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vpop3d.core import imapsearch as s
from vpop3d.core.mime import MessageSummary, analyse
from vpop3d.core.seqset import SeqSet

PLUS_ONE = timezone(timedelta(hours=1))

RAW = (
    b"Date: Sun, 1 Mar 2026 23:30:00 -0800\r\n"
    b"From: =?UTF-8?Q?J=C3=B6rg?= <joerg@example.test>\r\n"
    b"To: Bob <bob@example.test>\r\n"
    b"Cc: carol@example.test\r\n"
    b"Bcc: dave@example.test\r\n"
    b"Subject: Quarterly REPORT\r\n"
    b"X-Priority: 1\r\n"
    b"\r\n"
    b"The numbers look   GOOD this\r\n quarter.\r\n"
)


@dataclass
class Candidate:
    """A SearchCandidate over an in-memory message that counts raw() calls."""

    seq: int = 1
    uid: int = 10
    flags: frozenset[str] = frozenset()
    internal_date: datetime = datetime(2026, 3, 2, 0, 30, tzinfo=PLUS_ONE)
    size: int = 500
    modseq: int = 7
    recent: bool = False
    message: bytes = RAW
    raw_calls: int = 0
    summary: MessageSummary = field(init=False)

    def __post_init__(self) -> None:
        self.summary = analyse(self.message)

    def raw(self) -> bytes:
        self.raw_calls += 1
        return self.message


def check(
    key: s.SearchKey, candidate: Candidate | None = None, *, max_seq: int = 5, max_uid: int = 20
) -> bool:
    return s.matches(key, candidate or Candidate(), max_seq=max_seq, max_uid=max_uid)


@pytest.mark.parametrize(
    ("key", "opposite", "flag"),
    [
        (s.Answered(), s.Unanswered(), "\\Answered"),
        (s.Deleted(), s.Undeleted(), "\\Deleted"),
        (s.Draft(), s.Undraft(), "\\Draft"),
        (s.Flagged(), s.Unflagged(), "\\Flagged"),
        (s.Seen(), s.Unseen(), "\\Seen"),
        (s.Keyword("$Forwarded"), s.Unkeyword("$FORWARDED"), "$forwarded"),
    ],
)
def test_flag_keys(key, opposite, flag):
    """Flag keys match set flags (case-insensitively); their UN- forms the opposite."""
    with_flag = Candidate(flags=frozenset({flag}))
    assert check(key, with_flag)
    assert not check(opposite, with_flag)
    assert not check(key, Candidate())
    assert check(opposite, Candidate())


def test_recent_new_old():
    """NEW is recent and unseen; OLD is not recent (RFC 3501 §6.4.4)."""
    fresh = Candidate(recent=True)
    read = Candidate(recent=True, flags=frozenset({"\\Seen"}))
    assert check(s.Recent(), fresh)
    assert check(s.New(), fresh)
    assert not check(s.New(), read)
    assert not check(s.Old(), read)
    assert check(s.Old(), Candidate())


def test_internal_date_keys_use_the_stored_zone():
    """BEFORE/ON/SINCE compare the internal date's own calendar day, time ignored."""
    assert check(s.On(date(2026, 3, 2)))  # 00:30 +0100 is 2 March there
    assert not check(s.On(date(2026, 3, 1)))
    assert check(s.Since(date(2026, 3, 2)))
    assert not check(s.Before(date(2026, 3, 2)))
    assert check(s.Before(date(2026, 3, 3)))


def test_sent_date_keys():
    """SENT* use the Date header's own day; a missing Date falls back to INTERNALDATE."""
    assert check(s.SentOn(date(2026, 3, 1)))  # 23:30 -0800 is still 1 March
    assert check(s.SentBefore(date(2026, 3, 2)))
    assert not check(s.SentSince(date(2026, 3, 2)))
    undated = Candidate(message=b"Subject: x\r\n\r\n")
    assert check(s.SentOn(date(2026, 3, 2)), undated)


def test_size_keys_are_strict():
    """LARGER and SMALLER are strict comparisons."""
    assert check(s.Larger(499))
    assert not check(s.Larger(500))
    assert check(s.Smaller(501))
    assert not check(s.Smaller(500))


def test_uid_sequence_and_modseq():
    """UID and sequence sets resolve ``*``; MODSEQ is a lower bound (RFC 7162)."""
    assert check(s.UID(SeqSet.parse("15:*")), Candidate(uid=20))
    assert check(s.UID(SeqSet.parse("559:*")), Candidate(uid=20))
    assert not check(s.UID(SeqSet.parse("1:9")))
    assert check(s.SequenceSet(SeqSet.parse("*")), Candidate(seq=5))
    assert not check(s.SequenceSet(SeqSet.parse("2:4")))
    assert check(s.ModSeq(7))
    assert not check(s.ModSeq(8))


def test_combinators():
    """NOT, OR and parenthesised lists combine keys."""
    assert check(s.Not(s.Seen()))
    assert check(s.Or(s.Seen(), s.Larger(10)))
    assert not check(s.Or(s.Seen(), s.Larger(1000)))
    assert check(s.And((s.All(), s.Unseen(), s.Subject("report"))))
    assert not check(s.And((s.All(), s.Seen())))


def test_header_string_keys_decode_and_fold_case():
    """FROM/TO/CC/BCC/SUBJECT are case-insensitive substrings of decoded fields."""
    assert check(s.From("JÖRG"))
    assert check(s.From("joerg@example"))
    assert check(s.To("bob@"))
    assert check(s.Cc("CAROL"))
    assert check(s.Bcc("dave"))
    assert check(s.Subject("quarterly report"))
    assert not check(s.Subject("annual"))
    assert not check(s.Cc("bob"))


def test_header_key():
    """HEADER matches a field's text; an empty string matches any message with it."""
    assert check(s.Header("x-priority", "1"))
    assert check(s.Header("X-Priority", ""))
    assert not check(s.Header("X-Spam", ""))
    assert not check(s.Header("X-Priority", "5"))


def test_body_and_text_keys():
    """BODY looks at the body only; TEXT also at the header; whitespace is folded."""
    assert check(s.Body("look good"))
    assert check(s.Body("this quarter"))
    assert not check(s.Body("quarterly"))
    assert check(s.Text("quarterly"))
    assert check(s.Text("look good"))
    assert not check(s.Text("missing words"))


def test_raw_is_lazy_and_read_once():
    """Cheap keys never load the message; several text keys load it once."""
    cheap = Candidate()
    assert check(s.And((s.Unseen(), s.Larger(1), s.UID(SeqSet.parse("1:*")))), cheap)
    assert cheap.raw_calls == 0
    short_circuit = Candidate()
    assert not check(s.And((s.Body("good"), s.Seen())), short_circuit)
    assert short_circuit.raw_calls == 0  # Seen was checked first
    several = Candidate()
    assert check(s.And((s.From("jörg"), s.Body("good"), s.Text("report"))), several)
    assert several.raw_calls == 1


def test_needs_raw():
    """needs_raw tells the caller whether message bytes may be needed."""
    assert not s.needs_raw(s.And((s.Seen(), s.Not(s.Larger(3)))))
    assert s.needs_raw(s.Or(s.Seen(), s.Not(s.Header("a", "b"))))


def test_older_younger():
    """OLDER/YOUNGER (RFC 5032) compare the internal date's age with ``now``."""
    now = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
    young = Candidate(internal_date=now - timedelta(seconds=100))
    assert s.matches(s.Younger(200), young, max_seq=1, max_uid=1, now=now)
    assert not s.matches(s.Older(200), young, max_seq=1, max_uid=1, now=now)
    assert s.matches(s.Older(50), young, max_seq=1, max_uid=1, now=now)


def _sort(criteria: list[s.SortCriterion], candidates: list[Candidate]) -> list[int]:
    ordered = sorted(candidates, key=lambda c: s.sort_key(criteria, c))
    return [c.seq for c in ordered]


def _msg(subject: str, sender: str, date_header: str | None) -> bytes:
    lines = [f"Subject: {subject}", f"From: {sender}", "To: x@y.test"]
    if date_header:
        lines.append(f"Date: {date_header}")
    return ("\r\n".join(lines) + "\r\n\r\nbody\r\n").encode()


def test_sort_subject_date_and_reverse():
    """SORT by base subject then date; REVERSE applies to its own criterion only."""
    base = datetime(2026, 1, 1, tzinfo=UTC)
    items = [
        Candidate(seq=1, message=_msg("Re: beta", "z@x", "Mon, 5 Jan 2026 10:00:00 +0000")),
        Candidate(seq=2, message=_msg("alpha", "a@x", "Mon, 5 Jan 2026 09:00:00 +0000")),
        Candidate(seq=3, message=_msg("[list] BETA", "m@x", "Mon, 5 Jan 2026 08:00:00 +0000")),
        Candidate(seq=4, message=_msg("Alpha", "b@x", None), internal_date=base),
    ]
    subject, date_ = s.SortCriterion("SUBJECT"), s.SortCriterion("DATE")
    assert _sort([subject, date_], items) == [4, 2, 3, 1]
    assert _sort([subject, s.SortCriterion("DATE", reverse=True)], items) == [2, 4, 1, 3]
    assert _sort([s.SortCriterion("FROM", reverse=True)], items) == [1, 3, 4, 2]
    assert _sort([date_], items) == [4, 3, 2, 1]  # missing Date: internal date


def test_sort_ties_fall_back_to_sequence_number():
    """Equal keys keep ascending sequence order even under REVERSE."""
    items = [Candidate(seq=n, size=100) for n in (3, 1, 2)]
    assert _sort([s.SortCriterion("SIZE", reverse=True)], items) == [1, 2, 3]
    assert _sort([s.SortCriterion("ARRIVAL")], items) == [1, 2, 3]


def test_sort_display_and_address_keys():
    """DISPLAYFROM sorts by decoded display name; CC by first Cc mailbox."""
    items = [
        Candidate(seq=1, message=b"From: Zed <a@x>\r\nCc: b@x\r\n\r\n"),
        Candidate(seq=2, message=b"From: =?utf-8?q?Anna?= <z@x>\r\nCc: a@x\r\n\r\n"),
        Candidate(seq=3, message=b"From: m@x\r\n\r\n"),
    ]
    assert _sort([s.SortCriterion("DISPLAYFROM")], items) == [2, 3, 1]
    assert _sort([s.SortCriterion("CC")], items) == [3, 2, 1]
    assert _sort([s.SortCriterion("displayto")], items) == [1, 2, 3]


def test_unknown_sort_key():
    """An unknown criterion is a programming error in the caller."""
    with pytest.raises(ValueError, match="sort key"):
        s.sort_key([s.SortCriterion("COLOUR")], Candidate())


def test_keyword_tables_build_keys():
    """The grammar's keyword tables map SEARCH keywords to key values."""
    assert s.NO_ARGUMENT_KEYS["UNSEEN"] == s.Unseen()
    assert s.STRING_KEYS["FROM"]("bob") == s.From("bob")
    assert s.DATE_KEYS["SENTSINCE"](date(2026, 1, 2)) == s.SentSince(date(2026, 1, 2))
    assert s.NUMBER_KEYS["MODSEQ"](5) == s.ModSeq(5)
    assert len(s.NO_ARGUMENT_KEYS) == 14


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=1500), st.text(max_size=5))
def test_matches_never_raises_on_junk(raw, needle):
    """Every text-reading key evaluates on arbitrary bytes without raising."""
    candidate = Candidate(message=raw)
    key = s.Or(
        s.And((s.Text(needle), s.From(needle), s.Header("X-" + needle, needle))),
        s.Or(s.Body(needle), s.Not(s.SentOn(date(2026, 1, 1)))),
    )
    assert isinstance(check(key, candidate), bool)
    assert candidate.raw_calls <= 1


@pytest.mark.parametrize(
    ("key", "flags_only"),
    [
        (s.Unseen(), True),
        (s.Not(s.Or(s.Deleted(), s.Keyword("$Junk"))), True),
        (s.And((s.New(), s.Unflagged(), s.All())), True),
        (s.And((s.Unseen(), s.UID(SeqSet.parse("1:5")))), False),
        (s.Or(s.Seen(), s.Larger(100)), False),
        (s.Not(s.ModSeq(3)), False),
        (s.Subject("x"), False),
    ],
)
def test_reads_flags_only_names_keys_decided_by_flags_alone(
    key: s.SearchKey, flags_only: bool
) -> None:
    """Only keys over flags and \\Recent qualify for deciding once per flag set."""
    assert s.reads_flags_only(key) is flags_only
