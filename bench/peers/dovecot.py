"""Dovecot (Debian's dovecot-imapd/-pop3d) from a throw-away config on loopback ports.

passwd-file auth with the same password as vpop3d's users. vpop3d stores argon2id but
remembers recent successful checks, so a repeated login costs it a hash lookup;
Dovecot's passwd-file passdb is not served from its auth cache, so it gets a salted
SHA-512 ({SSHA512}) to make the per-login cost comparable (argon2id there costs
~120 ms per login on this machine). Maildirs in the temp dir owned by
``nobody``; its own base_dir/state_dir, started in the foreground (``dovecot -F``)
as the bench's child and stopped by it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from bench import corpus
from bench.plan import PASSWORD, Plan, free_port, maildir_name, make_maildir, wait_for_port

NOBODY = 65534


def installed() -> str | None:
    """None when usable, else why not."""
    if shutil.which("dovecot") is None:
        return "dovecot not installed (apt-get install -y dovecot-pop3d dovecot-imapd)"
    if os.geteuid() != 0:
        return "dovecot peer needs root (it switches to the mail uid)"
    return None


def _password_hash() -> str:
    for scheme in ("SSHA512",):
        done = subprocess.run(
            ["doveadm", "pw", "-s", scheme, "-p", PASSWORD], capture_output=True, text=True
        )
        if done.returncode == 0:
            return done.stdout.strip()
    return "{PLAIN}" + PASSWORD


CONFIG = """\
protocols = imap pop3
listen = 127.0.0.1
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
mail_location = maildir:{dir}/mail/%u
mail_max_userip_connections = 100000
default_process_limit = 20000
default_client_limit = 40000
default_vsz_limit = 1G
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
service pop3-login {{
  inet_listener pop3 {{
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service imap {{
  process_limit = 20000
}}
service pop3 {{
  process_limit = 20000
}}
service anvil {{
  client_limit = 100000
}}
service auth {{
  client_limit = 100000
}}
service stats {{
  client_limit = 100000
}}
"""


class Dovecot:
    name = "dovecot"
    serves = frozenset({"pop3", "imap"})

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.ports = {"pop3": free_port(), "imap": free_port()}
        self.process: subprocess.Popen[bytes] | None = None

    def _fill(self, user: str, messages: list[bytes]) -> None:
        box = self.dir / "mail" / user
        make_maildir(box)
        for number, raw in enumerate(messages):
            (box / "cur" / maildir_name(number, len(raw), seen=False)).write_bytes(raw)

    def setup(self, plan: Plan) -> None:
        self.dir.chmod(0o755)
        stored = _password_hash()
        lines = [f"{name}:{stored}::::::" for name in plan.all_users]
        (self.dir / "passwd").write_text("\n".join(lines) + "\n")
        for name in (*plan.pop_users, *plan.imap_users):
            self._fill(name, corpus.mailbox(f"{name}@example.test"))
        self._fill("idle", corpus.mailbox()[: plan.idle_messages])
        for name in plan.sink_users:
            make_maildir(self.dir / "mail" / name)
        big = self.dir / "mail" / "big"
        make_maildir(big)
        source = big / "source.eml"
        size = len(corpus.BIG_BODY)
        for n in range(plan.big_count):  # hard links: one body, as in vpop3d's blob store
            if n % 50_000 == 0:  # file systems cap the link count (ext4: 65,000)
                source.unlink(missing_ok=True)
                source.write_bytes(corpus.BIG_BODY)
            os.link(source, big / "cur" / maildir_name(n, size, seen=bool(n % 3)))
        source.unlink()
        (self.dir / "home").mkdir()
        for path in (self.dir / "mail", self.dir / "home"):
            subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", str(path)], check=True)
        (self.dir / "dovecot.conf").write_text(
            CONFIG.format(
                dir=self.dir, uid=NOBODY, imap=self.ports["imap"], pop3=self.ports["pop3"]
            )
        )

    def start(self) -> None:
        with open(self.dir / "dovecot.out", "ab") as log:
            self.process = subprocess.Popen(
                ["dovecot", "-F", "-c", str(self.dir / "dovecot.conf")],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        for port in self.ports.values():
            wait_for_port(port)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
