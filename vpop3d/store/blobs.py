"""Message bodies: written once, fsynced, shared by every folder that holds the message.

A body arrives through a :class:`Spool` (a temp file under ``data_dir/tmp``). When
the message is accepted, :meth:`BlobStore.commit` runs *inside* the database
transaction that records the message: the file store renames the fsynced temp file
to ``data_dir/blobs/<k[:2]>/<k[2:4]>/<key>`` and fsyncs the directory; the database
store copies the bytes into ``blob_chunks``. Either way the ``blobs`` row and the
bytes become visible in the same commit, so a crash leaves at worst an unreferenced
file, which :meth:`BlobStore.sweep` removes.

Reference counts live in ``blobs.refs``; rows at zero are deleted, and their files
unlinked, by the sweeper after the deleting transaction committed.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import time
from pathlib import Path
from typing import BinaryIO, Protocol

from sqlalchemy import Connection, delete, insert, select, update

from vpop3d.store.tables import blob_chunks, blobs

CHUNK = 256 * 1024


class Spool:
    """A body being received into a temp file; :meth:`finish` makes it durable."""

    def __init__(self, tmp_dir: Path) -> None:
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="spool-", dir=tmp_dir)
        self.path = Path(name)
        self._file: BinaryIO | None = os.fdopen(fd, "w+b")
        self._size = 0
        self.finished = False
        self.key: str | None = None  # set once the file is in its final place

    @property
    def size(self) -> int:
        return self._size

    def write(self, data: bytes) -> None:
        if self._file is None:
            raise ValueError("spool is closed")
        self._file.write(data)
        self._size += len(data)

    def finish(self, durable: bool = True) -> None:
        """Flush and fsync the temp file (blocking: call it in a pool thread).

        ``durable=False`` only flushes: for bytes that are about to be copied into the
        database, whose COMMIT is what makes them durable.
        """
        if self._file is not None:
            self._file.flush()
            if durable:
                os.fsync(self._file.fileno())
            self._file.close()
            self._file = None
        self.finished = True

    def open(self) -> BinaryIO:
        """Read the spooled bytes back (after :meth:`finish`)."""
        return open(self.path, "rb")

    def read_all(self) -> bytes:
        with self.open() as handle:
            return handle.read()

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self.path.unlink(missing_ok=True)


class BlobStore(Protocol):
    """Where message bytes live; the ``blobs`` table is shared by both kinds."""

    location: str

    def new_spool(self) -> Spool: ...

    def prepare(self, spool: Spool) -> None:
        """Make the bytes durable before the transaction (blocking; fsync)."""

    def commit(self, conn: Connection, spool: Spool, refs: int = 1) -> int:
        """Record ``spool`` as a blob holding ``refs`` references, in ``conn``'s
        transaction (so no sweeper ever sees it unreferenced); return its id."""

    def open(self, conn: Connection, blob_id: int) -> BinaryIO:
        """A readable stream of the blob (blocking)."""

    def sweep(self, conn: Connection) -> list[str]:
        """Delete unreferenced blob rows; return file keys to unlink after commit."""

    def unlink(self, keys: list[str]) -> None: ...


def add_ref(conn: Connection, blob_id: int, count: int = 1) -> None:
    conn.execute(update(blobs).where(blobs.c.id == blob_id).values(refs=blobs.c.refs + count))


def drop_ref(conn: Connection, blob_id: int, count: int = 1) -> None:
    conn.execute(update(blobs).where(blobs.c.id == blob_id).values(refs=blobs.c.refs - count))


def _insert_row(conn: Connection, key: str, size: int, location: str, refs: int) -> int:
    result = conn.execute(
        insert(blobs).values(
            key=key, size=size, refs=refs, location=location, created_at=time.time()
        )
    )
    pk = result.inserted_primary_key
    assert pk is not None
    return int(pk[0])


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileBlobStore:
    """Bodies as files under ``root/blobs``; the default for a single host."""

    location = "file"

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "blobs"
        self.tmp = data_dir / "tmp"
        self.root.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)

    def path_of(self, key: str) -> Path:
        return self.root / key[:2] / key[2:4] / key

    def new_spool(self) -> Spool:
        return Spool(self.tmp)

    def prepare(self, spool: Spool) -> None:
        """fsync the body, rename it to its final name and fsync the directory.

        Done before the database transaction, so concurrent deliveries fsync in
        parallel instead of queueing behind the database write lock. A crash before
        the commit leaves an orphan file that the start-up sweep removes.
        """
        if spool.key is not None:
            return
        if not spool.finished:
            spool.finish()
        key = secrets.token_hex(16)
        target = self.path_of(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(spool.path, target)
        _fsync_dir(target.parent)
        spool.path = target  # discard() now removes the placed file
        spool.key = key

    def commit(self, conn: Connection, spool: Spool, refs: int = 1) -> int:
        self.prepare(spool)
        assert spool.key is not None
        return _insert_row(conn, spool.key, spool.size, self.location, refs)

    def open(self, conn: Connection, blob_id: int) -> BinaryIO:
        row = conn.execute(select(blobs.c.key, blobs.c.location).where(blobs.c.id == blob_id)).one()
        if row.location == "db":
            return DatabaseBlobStore.read_chunks(conn, blob_id)
        return open(self.path_of(row.key), "rb")

    def sweep(self, conn: Connection) -> list[str]:
        rows = conn.execute(
            select(blobs.c.id, blobs.c.key, blobs.c.location).where(blobs.c.refs <= 0)
        ).all()
        if rows:
            conn.execute(delete(blobs).where(blobs.c.id.in_([r.id for r in rows])))
        return [r.key for r in rows if r.location == "file"]

    def unlink(self, keys: list[str]) -> None:
        for key in keys:
            self.path_of(key).unlink(missing_ok=True)

    def orphans(self, conn: Connection, older_than: float = 3600.0) -> list[Path]:
        """Files with no ``blobs`` row: a crash between the rename and the commit left them.

        Only files older than ``older_than`` seconds count, so a delivery in flight
        (renamed, not yet committed) is never taken for one.
        """
        cutoff = time.time() - older_than
        candidates = {p.name: p for p in self.root.glob("*/*/*") if p.stat().st_mtime < cutoff}
        names = list(candidates)
        for start in range(0, len(names), 500):
            batch = names[start : start + 500]
            for (key,) in conn.execute(select(blobs.c.key).where(blobs.c.key.in_(batch))):
                candidates.pop(key, None)
        return list(candidates.values())


class DatabaseBlobStore:
    """Bodies inside the SQL database, so hosts sharing PostgreSQL share the mail."""

    location = "db"

    def __init__(self, data_dir: Path) -> None:
        self.tmp = data_dir / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)

    def new_spool(self) -> Spool:
        return Spool(self.tmp)

    def prepare(self, spool: Spool) -> None:
        if not spool.finished:
            spool.finish(durable=False)  # the bytes become durable with the COMMIT

    def commit(self, conn: Connection, spool: Spool, refs: int = 1) -> int:
        self.prepare(spool)
        blob_id = _insert_row(conn, secrets.token_hex(16), spool.size, self.location, refs)
        with spool.open() as source:
            seq = 0
            while chunk := source.read(CHUNK):
                conn.execute(insert(blob_chunks).values(blob_id=blob_id, seq=seq, data=chunk))
                seq += 1
        spool.discard()
        return blob_id

    @staticmethod
    def read_chunks(conn: Connection, blob_id: int) -> BinaryIO:
        out = tempfile.SpooledTemporaryFile(max_size=4 * CHUNK)  # noqa: SIM115  returned
        for (data,) in conn.execute(
            select(blob_chunks.c.data)
            .where(blob_chunks.c.blob_id == blob_id)
            .order_by(blob_chunks.c.seq)
        ):
            out.write(data)
        out.seek(0)
        return out  # type: ignore[return-value]  # SpooledTemporaryFile is a binary file

    def open(self, conn: Connection, blob_id: int) -> BinaryIO:
        return self.read_chunks(conn, blob_id)

    def sweep(self, conn: Connection) -> list[str]:
        ids = [r.id for r in conn.execute(select(blobs.c.id).where(blobs.c.refs <= 0))]
        if ids:
            conn.execute(delete(blob_chunks).where(blob_chunks.c.blob_id.in_(ids)))
            conn.execute(delete(blobs).where(blobs.c.id.in_(ids)))
        return []

    def unlink(self, keys: list[str]) -> None:
        return None


def make_blob_store(kind: str, data_dir: Path) -> FileBlobStore | DatabaseBlobStore:
    return FileBlobStore(data_dir) if kind == "file" else DatabaseBlobStore(data_dir)


def read_bytes(conn: Connection, store: BlobStore, blob_id: int) -> bytes:
    """The whole body (small messages, tests); streaming callers use ``open``."""
    with store.open(conn, blob_id) as handle:
        return handle.read()


__all__ = [
    "BlobStore",
    "DatabaseBlobStore",
    "FileBlobStore",
    "Spool",
    "add_ref",
    "drop_ref",
    "make_blob_store",
    "read_bytes",
]
