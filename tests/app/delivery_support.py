"""Synchronous helpers for routing/delivery/access tests over a real SQLite store.

``SyncDatabase`` runs ``read``/``write``/``call_in_pool`` on the calling thread and
returns fired Deferreds, so coroutine use cases complete inside the call and tests
stay synchronous (no reactor), while every query hits the real database.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from tests.support.stack import Stack
from vpop3d.app.access import AccessControl
from vpop3d.app.delivery import Delivery
from vpop3d.app.routing import Router
from vpop3d.core.netrule import NetworkFacts
from vpop3d.ports import (
    Envelope,
    EnvelopeParams,
    MailboxChanged,
    Principal,
    RecipientParams,
    SMTPContext,
)
from vpop3d.store.db import Database

P = ParamSpec("P")
T = TypeVar("T")

LAN_IP = "192.168.66.20"
INTERNET_IP = "203.0.113.9"
ROUTER_IP = "192.168.66.1"
FACTS = NetworkFacts.of(["192.168.66.1"], ["192.168.66.0/24", "127.0.0.0/8"])


class SyncDatabase(Database):
    """The stack's engine, with every call run synchronously."""

    def __init__(self, inner: Database) -> None:
        super().__init__(inner.url, None, engine=inner.engine)

    def write(
        self,
        fn: Callable[Concatenate[Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> Deferred[T]:
        try:
            return succeed(self.run_sync(fn, *args, **kwargs))
        except Exception:  # noqa: BLE001  carried in the Deferred like the real pool
            return fail(Failure())

    def read(
        self,
        fn: Callable[Concatenate[Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> Deferred[T]:
        try:
            return succeed(self.read_sync(fn, *args, **kwargs))
        except Exception:  # noqa: BLE001  carried in the Deferred like the real pool
            return fail(Failure())

    def call_in_pool(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Deferred[T]:
        try:
            return succeed(fn(*args, **kwargs))
        except Exception:  # noqa: BLE001  carried in the Deferred like the real pool
            return fail(Failure())


def result(deferred: Deferred[T]) -> T:
    """The result of an already-fired Deferred, raising its failure."""
    box: list[T] = []
    errors: list[Failure] = []
    deferred.addCallbacks(box.append, errors.append)
    if errors:
        errors[0].raiseException()
    assert box, "Deferred did not fire synchronously"
    return box[0]


@dataclass
class RecordingNotifier:
    events: list[MailboxChanged] = field(default_factory=list)

    def subscribe(self, folder_id: int, listener: Callable[[MailboxChanged], None]) -> Any:
        return lambda: None

    def publish(self, event: MailboxChanged) -> None:
        self.events.append(event)


@dataclass
class World:
    """A delivery agent and its collaborators on one test database."""

    stack: Stack
    db: SyncDatabase
    clock: Clock
    router: Router
    access: AccessControl
    notifier: RecordingNotifier
    delivery: Delivery
    kicks: list[int]

    def put(self, key: str, value: Any) -> None:
        self.stack.put_setting(key, value)
        self.router.invalidate()

    def context(
        self,
        ip: str = INTERNET_IP,
        *,
        user: str | None = None,
        listener: str = "smtp",
        secure: bool = False,
    ) -> SMTPContext:
        principal = None
        if user is not None:
            principal = Principal(1, user, False, f"{user}@example.test")
        return SMTPContext(listener, ip, "client.example.net", secure, principal)


@dataclass
class FakeLists:
    """Lists by name → member entries, standing in for the lists feature."""

    lists: dict[str, list[str]] = field(default_factory=dict)

    def names(self, conn: Connection) -> list[str]:
        return list(self.lists)

    def members(self, name: str) -> Deferred[Sequence[str]]:
        return succeed(self.lists.get(name, []))


def make_world(stack: Stack, lists: FakeLists | None = None) -> World:
    db = SyncDatabase(stack.db)
    clock = Clock()
    clock.advance(1_800_000_000)
    router = Router(
        db,
        clock,
        setting=stack.settings.get_bool,
        settings=stack.settings,
        list_names=lists.names if lists is not None else None,
        ttl=0.0,
    )
    access = AccessControl(stack.settings, clock, facts=FACTS)
    notifier = RecordingNotifier()
    kicks: list[int] = []
    counter = iter(range(1, 1_000_000))
    delivery = Delivery(
        db,
        stack.blobs,
        router,
        access,
        notifier,
        stack.settings,
        clock=clock,
        hostname="mx.example.test",
        tmp_dir=stack.data_dir / "tmp",
        queue_kick=lambda: kicks.append(1),
        new_id=lambda: f"Q{next(counter)}",
        lists=lists,
    )
    return World(stack, db, clock, router, access, notifier, delivery, kicks)


def envelope(sender: str, *recipients: str, smtputf8: bool = False) -> Envelope:
    return Envelope(
        sender,
        EnvelopeParams(smtputf8=smtputf8),
        [(r, RecipientParams()) for r in recipients],
    )
