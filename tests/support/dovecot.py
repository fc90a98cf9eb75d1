"""A throw-away Dovecot IMAP server on a loopback port, as the reference peer of the
differential IMAP conformance test (tests/integration/test_imap_conformance.py).

Debian's ``dovecot-imapd`` started in the foreground (``dovecot -F``) from a config
written into a temp dir: its own base_dir/state_dir/log, plaintext LOGIN on the
loopback, passwd-file users with ``{PLAIN}`` passwords, maildir mailboxes with the
hierarchy delimiter vpop3d uses ("/"). It is started as root (Dovecot's master drops
to its own service users) and keeps the mail as ``nobody``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.support.server import free_port, wait_for_port

NOBODY = 65534

CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
mail_location = maildir:{dir}/mail/%u
namespace inbox {{
  inbox = yes
  separator = /
  prefix =
{special}}}
passdb {{
  driver = passwd-file
  args = {dir}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={uid} home={dir}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    port = {imap}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""


def missing() -> str | None:
    """None when a Dovecot peer can be started here, else why not."""
    if shutil.which("dovecot") is None:
        return "dovecot binary not installed (apt-get install -y dovecot-imapd)"
    if os.geteuid() != 0:
        return "the Dovecot peer must be started as root (it switches to its service users)"
    return None


class Dovecot:
    """One Dovecot instance with the users named at construction, password ``secret``."""

    def __init__(
        self,
        directory: Path,
        users: list[str],
        *,
        password: str = "secret",
        special: tuple[tuple[str, str, str], ...] = (),
    ) -> None:
        """``special``: (name, special-use attribute, "create"|"subscribe") per folder
        every user has from the first login (RFC 6154), as vpop3d gives new accounts."""
        self.dir = directory
        self.special = special
        self.users = users
        self.password = password
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def _config(self) -> str:
        special = "".join(
            f'  mailbox "{name}" {{\n    auto = {auto}\n    special_use = {use}\n  }}\n'
            for name, use, auto in self.special
        )
        return CONFIG.format(dir=self.dir, uid=NOBODY, imap=self.port, special=special)

    def start(self) -> None:
        self.dir.chmod(0o755)
        lines = [f"{name}:{{PLAIN}}{self.password}::::::" for name in self.users]
        (self.dir / "passwd").write_text("\n".join(lines) + "\n")
        for sub in ("mail", "home"):
            (self.dir / sub).mkdir(exist_ok=True)
            os.chown(self.dir / sub, NOBODY, NOBODY)
        (self.dir / "dovecot.conf").write_text(self._config())
        with open(self.dir / "dovecot.out", "ab") as log:
            self.process = subprocess.Popen(
                ["dovecot", "-F", "-c", str(self.dir / "dovecot.conf")],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for_port(self.port)
        except TimeoutError:
            self.stop()
            raise RuntimeError("dovecot did not start:\n" + self.log()) from None

    def log(self) -> str:
        parts = []
        for name in ("dovecot.out", "dovecot.log"):
            path = self.dir / name
            if path.exists():
                parts.append(path.read_text(errors="replace"))
        return "\n".join(parts)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
