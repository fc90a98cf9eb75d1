"""RFC 5256 threading: vpop3d.core.imapthread."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from vpop3d.core.imapthread import (
    Thread,
    ThreadMessage,
    format_threads,
    thread_orderedsubject,
    thread_references,
)
from vpop3d.core.mime import analyse

BASE = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def msg(
    id_: int,
    subject: str = "topic",
    *,
    refs: tuple[str, ...] = (),
    mid: str | None = None,
    minutes: int | None = None,
    reply: bool = False,
) -> ThreadMessage:
    """A message whose Message-ID defaults to m<id> and whose date defaults to id minutes."""
    return ThreadMessage(
        id=id_,
        date=BASE + timedelta(minutes=id_ if minutes is None else minutes),
        subject_base=subject,
        subject_reply=reply,
        message_id=f"m{id_}" if mid is None else mid,
        references=refs,
    )


def wire(threads: list[Thread]) -> bytes:
    return format_threads(threads)


def test_format_rfc5256_example():
    """format_threads renders the RFC 5256 §4 example response."""
    threads = [
        Thread(2),
        Thread(
            3,
            (
                Thread(
                    6,
                    (Thread(4, (Thread(23),)), Thread(44, (Thread(7, (Thread(96),)),))),
                ),
            ),
        ),
    ]
    assert wire(threads) == b"(2)(3 6 (4 23)(44 7 96))"
    assert wire([Thread(None, (Thread(3), Thread(5)))]) == b"((3)(5))"
    assert wire([]) == b""


def test_orderedsubject_groups_by_base_subject():
    """ORDEREDSUBJECT: first message is the parent, the rest its children, threads by date."""
    messages = [
        msg(1, "beta", minutes=5),
        msg(2, "Alpha", minutes=1),
        msg(3, "alpha", minutes=3),
        msg(4, "gamma", minutes=2),
        msg(5, "ALPHA", minutes=4),
        msg(6, "gamma", minutes=9),
    ]
    assert wire(thread_orderedsubject(messages)) == b"(2 (3)(5))(4 6)(1)"


def test_references_parent_child_chain():
    """References build parent/child links; siblings sort by date."""
    messages = [
        msg(1),
        msg(2, refs=("m1",)),
        msg(3, refs=("m1", "m2")),
        msg(4, refs=("m1",), minutes=1),
    ]
    # 4 is dated like 1: it sorts before 2 among 1's children, ties by id
    assert wire(thread_references(messages)) == b"(1 (4)(2 3))"


def test_references_order_independent():
    """A reply seen before its parent still threads under it."""
    messages = [msg(3, refs=("m1", "m2")), msg(2, refs=("m1",)), msg(1)]
    assert wire(thread_references(messages)) == b"(1 2 3)"


def test_dummy_parent_kept_at_root_and_promoted_below():
    """A missing parent with two children stays as a dummy at the root; with one child
    it is dropped; inside a thread its children are spliced up (RFC 5256 step 4)."""
    root_dummy = [msg(2, refs=("gone",)), msg(3, refs=("gone",))]
    assert wire(thread_references(root_dummy)) == b"((2)(3))"
    single = [msg(2, refs=("gone",))]
    assert wire(thread_references(single)) == b"(2)"
    inner = [msg(1), msg(2, refs=("m1", "gone")), msg(3, refs=("m1", "gone"))]
    assert wire(thread_references(inner)) == b"(1 (2)(3))"


def test_subject_merging():
    """Roots sharing a base subject merge: replies go under the original, otherwise a
    dummy holds both (RFC 5256 step 5)."""
    reply = [msg(1, "hello"), msg(2, "hello", reply=True)]
    assert wire(thread_references(reply)) == b"(1 2)"
    peers = [msg(1, "hello"), msg(2, "hello"), msg(3, "other")]
    assert wire(thread_references(peers)) == b"((1)(2))(3)"
    reply_first = [msg(1, "hello", reply=True), msg(2, "hello")]
    assert wire(thread_references(reply_first)) == b"(2 1)"
    empty = [msg(1, ""), msg(2, "")]
    assert wire(thread_references(empty)) == b"(1)(2)"


def test_threads_sorted_by_date():
    """Top-level threads come out in sent-date order, a dummy by its first child."""
    messages = [
        msg(1, "a", minutes=50),
        msg(2, "b", refs=("x",), minutes=30),
        msg(3, "b", refs=("x",), minutes=40),
        msg(4, "c", minutes=10),
    ]
    assert wire(thread_references(messages)) == b"(4)((2)(3))(1)"


def test_loops_and_duplicates_survive():
    """Reference loops are refused and duplicate Message-IDs become separate messages."""
    looped = [msg(1, "a", refs=("m2",)), msg(2, "b", refs=("m1",))]
    assert sorted(_ids(thread_references(looped))) == [1, 2]
    duplicate = [msg(1, "a", mid="same"), msg(2, "b", mid="same"), msg(3, "c", refs=("same",))]
    assert sorted(_ids(thread_references(duplicate))) == [1, 2, 3]
    self_ref = [msg(1, refs=("m1",))]
    assert wire(thread_references(self_ref)) == b"(1)"


def test_from_summary_uses_internal_date_without_date_header():
    """ThreadMessage.from_summary falls back to the internal date (RFC 5256 §2.2)."""
    summary = analyse(b"Subject: Re: hi\r\nMessage-ID: <a@b>\r\nIn-Reply-To: <p@b>\r\n\r\nx\r\n")
    item = ThreadMessage.from_summary(7, summary, BASE)
    assert item == ThreadMessage(7, BASE, "hi", True, "a@b", ("p@b",))


def _ids(threads: list[Thread] | tuple[Thread, ...]) -> list[int]:
    out: list[int] = []
    for node in threads:
        if node.id is not None:
            out.append(node.id)
        out.extend(_ids(node.children))
    return out


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["m1", "m2", "m3", "m4", ""]),
            st.lists(st.sampled_from(["m1", "m2", "m3", "m4", "m5"]), max_size=4),
            st.sampled_from(["a", "b", ""]),
            st.booleans(),
            st.integers(0, 5),
        ),
        max_size=12,
    )
)
def test_every_message_appears_once(rows):
    """Whatever the reference graph, each message appears exactly once in each algorithm."""
    messages = [
        msg(index + 1, subject, refs=tuple(refs), mid=mid, minutes=minutes, reply=reply)
        for index, (mid, refs, subject, reply, minutes) in enumerate(rows)
    ]
    expected = list(range(1, len(messages) + 1))
    assert sorted(_ids(thread_references(messages))) == expected
    assert sorted(_ids(thread_orderedsubject(messages))) == expected
    format_threads(thread_references(messages))


def test_deep_reply_chain_does_not_recurse():
    """A reply chain far deeper than Python's recursion limit threads and formats."""
    depth = 3000
    messages = [msg(1)] + [msg(n, refs=(f"m{n - 1}",)) for n in range(2, depth + 1)]
    threads = thread_references(messages)
    assert len(threads) == 1
    assert format_threads(threads) == ("(" + " ".join(map(str, range(1, depth + 1))) + ")").encode()
