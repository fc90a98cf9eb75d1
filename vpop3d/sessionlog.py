"""Session logs (seed-5 §6.2): raw protocol transcripts per service, off by default.

A wrapping factory records every line in (``<``) and out (``>``) with a timestamp and
a connection id to ``<log_dir>/<PROTO>SVR.LOG``. Credentials are redacted: the
argument of USER/PASS/LOGIN/AUTH commands and every client line that answers a SASL
challenge (``334`` / ``+``) is replaced by ``***``.
"""

from __future__ import annotations

import itertools
import re
import time
from pathlib import Path
from typing import IO, Any

from twisted.internet.interfaces import IProtocol
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from typing_extensions import override

FILE_NAMES = {"smtp": "SMTPSVR.LOG", "pop3": "POP3SVR.LOG", "imap": "IMAPSVR.LOG"}
_SECRET = re.compile(rb"^((?:\S+ )?(?:PASS|AUTH|AUTHENTICATE|LOGIN|APOP)\b)(.*)$", re.IGNORECASE)
_ids = itertools.count(1)


class SessionLogFile:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle: IO[bytes] = open(path, "ab")  # noqa: SIM115  open for the process life

    def write(self, conn_id: int, direction: str, line: bytes) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()).encode()
        self._handle.write(b"%s [%d] %s %s\n" % (stamp, conn_id, direction.encode(), line))
        self._handle.flush()


class _LoggingProtocol(ProtocolWrapper):
    def __init__(self, factory: SessionLoggingFactory, wrapped: IProtocol) -> None:
        super().__init__(factory, wrapped)  # type: ignore[arg-type]  # generic in stubs
        self._log = factory.log_file
        self._id = next(_ids)
        self._challenged = False

    @override
    def dataReceived(self, data: bytes) -> None:
        for line in data.splitlines():
            if self._challenged:
                line, self._challenged = b"***", False
            else:
                line = _SECRET.sub(rb"\1 ***", line)
            self._log.write(self._id, "<", line)
        super().dataReceived(data)

    @override
    def write(self, data: bytes) -> None:
        for line in data.splitlines():
            self._log.write(self._id, ">", line[:200])
        self._challenged = data.startswith((b"334 ", b"+ ")) and not data.startswith(b"+ OK")
        super().write(data)

    @override
    def writeSequence(self, data: Any) -> None:
        self.write(b"".join(data))


class SessionLoggingFactory(WrappingFactory):
    protocol = _LoggingProtocol

    def __init__(self, wrapped: Any, log_file: SessionLogFile) -> None:
        super().__init__(wrapped)
        self.log_file = log_file
