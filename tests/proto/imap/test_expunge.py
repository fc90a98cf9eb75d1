"""EXPUNGE, UID EXPUNGE and when other sessions are told (RFC 3501 §7.4.1, spec check 36)."""

from __future__ import annotations

from twisted.internet.defer import fail

from tests.proto.imap.fakes import Client, FakeStore, message, with_messages


def _pair(count: int = 3) -> tuple[FakeStore, Client, Client]:
    store = with_messages(count)
    first, second = Client(store), Client(store)
    for client in (first, second):
        client.login()
        client.select()
    return store, first, second


def test_expunge_reports_each_message() -> None:
    """EXPUNGE lists the removed messages, numbers valid at the time of each response."""
    store, first, _ = _pair(4)
    first.send("a1 STORE 2,4 +FLAGS.SILENT (\\Deleted)")
    assert first.lines("a2 EXPUNGE") == ["* 4 EXPUNGE", "* 2 EXPUNGE", "a2 OK EXPUNGE completed"]
    assert list(store.folders["INBOX"].messages) == [1, 3]


def test_uid_expunge_limits_to_uids() -> None:
    """UID EXPUNGE removes only \\Deleted messages in the UID set (RFC 4315 §2.1)."""
    store, first, _ = _pair(3)
    first.send("a1 STORE 1:3 +FLAGS.SILENT (\\Deleted)")
    assert first.lines("a2 UID EXPUNGE 2") == ["* 2 EXPUNGE", "a2 OK EXPUNGE completed"]
    assert list(store.folders["INBOX"].messages) == [1, 3]


def test_other_session_gets_expunge_on_noop() -> None:
    """Session A expunges; session B sees EXPUNGE on its NOOP (spec check 36)."""
    _, first, second = _pair(3)
    first.send("a1 STORE 2 +FLAGS (\\Deleted)")
    first.send("a2 EXPUNGE")
    assert second.lines("b1 NOOP") == ["* 2 EXPUNGE", "b1 OK NOOP completed"]
    assert second.lines("b2 NOOP") == ["b2 OK NOOP completed"]


def test_expunge_not_sent_during_fetch() -> None:
    """During FETCH the expunged message keeps its number; EXPUNGE waits for NOOP."""
    _, first, second = _pair(3)
    first.send("a1 STORE 1 +FLAGS.SILENT (\\Deleted)")
    first.send("a2 EXPUNGE")
    lines = second.lines("b1 FETCH 1:* (UID FLAGS)")
    assert not any("EXPUNGE" in line for line in lines)
    assert lines[:3] == [
        "* 1 FETCH (UID 1 FLAGS ())",
        "* 2 FETCH (UID 2 FLAGS ())",
        "* 3 FETCH (UID 3 FLAGS ())",
    ]
    assert second.lines("b2 NOOP") == ["* 1 EXPUNGE", "b2 OK NOOP completed"]
    assert second.lines("b3 FETCH 1 UID")[0] == "* 1 FETCH (UID 2)"


def test_expunge_not_sent_during_store_or_search() -> None:
    """STORE and SEARCH hold pending EXPUNGEs back too."""
    _, first, second = _pair(3)
    first.send("a1 STORE 3 +FLAGS.SILENT (\\Deleted)")
    first.send("a2 EXPUNGE")
    assert "EXPUNGE" not in second.send("b1 SEARCH ALL")
    assert "EXPUNGE" not in second.send("b2 STORE 1 +FLAGS (\\Seen)")
    assert "* 3 EXPUNGE" in second.send("b3 CHECK")


def test_fetch_of_message_expunged_elsewhere_is_no() -> None:
    """Fetching the body of a message another session expunged gives NO [EXPUNGEISSUED]."""
    _, first, second = _pair(2)
    second.send("b0 NOOP")
    first.send("a1 STORE 2 +FLAGS.SILENT (\\Deleted)")
    first.send("a2 EXPUNGE")
    out = second.lines("b1 FETCH 1:2 BODY.PEEK[HEADER]")
    assert out[-1].startswith("b1 NO [EXPUNGEISSUED]")


def test_new_delivery_reaches_both_sessions() -> None:
    """A delivery produces '* n EXISTS' in both sessions on their next command."""
    store, first, second = _pair(2)
    store.deliver(message("fresh"))
    assert first.lines("a1 NOOP")[:2] == ["* 3 EXISTS", "* 3 RECENT"]
    assert second.lines("b1 NOOP")[:2] == ["* 3 EXISTS", "* 0 RECENT"]


def test_exists_allowed_during_fetch() -> None:
    """New messages may be announced during FETCH, before its tagged OK."""
    store, first, _ = _pair(1)
    store.deliver(message("fresh"))
    lines = first.lines("a1 FETCH 1 UID")
    assert lines == ["* 1 FETCH (UID 1)", "* 2 EXISTS", "* 2 RECENT", "a1 OK FETCH completed"]


def test_three_sessions_all_told() -> None:
    """With three sessions on one folder, a deletion reaches all the others."""
    store = with_messages(2)
    clients = [Client(store) for _ in range(3)]
    for client in clients:
        client.login()
        client.select()
    clients[0].send("a1 STORE 1 +FLAGS.SILENT (\\Deleted)")
    clients[0].send("a2 EXPUNGE")
    for client in clients[1:]:
        assert "* 1 EXPUNGE" in client.send("x NOOP")


def test_failed_refresh_is_retried() -> None:
    """If reading changes fails, the command still succeeds and the next one reports them."""
    store, _, second = _pair(2)
    selected = store.selected[-1]
    original = selected.refresh
    selected.refresh = lambda: fail(RuntimeError("database hiccup"))  # type: ignore[method-assign]  # inject a fault
    store.deliver(message("fresh"))
    assert second.lines("b1 NOOP") == ["b1 OK NOOP completed"]
    selected.refresh = original  # type: ignore[method-assign]  # heal
    assert second.lines("b2 NOOP")[0] == "* 3 EXISTS"
