"""The database handle: one engine, one thread pool, one transaction per call.

Repository functions are plain synchronous functions taking a ``Connection``.
``Database.read``/``write`` run one of them in a pool thread inside a transaction
and return a Deferred, so nothing blocks the reactor. ``run_sync`` does the same on
the calling thread for the CLI, migrations and tests.

SQLite runs in WAL mode with ``synchronous=FULL`` (a commit is on disk before it
returns) and write transactions start with ``BEGIN IMMEDIATE`` so that two writers
queue on the busy timeout instead of failing with a lock upgrade deadlock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail
from twisted.internet.interfaces import IReactorThreads
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from typing_extensions import override

P = ParamSpec("P")
T = TypeVar("T")

_WRITE = "vpop3d_write"


def make_engine(url: str, pool_size: int = 8) -> Engine:
    """Create the engine for ``url`` with vpop3d's SQLite or PostgreSQL settings."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 60},
            poolclass=NullPool if parsed.database in (None, "", ":memory:") else None,
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=3600,
    )


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: object) -> None:
        # Let SQLAlchemy's "begin" event, not pysqlite, decide when a transaction starts.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(_WRITE, True)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


class Database:
    """Engine plus the thread pool that every blocking database call runs in."""

    def __init__(
        self,
        url: str,
        reactor: IReactorThreads | None = None,
        *,
        threads: int = 8,
        engine: Engine | None = None,
    ) -> None:
        self.url = url
        self.engine = engine if engine is not None else make_engine(url, pool_size=threads)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self._reactor = reactor  # None: only the *_sync calls are available (CLI)
        self._pool = ThreadPool(minthreads=1, maxthreads=threads, name="vpop3d-db")
        # CPU-bound work (argon2 password checks) gets its own small pool, so a burst
        # of logins cannot starve message reads and deliveries of database threads.
        self._cpu_pool = ThreadPool(minthreads=1, maxthreads=2, name="vpop3d-cpu")
        self._grouped: list[_GroupedCall] = []
        self._group_running = False
        self._stopped = False

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def start(self) -> None:
        self._pool.start()
        self._cpu_pool.start()

    def stop(self) -> None:
        self._stopped = True
        self._pool.stop()
        self._cpu_pool.stop()
        self.engine.dispose()

    def run_sync(
        self,
        fn: Callable[..., T],
        *args: Any,
        **kwargs: Any,
    ) -> T:
        """Run ``fn(conn, ...)`` in one write transaction on this thread.

        (``fn`` is typed loosely: mypy's ParamSpec cannot express "a Connection first,
        then anything" for functions with keyword arguments; return types still flow.)"""
        return self._transact(True, fn, *args, **kwargs)

    def read_sync(
        self,
        fn: Callable[..., T],
        *args: Any,
        **kwargs: Any,
    ) -> T:
        """Run ``fn(conn, ...)`` in one read transaction on this thread."""
        return self._transact(False, fn, *args, **kwargs)

    def write(
        self,
        fn: Callable[..., T],
        *args: Any,
        **kwargs: Any,
    ) -> Deferred[T]:
        """Run ``fn(conn, ...)`` in a pool thread in one write transaction."""
        job = partial(self._transact, True, fn, *args, **kwargs)
        return self._submit(self._pool, job)

    def read(
        self,
        fn: Callable[..., T],
        *args: Any,
        **kwargs: Any,
    ) -> Deferred[T]:
        """Run ``fn(conn, ...)`` in a pool thread in one read-only transaction."""
        job = partial(self._transact, False, fn, *args, **kwargs)
        return self._submit(self._pool, job)

    def write_grouped(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Deferred[T]:
        """Like :meth:`write`, but calls made while a group is committing share the
        next transaction (group commit): one fsync for many deliveries.

        Each call runs in its own SAVEPOINT, so one that raises is rolled back and
        fails alone; every Deferred fires only after the shared COMMIT returned.
        """
        result: Deferred[T] = Deferred()
        self._grouped.append(_GroupedCall(fn, args, kwargs, result))
        if not self._group_running:
            self._run_group()
        return result

    def _run_group(self) -> None:
        batch, self._grouped = self._grouped, []
        self._group_running = True

        def settle(outcomes: list[tuple[bool, Any]]) -> None:
            for call, (ok, value) in zip(batch, outcomes, strict=True):
                if ok:
                    call.result.callback(value)
                else:
                    call.result.errback(value)

        def fail_all(failure: Failure) -> None:
            for call in batch:
                call.result.errback(failure)

        def next_group(_: object) -> None:
            self._group_running = False
            if self._grouped:
                self._run_group()

        self.write(_run_calls, batch).addCallbacks(settle, fail_all).addBoth(next_group)

    def call_in_pool(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Deferred[T]:
        """Run blocking non-SQL work (file reads, fsync) in the same pool."""
        return self._submit(self._pool, partial(fn, *args, **kwargs))

    def call_cpu(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Deferred[T]:
        """Run CPU-heavy work (password hashing) in the small CPU pool."""
        return self._submit(self._cpu_pool, partial(fn, *args, **kwargs))

    def _submit(self, pool: ThreadPool, job: Callable[[], T]) -> Deferred[T]:
        # Work handed to a stopped pool would never run and its Deferred never fire,
        # leaving whoever waits on it (a service being stopped) hanging: fail it now.
        if self._stopped:
            return fail(DatabaseStopped("the database has been stopped"))
        return deferToThreadPool(self._need_reactor(), pool, job)

    def _need_reactor(self) -> IReactorThreads:
        if self._reactor is None:
            raise RuntimeError("this Database has no reactor: use run_sync/read_sync")
        return self._reactor

    def _transact(
        self,
        write: bool,
        fn: Callable[..., T],
        *args: Any,
        **kwargs: Any,
    ) -> T:
        with self.engine.connect() as conn:
            conn = conn.execution_options(**{_WRITE: write})
            with conn.begin():
                return fn(conn, *args, **kwargs)


class DatabaseStopped(RuntimeError):
    """Work was submitted after the server began shutting the database down."""


@dataclass(slots=True)
class _GroupedCall:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    result: Deferred[Any]


def _run_calls(conn: Connection, batch: list[_GroupedCall]) -> list[tuple[bool, Any]]:
    outcomes: list[tuple[bool, Any]] = []
    for call in batch:
        try:
            with conn.begin_nested():
                outcomes.append((True, call.fn(conn, *call.args, **call.kwargs)))
        except Exception:  # noqa: BLE001  one caller's failure must not sink the group
            outcomes.append((False, Failure()))
    return outcomes


class DatabaseService(Service):
    """Starts the pool when the service tree starts; disposes of the engine at stop."""

    name = "database"

    def __init__(self, database: Database) -> None:
        self.database = database

    @override
    def startService(self) -> None:
        self.database.start()
        super().startService()

    @override
    def stopService(self) -> Deferred[None] | None:
        super().stopService()
        self.database.stop()
        return None
