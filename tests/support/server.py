"""A real vpop3d server in a child process (``twistd -n vpop3d``) for integration tests.

``start_server(tmp_path)`` writes a tap.conf with free loopback ports, starts the
server, waits until every listener accepts, and returns a :class:`ServerProcess`:
``ports`` by listener name, ``db`` (a :class:`Database` on the same store for
set-up and assertions), ``cli(...)``, ``kill()`` (SIGKILL), ``stop()``, ``restart()``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vpop3d.config import ROLES
from vpop3d.listeners import BUILDERS
from vpop3d.store.db import Database

REPO = Path(__file__).resolve().parents[2]
# twistd of this interpreter (``python -m twisted`` is the other runner, "twist").
TWISTD = (sys.executable, "-c", "from twisted.scripts.twistd import run; run()")
LISTENERS = (
    "smtp",
    "submission",
    "smtps",
    "pop3",
    "pop3s",
    "imap",
    "imaps",
    "http",
    "status",
    "ldap",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def env() -> dict[str, str]:
    result = dict(os.environ)
    result["PYTHONPATH"] = str(REPO) + os.pathsep + result.get("PYTHONPATH", "")
    return result


@dataclass
class ServerProcess:
    config_path: Path
    data_dir: Path
    database_url: str
    ports: dict[str, int]
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    _db: Database | None = field(default=None, repr=False)

    @property
    def db(self) -> Database:
        if self._db is None:
            self._db = Database(self.database_url)
        return self._db

    def start(self) -> None:
        assert self.log_path is not None
        log = open(self.log_path, "ab")  # noqa: SIM115  owned by the child
        self.process = subprocess.Popen(
            [*TWISTD, "-n", "--pidfile=", "vpop3d", "-c", str(self.config_path)],
            cwd=self.config_path.parent,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env(),
        )
        log.close()
        try:
            for name, port in self.ports.items():
                if ROLES[name].protocol in BUILDERS:  # listeners this version serves
                    wait_for_port(port)
        except TimeoutError:
            self.stop()
            raise RuntimeError("server did not start:\n" + self.log()) from None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def kill(self) -> None:
        """SIGKILL: no cleanup at all, as in a crash."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._db is not None:
            self._db.engine.dispose()
            self._db = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "vpop3d.cli", "-c", str(self.config_path), *args],
            capture_output=True,
            text=True,
            env=env(),
            timeout=60,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"vpop3d {' '.join(args)} failed: {result.stderr}")
        return result


def write_config(
    directory: Path,
    database_url: str,
    *,
    listeners: tuple[str, ...] = LISTENERS,
    extra: str = "",
) -> tuple[Path, dict[str, int]]:
    ports = {name: free_port() for name in listeners}
    lines = [
        "[server]",
        "hostname = mail.example.test",
        f"data_dir = {directory / 'data'}",
        f"database = {database_url}",
    ]
    for name in (
        "smtp",
        "submission",
        "smtps",
        "pop3",
        "pop3s",
        "imap",
        "imaps",
        "http",
        "ldap",
        "status",
    ):
        lines += [f"[{name}]", f"port = {ports.get(name, 0)}", "interface = 127.0.0.1"]
    path = directory / "tap.conf"
    path.write_text("\n".join(lines) + "\n" + extra)
    return path, ports


def start_server(
    directory: Path, database_url: str, *, listeners: tuple[str, ...] = LISTENERS, extra: str = ""
) -> ServerProcess:
    config_path, ports = write_config(directory, database_url, listeners=listeners, extra=extra)
    server = ServerProcess(
        config_path=config_path,
        data_dir=directory / "data",
        database_url=database_url,
        ports=ports,
        log_path=directory / "server.log",
    )
    server.start()
    return server


def add_user(server: ServerProcess, name: str, password: str = "secret", **fields: Any) -> None:
    from tests.support.stack import add_user_fast

    server.db.run_sync(add_user_fast, name, password, **fields)
