"""Runs Mail Collectors on the Connector Schedule and on "collect now" requests
from other processes (the CLI), seed-3 §17."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from typing_extensions import override

from vpop3d.app import connectors
from vpop3d.app.collectorconfig import RunResult
from vpop3d.app.collectors import COLLECT_NOW, CollectorRunner
from vpop3d.core.schedule import due_connections
from vpop3d.store import collectors as repo
from vpop3d.store.db import Database

__all__ = ["REQUEST_POLL_SECONDS", "CollectorService"]

REQUEST_POLL_SECONDS = 5.0


class CollectorService(Service):
    """Runs collectors when the Connector Schedule fires their Connections (seed-3 §17).

    Nothing runs while the global switch ``schedule.enabled`` is off; "collect now"
    (:meth:`CollectorRunner.run`) works either way.
    """

    _log = Logger()

    def __init__(
        self,
        runner: CollectorRunner,
        database: Database,
        settings: Any,
        reactor: Any,
        *,
        local_time: Callable[[float], time.struct_time] = time.localtime,
    ) -> None:
        self.runner = runner
        self._db = database
        self._settings = settings
        self._reactor = reactor
        self._local_time = local_time
        self._loop: LoopingCall | None = None
        self._poller: LoopingCall | None = None
        self._first: IDelayedCall | None = None
        self._handled: dict[int, float] = {}  # collector id -> last collect-now request done

    @override
    def startService(self) -> None:
        super().startService()
        now = self._reactor.seconds()
        self._loop = LoopingCall(self.tick)
        self._loop.clock = self._reactor
        self._poller = LoopingCall(self.poll_requests)
        self._poller.clock = self._reactor
        self._poller.start(REQUEST_POLL_SECONDS, now=False).addErrback(
            lambda f: self._log.failure("collect-now polling stopped", f)
        )
        self._first = self._reactor.callLater(60 - now % 60 + 1, self._start_loop)

    def _start_loop(self) -> None:
        self._first = None
        assert self._loop is not None
        self._loop.start(60, now=True).addErrback(
            lambda f: self._log.failure("collector schedule stopped", f)
        )

    @override
    def stopService(self) -> None:
        super().stopService()
        if self._first is not None and self._first.active():
            self._first.cancel()
        for loop in (self._loop, self._poller):
            if loop is not None and loop.running:
                loop.stop()

    def poll_requests(self) -> Deferred[list[RunResult]]:
        """Run collectors another process asked for ("collect now" from the CLI)."""
        return Deferred.fromCoroutine(self._requests())

    async def _requests(self) -> list[RunResult]:
        from vpop3d.app.collectoradmin import import_wizard

        results: list[RunResult] = []
        try:
            await self._db.write(import_wizard)
            rows = await self._db.read(repo.list_all)
            for row in rows:
                collector_id = int(row["id"])
                asked = self._settings.get(f"{COLLECT_NOW}{collector_id}", None)
                if not isinstance(asked, int | float):
                    continue
                if collector_id not in self._handled:
                    # A request from before we started is still a request.
                    self._handled[collector_id] = float("-inf")
                if asked <= self._handled[collector_id]:
                    continue
                self._handled[collector_id] = float(asked)
                results.append(await self.runner.run(collector_id))
        except Exception:  # noqa: BLE001 - polling must survive a bad round
            self._log.failure("collect-now request failed")
        return results

    def tick(self) -> Deferred[list[RunResult]]:
        """At each minute: the collectors of the Connections due now."""
        return Deferred.fromCoroutine(self._tick())

    async def _tick(self) -> list[RunResult]:
        try:
            return await self._due_runs()
        except Exception:  # noqa: BLE001 - the loop must survive one bad minute
            self._log.failure("collector tick failed")
            return []

    async def _due_runs(self) -> list[RunResult]:
        if not self._settings.get_bool(connectors.SCHEDULE_ENABLED, False):
            return []
        snapshot = await self._db.read(connectors.load)
        local = self._local_time(self._reactor.seconds())
        weekday = (local.tm_wday + 1) % 7  # struct_time: Monday = 0; schedule: Sunday = 0
        due = due_connections(
            snapshot.schedule,
            local.tm_hour * 60 + local.tm_min,
            weekday,
            defaults=snapshot.defaults(),
            all_ids=list(snapshot.senders),
            queued=0,  # "at least M messages waiting" gates sending, not collecting
        )
        if not due:
            return []
        return await self.runner.run_for_connections(due)
