"""Randomized two-session consistency: every untagged response is checked against a model.

Session A and delivery change the folder at random; session B applies each untagged
EXISTS/EXPUNGE/FETCH to its own model of the mailbox (what a client does). After
every B command its model must match what B's UID FETCH reports, and after a NOOP
it must match the store exactly.
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.proto.imap.fakes import Client, message, with_messages

_UNTAGGED = re.compile(r"\* (\d+) (EXISTS|EXPUNGE|RECENT|FETCH) ?(.*)")
_UID = re.compile(r"UID (\d+)")
_FLAGS = re.compile(r"FLAGS \(([^)]*)\)")


class Model:
    """A client's idea of the mailbox, fed only by server responses."""

    def __init__(self, uids: list[int]) -> None:
        self.uids: list[int | None] = list(uids)
        self.flags: dict[int, set[str]] = {}

    def apply(self, output: str, in_fetch_store_search: bool) -> None:
        for line in output.split("\r\n"):
            match = _UNTAGGED.match(line)
            if match is None:
                continue
            number, kind, rest = int(match.group(1)), match.group(2), match.group(3)
            if kind == "EXPUNGE":
                assert not in_fetch_store_search, "EXPUNGE during FETCH/STORE/SEARCH"
                assert 1 <= number <= len(self.uids)
                del self.uids[number - 1]
            elif kind == "EXISTS":
                assert number >= len(self.uids), "EXISTS may not shrink the mailbox"
                self.uids.extend([None] * (number - len(self.uids)))
            elif kind == "FETCH":
                assert 1 <= number <= len(self.uids)
                uid = _UID.search(rest)
                if uid is not None:
                    known = self.uids[number - 1]
                    assert known is None or known == int(uid.group(1))
                    self.uids[number - 1] = int(uid.group(1))
                flags = _FLAGS.search(rest)
                if flags is not None and self.uids[number - 1] is not None:
                    found = self.uids[number - 1]
                    assert found is not None
                    self.flags[found] = set(flags.group(1).split()) - {"\\Recent"}


actions = st.lists(
    st.one_of(
        st.tuples(st.just("deliver"), st.integers(0, 0)),
        st.tuples(st.just("flag"), st.integers(1, 8)),
        st.tuples(st.just("delete"), st.integers(1, 8)),
        st.tuples(st.just("expunge"), st.integers(0, 0)),
        st.tuples(st.just("move"), st.integers(1, 8)),
        st.tuples(st.just("b_fetch"), st.integers(0, 0)),
        st.tuples(st.just("b_store"), st.integers(1, 8)),
        st.tuples(st.just("b_search"), st.integers(0, 0)),
        st.tuples(st.just("b_noop"), st.integers(0, 0)),
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(actions)
def test_two_sessions_stay_consistent(steps: list[tuple[str, int]]) -> None:
    """B's model built from untagged responses always agrees with the server."""
    store = with_messages(4)
    a, b = Client(store), Client(store)
    for client in (a, b):
        client.login()
        client.select()
    model = Model([1, 2, 3, 4])
    a_count = 4
    for action, n in steps:
        if action == "deliver":
            store.deliver(message("new"))
        elif action in ("flag", "delete", "move") and a_count:
            number = (n - 1) % a_count + 1
            if action == "move":
                out = a.send(f"a MOVE {number} Trash")
                a_count -= out.count(" EXPUNGE\r\n")
            else:
                flag = "\\Flagged" if action == "flag" else "\\Deleted"
                a.send(f"a STORE {number} +FLAGS ({flag})")
        elif action == "expunge":
            out = a.send("a EXPUNGE")
            a_count -= out.count(" EXPUNGE\r\n")
        elif action == "b_fetch" and model.uids:
            model.apply(b.send("b FETCH 1:* (UID FLAGS)"), in_fetch_store_search=True)
        elif action == "b_store" and model.uids:
            number = (n - 1) % len(model.uids) + 1
            model.apply(b.send(f"b STORE {number} +FLAGS (\\Seen)"), in_fetch_store_search=True)
        elif action == "b_search":
            model.apply(b.send("b SEARCH ALL"), in_fetch_store_search=True)
        elif action == "b_noop":
            model.apply(b.send("b NOOP"), in_fetch_store_search=False)
        exists = a.send("a NOOP")
        a_count = _count_after(a_count, exists)
    model.apply(b.send("b NOOP"), in_fetch_store_search=False)
    final = b.send("b UID FETCH 1:* (FLAGS)") if model.uids else ""
    model.apply(final, in_fetch_store_search=False)
    inbox = store.folders["INBOX"].messages
    assert model.uids == sorted(inbox)
    for uid in model.uids:
        assert uid is not None
        assert model.flags[uid] == set(inbox[uid].flags)


def _count_after(count: int, output: str) -> int:
    for line in output.split("\r\n"):
        match = _UNTAGGED.match(line)
        if match and match.group(2) == "EXISTS":
            count = int(match.group(1))
        elif match and match.group(2) == "EXPUNGE":
            count -= 1
    return count
