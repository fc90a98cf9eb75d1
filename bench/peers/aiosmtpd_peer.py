"""aiosmtpd (the Python SMTP reference) as a durable inbound peer.

Run as ``python -m bench.peers.aiosmtpd_peer PORT MAILDIR``: every accepted message
is written to ``MAILDIR/<rcpt-local>/new`` and fsynced before the 250, the same
durability point as vpop3d (maildir delivery: tmp/, fsync, rename to new/).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.plan import Plan, free_port, make_maildir, wait_for_port


class MaildirHandler:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.counter = itertools.count()

    def _write(self, rcpt: str, data: bytes) -> None:
        box = self.root / rcpt.split("@")[0].lower()
        name = f"{os.getpid()}.{next(self.counter)}"
        tmp = box / "tmp" / name
        with open(tmp, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.rename(tmp, box / "new" / name)

    async def handle_RCPT(  # noqa: N802  aiosmtpd's hook names
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if not (self.root / address.split("@")[0].lower()).is_dir():
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        for rcpt in envelope.rcpt_tos:
            self._write(rcpt, envelope.original_content)  # blocking fsync, as a simple server does
        return "250 2.0.0 OK"


def serve(port: int, root: Path) -> None:
    from aiosmtpd.controller import Controller

    controller = Controller(
        MaildirHandler(root), hostname="127.0.0.1", port=port, data_size_limit=50_000_000
    )
    controller.start()
    stop = asyncio.Event()
    loop = asyncio.new_event_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.run_until_complete(stop.wait())
    controller.stop()


def installed() -> str | None:
    try:
        import aiosmtpd  # noqa: F401
    except ImportError:
        return "aiosmtpd not installed (pip install aiosmtpd)"
    return None


class Aiosmtpd:
    name = "aiosmtpd"
    serves = frozenset({"smtp"})

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.ports = {"smtp": free_port()}
        self.process: subprocess.Popen[bytes] | None = None

    def setup(self, plan: Plan) -> None:
        for name in plan.sink_users:
            make_maildir(self.dir / "mail" / name)

    def start(self) -> None:
        root = Path(__file__).resolve().parents[2]
        with open(self.dir / "aiosmtpd.log", "ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bench.peers.aiosmtpd_peer",
                    str(self.ports["smtp"]),
                    str(self.dir / "mail"),
                ],
                cwd=root,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for_port(self.ports["smtp"])

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


if __name__ == "__main__":
    serve(int(sys.argv[1]), Path(sys.argv[2]))
