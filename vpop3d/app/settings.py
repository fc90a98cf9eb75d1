"""A cached view of the run-time settings table, refreshed on change and by polling.

Protocol code reads settings synchronously from the cache (``get_bool``,
``get_int``...) with the default the caller names; writes go through the database and
refresh the cache. Other processes' writes (the CLI) are seen within the poll interval.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from vpop3d.store import settings as settings_repo
from vpop3d.store.db import Database


class Settings:
    _log = Logger()

    def __init__(self, database: Database, initial: dict[str, Any] | None = None) -> None:
        self._db = database
        self._values: dict[str, Any] = dict(initial or {})
        self._poller: LoopingCall | None = None

    def load_sync(self) -> None:
        self._values = self._db.read_sync(settings_repo.get_all)

    def refresh(self) -> Deferred[None]:
        def store(values: dict[str, Any]) -> None:
            self._values = values

        return self._db.read(settings_repo.get_all).addCallback(store)

    def start_polling(self, clock: IReactorTime, interval: float = 5.0) -> None:
        poller = LoopingCall(self._poll)
        poller.clock = clock
        poller.start(interval, now=False)
        self._poller = poller

    def stop_polling(self) -> None:
        if self._poller is not None and self._poller.running:
            self._poller.stop()

    def _poll(self) -> Deferred[None]:
        return self.refresh().addErrback(
            lambda failure: self._log.failure("settings refresh failed", failure)
        )

    def get(self, key: str, default: Any = None) -> Any:
        return self._values.get(key, default)

    def get_bool(self, key: str, default: bool) -> bool:
        return bool(self._values.get(key, default))

    def get_int(self, key: str, default: int) -> int:
        value = self._values.get(key, default)
        return int(value) if isinstance(value, int | float | str) else default

    def get_str(self, key: str, default: str) -> str:
        value = self._values.get(key, default)
        return value if isinstance(value, str) else default

    def put(self, key: str, value: Any) -> Deferred[None]:
        """Write one setting and update the cache once committed."""

        def cache(_: None) -> None:
            self._values[key] = value

        return self._db.write(settings_repo.put, key, value).addCallback(cache)

    def snapshot(self) -> dict[str, Any]:
        return dict(self._values)
