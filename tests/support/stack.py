"""An in-process vpop3d stack (database, blob store, settings, auth) for app/store tests.

``Stack.db.run_sync(fn, ...)`` runs repository functions synchronously; tests that
need Deferreds from ``Stack.db.read/write`` use pytest-twisted's reactor.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from vpop3d.app import accounts
from vpop3d.app.auth import PLAINTEXT_EQUIVALENT, AccountAuthenticator
from vpop3d.app.bootstrap import first_run
from vpop3d.app.notify import ChangeBus
from vpop3d.app.passwords import StoredSecrets, secrets_for
from vpop3d.app.settings import Settings
from vpop3d.config import defaults
from vpop3d.context import ServerContext
from vpop3d.store import folders, users
from vpop3d.store import settings as settings_repo
from vpop3d.store.blobs import FileBlobStore, Spool, make_blob_store
from vpop3d.store.db import Database
from vpop3d.store.rows import User


@dataclass
class Stack:
    data_dir: Path
    db: Database
    blobs: FileBlobStore | Any
    settings: Settings
    bus: ChangeBus
    auth: AccountAuthenticator

    def add_user(self, name: str, password: str = "secret", **fields: Any) -> int:
        """Add a user; the stored secrets for a password are derived once per test run
        (argon2 is deliberately slow, and the suite adds hundreds of users)."""
        return self.db.run_sync(add_user_fast, name, password, **fields).id

    def add_domain(self, name: str) -> None:
        self.db.run_sync(accounts.add_domain, name)

    def put_setting(self, key: str, value: Any) -> None:
        from vpop3d.store import settings as repo

        self.db.run_sync(repo.put, key, value)
        self.settings.load_sync()

    def server_context(self, reactor: Any, hostname: str, tls: Any = None) -> ServerContext:
        """A real ``ServerContext`` over this stack, for building listeners in-process."""
        return ServerContext(
            config=defaults(self.data_dir, hostname),
            reactor=reactor,
            database=self.db,
            settings=self.settings,
            blob_store=self.blobs,
            bus=self.bus,
            authenticator=self.auth,
            tls=tls,
        )

    def spool(self, data: bytes) -> Spool:
        spool = self.blobs.new_spool()
        spool.write(data)
        return spool


@functools.cache
def _secrets(password: str) -> StoredSecrets:
    return secrets_for(password, keep_plain=True)


def add_user_fast(conn: Connection, name: str, password: str = "secret", **fields: Any) -> User:
    """``accounts.add_user`` with cached password derivation (tests only)."""
    stored = _secrets(password)
    keep_plain = bool(settings_repo.get(conn, PLAINTEXT_EQUIVALENT, False))
    user = users.add(
        conn,
        name,
        stored.password_hash,
        scram_sha256=stored.scram_sha256,
        plain_secret=stored.plain_secret if keep_plain else None,
        **fields,
    )
    folders.inbox(conn, user.id)
    return user


def make_stack(data_dir: Path, url: str, reactor: Any = None, blob_store: str = "file") -> Stack:
    db = Database(url, reactor)
    db.run_sync(first_run, "mail.example.test")
    settings = Settings(db)
    settings.load_sync()
    return Stack(
        data_dir=data_dir,
        db=db,
        blobs=make_blob_store(blob_store, data_dir),
        settings=settings,
        bus=ChangeBus(),
        auth=AccountAuthenticator(db, settings),
    )
