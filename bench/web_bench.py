"""Render time of each main admin page on a store with many users (issue 9: < 200 ms
on 10,000 users).

Builds a temp SQLite store with N users (a tenth of them with two Inbox messages),
serves the web admin on a loopback port, logs in, and prints the median and worst
time of R requests per page, measured at the client.

    python bench/web_bench.py [users] [repeats]
"""

from __future__ import annotations

import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import treq
from sqlalchemy import insert
from twisted.internet import defer, task
from twisted.internet import reactor as _reactor

from vpop3d.app.auth import AccountAuthenticator
from vpop3d.app.bootstrap import first_run
from vpop3d.app.mailstore import FolderTarget, store_message
from vpop3d.app.notify import ChangeBus
from vpop3d.app.passwords import hash_password
from vpop3d.app.settings import Settings
from vpop3d.config import defaults
from vpop3d.context import ServerContext
from vpop3d.store import folders, users
from vpop3d.store import settings as settings_repo
from vpop3d.store.blobs import FileBlobStore
from vpop3d.store.db import Database, make_engine
from vpop3d.store.tables import metadata
from vpop3d.store.tables import users as users_table
from webadmin.site import make_site

PAGES = (
    "/admin/index.html",
    "/admin/users.html",
    "/admin/users.html?sort=size&dir=desc",
    "/admin/users.html?name=user9&messages=%3E0",
    "/admin/users.html?offset=9900",
    "/admin/groups.html",
    "/admin/mappings.html",
    "/admin/localmail.html",
    "/admin/services.html",
    "/admin/queue.html",
    "/admin/access.html?service=smtp",
    "/admin/sessions.html",
    "/admin/users/import.html",
    "/admin/users/user00010/edit.html",
    "/api/v1/users?sort=messages&dir=desc&limit=100",
)


def populate(db: Database, blobs: FileBlobStore, count: int) -> None:
    stored = hash_password("benchpass1")
    now = time.time()

    def add(conn: object) -> None:
        rows = [
            {
                "name": f"user{i:05d}",
                "password_hash": stored,
                "real_name": f"User {i}",
                "created_at": now,
            }
            for i in range(count)
        ]
        conn.execute(insert(users_table), rows)  # type: ignore[attr-defined]

    db.run_sync(add)
    for i in range(0, count, 10):
        user = db.read_sync(users.by_name, f"user{i:05d}")
        assert user is not None
        db.run_sync(folders.inbox, user.id)
        for _ in range(2):
            spool = blobs.new_spool()
            spool.write(b"Subject: bench\r\n\r\n" + b"x" * 2000)
            db.run_sync(store_message, blobs, spool, [FolderTarget(user.id)])


async def measure(port: int, repeats: int) -> None:
    base = f"http://127.0.0.1:{port}"
    cookies: dict[str, str] = {}
    page = await treq.get(base + "/admin/index.html", cookies=cookies)
    cookies.update({c.name: c.value or "" for c in page.cookies()})
    token = re.search(r'name="token" value="([^"]+)"', await page.text())
    assert token
    login = await treq.post(
        base + "/admin/login",
        data={"username": "postmaster", "password": "admin", "token": token.group(1)},
        cookies=cookies,
        allow_redirects=False,
    )
    cookies.update({c.name: c.value or "" for c in login.cookies()})
    print(f"{'page':50} {'median ms':>10} {'max ms':>8}")
    for path in PAGES:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            response = await treq.get(base + path, cookies=cookies, allow_redirects=False)
            await response.content()
            times.append((time.perf_counter() - start) * 1000)
            assert response.code == 200, (path, response.code)
        print(f"{path:50} {statistics.median(times):10.1f} {max(times):8.1f}")


async def run(count: int, repeats: int, base: Path) -> None:
    reactor: Any = _reactor  # the installed reactor: threads, TCP and time
    url = f"sqlite:///{base / 'bench.sqlite3'}"
    engine = make_engine(url)
    metadata.create_all(engine)
    db = Database(url, reactor, engine=engine, threads=4)
    db.start()
    db.run_sync(first_run, "mail.example.test")
    user = db.read_sync(users.by_name, "postmaster")
    assert user is not None
    db.run_sync(users.update_fields, user.id, must_change_password=False)
    db.run_sync(settings_repo.put, "wizard.dont_ask", True)
    blobs = FileBlobStore(base / "data")
    started = time.perf_counter()
    populate(db, blobs, count)
    print(f"{count} users stored in {time.perf_counter() - started:.1f} s")
    settings = Settings(db)
    settings.load_sync()
    context = ServerContext(
        config=defaults(base / "data"),
        reactor=reactor,
        database=db,
        settings=settings,
        blob_store=blobs,
        bus=ChangeBus(),
        authenticator=AccountAuthenticator(db, settings),
        tls=None,
    )
    listening = reactor.listenTCP(0, make_site(context), interface="127.0.0.1")
    try:
        await measure(listening.getHost().port, repeats)
    finally:
        await defer.maybeDeferred(listening.stopListening)
        db.stop()


def main(argv: list[str]) -> None:
    count = int(argv[1]) if len(argv) > 1 else 10_000
    repeats = int(argv[2]) if len(argv) > 2 else 10
    with tempfile.TemporaryDirectory() as tmp:
        task.react(lambda _r: defer.Deferred.fromCoroutine(run(count, repeats, Path(tmp))))


if __name__ == "__main__":
    main(sys.argv)
