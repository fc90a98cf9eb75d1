"""Repository behaviour on a real database (SQLite file, or PostgreSQL in CI)."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import pytest
from sqlalchemy import Connection, select

from tests.support.stack import Stack
from vpop3d.app import accounts
from vpop3d.app.mailstore import FolderTarget, store_message
from vpop3d.store import blobs, folders, leases, messages, settings
from vpop3d.store.tables import blobs as blob_table


def _deliver(stack: Stack, user_ids: list[int], body: bytes = b"Subject: hi\r\n\r\nbody\r\n"):
    spool = stack.spool(body)
    return stack.db.run_sync(
        store_message, stack.blobs, spool, [FolderTarget(uid) for uid in user_ids]
    )


def test_one_body_for_many_recipients(stack: Stack) -> None:
    """A message to 50 local users is stored once and referenced 50 times."""
    ids = [stack.add_user(f"user{i}") for i in range(50)]
    blob_id, rows = _deliver(stack, ids)
    assert len(rows) == 50
    refs = stack.db.read_sync(
        lambda c: c.execute(select(blob_table.c.refs).where(blob_table.c.id == blob_id)).scalar()
    )
    assert refs == 50
    assert len(list((stack.data_dir / "blobs").glob("*/*/*"))) == 1


def test_uids_ascend_and_never_repeat(stack: Stack) -> None:
    """UIDs in a folder increase strictly, also after expunging the newest message."""
    uid = stack.add_user("fred")
    _, first = _deliver(stack, [uid])
    _, second = _deliver(stack, [uid])
    assert second[0].uid == first[0].uid + 1
    stack.db.run_sync(messages.remove, [second[0].id])
    _, third = _deliver(stack, [uid])
    assert third[0].uid == second[0].uid + 1


def test_uidl_is_unique_and_stable(stack: Stack) -> None:
    """Each message gets its own POP3 UIDL; a moved message keeps it."""
    uid = stack.add_user("fred")
    _, a = _deliver(stack, [uid])
    _, b = _deliver(stack, [uid])
    assert a[0].uidl != b[0].uidl
    archive = stack.db.run_sync(folders.create, uid, "Archive")
    moved = stack.db.run_sync(messages.move_to, a[0].id, archive.id)
    assert moved.uidl == a[0].uidl
    assert moved.folder_id == archive.id


def test_flag_change_bumps_modseq(stack: Stack) -> None:
    """Changing flags gives the message and the folder a higher MODSEQ (RFC 7162)."""
    uid = stack.add_user("fred")
    _, rows = _deliver(stack, [uid])
    before = rows[0].modseq
    modseq = stack.db.run_sync(messages.set_flags, [rows[0].id], messages.SEEN, ["$Label1"])
    after = stack.db.read_sync(messages.by_id, rows[0].id)
    assert after is not None
    assert modseq > before
    assert after.modseq == modseq
    assert after.flags == messages.SEEN
    assert after.keywords == ("$Label1",)


def test_expunge_recorded_and_blob_released(stack: Stack) -> None:
    """Expunged UIDs are remembered with their MODSEQ and the body is swept once unused."""
    uid = stack.add_user("fred")
    blob_id, rows = _deliver(stack, [uid])
    inbox = stack.db.read_sync(folders.inbox, uid)
    stack.db.run_sync(messages.remove, [rows[0].id])
    assert stack.db.read_sync(messages.expunged_since, inbox.id, 0) == [rows[0].uid]
    keys = stack.db.run_sync(stack.blobs.sweep)
    stack.blobs.unlink(keys)
    assert not list((stack.data_dir / "blobs").glob("*/*/*"))
    gone = stack.db.read_sync(
        lambda c: c.execute(select(blob_table).where(blob_table.c.id == blob_id)).first()
    )
    assert gone is None


def test_failed_transaction_leaves_no_message(stack: Stack) -> None:
    """A transaction that fails after storing the body leaves no message row behind."""
    uid = stack.add_user("fred")
    spool = stack.spool(b"Subject: x\r\n\r\ny\r\n")

    def deliver_then_fail(conn: Connection) -> None:
        store_message(conn, stack.blobs, spool, [FolderTarget(uid)])
        raise RuntimeError("crash before commit")

    with pytest.raises(RuntimeError):
        stack.db.run_sync(deliver_then_fail)
    inbox = stack.db.read_sync(folders.inbox, uid)
    assert stack.db.read_sync(messages.in_folder, inbox.id) == []


def test_database_blob_store_round_trip(stack: Stack, tmp_path) -> None:
    """The database blob store keeps bodies in SQL and streams them back unchanged."""
    store = blobs.DatabaseBlobStore(tmp_path / "dbstore")
    body = b"x" * (blobs.CHUNK * 2 + 17)
    spool = store.new_spool()
    spool.write(body)
    uid = stack.add_user("fred")
    blob_id, _ = stack.db.run_sync(store_message, store, spool, [FolderTarget(uid)])
    assert stack.db.read_sync(blobs.read_bytes, store, blob_id) == body
    assert not list((tmp_path / "dbstore" / "tmp").iterdir())


@pytest.mark.parametrize(("kind", "fsyncs"), [("file", 2), ("database", 0)])
def test_blob_fsyncs_before_commit(
    stack: Stack, tmp_path, monkeypatch: pytest.MonkeyPatch, kind: str, fsyncs: int
) -> None:
    """A file body is fsynced with its directory; a database body waits for the COMMIT."""
    store = blobs.make_blob_store(kind, tmp_path / kind)
    spool = store.new_spool()
    spool.write(b"Subject: x\r\n\r\nbody\r\n")
    calls: list[int] = []
    real_fsync = os.fsync

    def counting(fd: int) -> None:
        calls.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting)
    store.prepare(spool)
    assert len(calls) == fsyncs
    uid = stack.add_user("fred")
    blob_id, _ = stack.db.run_sync(store_message, store, spool, [FolderTarget(uid)])
    assert stack.db.read_sync(blobs.read_bytes, store, blob_id).endswith(b"body\r\n")


def test_lease_excludes_other_owner_until_expiry(stack: Stack) -> None:
    """A lease held by one owner refuses another until it expires."""
    assert stack.db.run_sync(leases.acquire, "pop3:fred", "a", 100.0, 60.0)
    assert not stack.db.run_sync(leases.acquire, "pop3:fred", "b", 120.0, 60.0)
    assert stack.db.run_sync(leases.acquire, "pop3:fred", "b", 161.0, 60.0)


def test_settings_round_trip_json(stack: Stack) -> None:
    """Settings keep JSON types and can be overwritten."""
    stack.db.run_sync(settings.put, "smtp.max_recipients", 100)
    stack.db.run_sync(settings.put, "smtp.max_recipients", 250)
    stack.db.run_sync(settings.put, "lists.names", ["a", "b"])
    assert stack.db.read_sync(settings.get, "smtp.max_recipients") == 250
    assert stack.db.read_sync(settings.get, "lists.names") == ["a", "b"]


def test_folder_recreate_gets_new_uidvalidity(stack: Stack) -> None:
    """A folder deleted and created again has a different UIDVALIDITY (RFC 3501 §2.3.1.1)."""
    uid = stack.add_user("fred")
    first = stack.db.run_sync(folders.create, uid, "Projects")
    stack.db.run_sync(folders.remove, first.id)
    second = stack.db.run_sync(folders.create, uid, "Projects")
    assert second.uidvalidity != first.uidvalidity


def test_inbox_name_is_case_insensitive(stack: Stack) -> None:
    """'inbox' and 'INBOX' name the same folder."""
    uid = stack.add_user("fred")
    inbox = stack.db.read_sync(folders.inbox, uid)
    assert stack.db.read_sync(folders.by_name, uid, "inbox") == inbox


def test_delete_user_removes_mail_references(stack: Stack) -> None:
    """Deleting a user releases their message bodies for the sweeper."""
    uid = stack.add_user("fred")
    blob_id, _ = _deliver(stack, [uid])
    stack.db.run_sync(accounts.delete_user, "fred")
    refs = stack.db.read_sync(
        lambda c: c.execute(select(blob_table.c.refs).where(blob_table.c.id == blob_id)).scalar()
    )
    assert refs == 0


def test_orphan_files_are_found_but_fresh_ones_spared(stack: Stack) -> None:
    """A body file with no row (crash before commit) is an orphan once it is old enough."""
    import os
    import time

    uid = stack.add_user("fred")
    _deliver(stack, [uid])
    orphan = stack.blobs.path_of("ab" * 16)
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"half a message")
    assert stack.db.read_sync(stack.blobs.orphans) == []  # too fresh: maybe in flight
    old = time.time() - 7200
    os.utime(orphan, (old, old))
    for path in (stack.data_dir / "blobs").glob("*/*/*"):
        os.utime(path, (old, old))
    assert stack.db.read_sync(stack.blobs.orphans) == [orphan]


def _racing(stack: Stack, first: Any, second: Any) -> tuple[Any, Any]:
    """Run ``first`` in a transaction that stays open until ``second`` (in another
    thread, its own transaction) has started and is waiting; return both results."""
    started = threading.Event()
    result: dict[str, Any] = {}

    def other() -> None:
        started.set()
        result["second"] = stack.db.run_sync(second)

    def hold_open(conn: Connection) -> Any:
        value = first(conn)
        thread.start()
        started.wait(5)
        time.sleep(0.3)  # the other transaction now blocks on our locks
        return value

    thread = threading.Thread(target=other)
    result["first"] = stack.db.run_sync(hold_open)
    thread.join(30)
    assert not thread.is_alive()
    return result["first"], result["second"]


def test_concurrent_expunge_of_same_message_records_it_once(stack: Stack) -> None:
    """Two transactions expunging one message: one removes it, the other removes nothing."""
    uid = stack.add_user("fred")
    blob_id, rows = _deliver(stack, [uid])
    copy = stack.db.run_sync(messages.copy_to, rows[0].id, rows[0].folder_id)
    ids = [rows[0].id, copy.id]
    first, second = _racing(
        stack, lambda c: messages.remove(c, ids), lambda c: messages.remove(c, ids)
    )
    assert sorted(first) == sorted((rows[0].folder_id, m) for m in (rows[0].uid, copy.uid))
    assert second == []
    inbox = stack.db.read_sync(folders.inbox, uid)
    assert sorted(stack.db.read_sync(messages.expunged_since, inbox.id, 0)) == sorted(
        [rows[0].uid, copy.uid]
    )
    refs = stack.db.read_sync(
        lambda c: c.execute(select(blob_table.c.refs).where(blob_table.c.id == blob_id)).scalar()
    )
    assert refs == 0


def test_concurrent_ensure_of_one_folder_gives_one_folder(stack: Stack) -> None:
    """Two first logins creating the same folder at once both get the one folder."""
    uid = stack.add_user("fred")
    first, second = _racing(
        stack,
        lambda c: folders.ensure(c, uid, "Projects"),
        lambda c: folders.ensure(c, uid, "Projects"),
    )
    assert first.id == second.id
    names = [f.name for f in stack.db.read_sync(folders.list_for_user, uid)]
    assert names.count("Projects") == 1


def test_inserted_message_equals_its_stored_row(stack: Stack) -> None:
    """insert_message returns exactly what a later read of the row gives (no re-read)."""
    uid = stack.add_user("fred")
    blob_id, rows = _deliver(stack, [uid])
    inbox = stack.db.read_sync(folders.inbox, uid)
    made = stack.db.run_sync(
        messages.insert_message,
        inbox.id,
        blob_id,
        42,
        internal_date=1_700_000_000,
        flags=messages.SEEN,
        keywords=["$Label1", "Work"],
        envelope_from="a@example.test",
        envelope_to=["b@example.test", "c@example.test"],
        summary='{"x": 1}',
    )
    assert made == stack.db.read_sync(messages.by_id, made.id)
    plain = stack.db.run_sync(messages.insert_message, inbox.id, blob_id, 7)
    assert plain == stack.db.read_sync(messages.by_id, plain.id)
    assert rows[0] == stack.db.read_sync(messages.by_id, rows[0].id)
