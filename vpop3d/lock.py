"""One server per data directory (manual L1361): advisory locks under ``data_dir/locks``.

Each service group takes its own lock, so ``vpop3d-smtp`` and ``vpop3d-pop3`` may share
a data dir while a second ``vpop3d`` (which takes all of them) is refused. The kernel
drops the locks when the process dies, kill -9 included.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO


class AlreadyRunning(Exception):
    """Another process holds the lock; ``str()`` says which and where."""


class InstanceLock:
    def __init__(self, data_dir: Path, names: list[str]) -> None:
        self.directory = data_dir / "locks"
        self.names = sorted(names)
        self._handles: list[IO[str]] = []

    def acquire(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        for name in self.names:
            path = self.directory / f"{name}.lock"
            handle = open(path, "a+", encoding="ascii")  # noqa: SIM115  held for the process life
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                owner = handle.read().strip() or "unknown"
                handle.close()
                self.release()
                raise AlreadyRunning(
                    f"another vpop3d (pid {owner}) is already running the {name} service "
                    f"on data dir {self.directory.parent}; stop it first"
                ) from None
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()))
            handle.flush()
            self._handles.append(handle)

    def release(self) -> None:
        for handle in self._handles:
            handle.close()
        self._handles = []
