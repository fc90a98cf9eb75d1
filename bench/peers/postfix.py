"""Postfix (Debian's package) as an inbound SMTP peer from a throw-away instance.

Own config_directory, queue_directory and data_directory in the temp dir; one smtpd
on a loopback high port; the ``virtual`` delivery agent writes the bench domain's
mail into maildirs in the temp dir. Postfix fsyncs the queue file before its 250
(the same durability point as vpop3d's mailbox commit). Started with ``postfix -c
DIR start`` and stopped with ``postfix -c DIR stop``; nothing system-wide is touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from bench.plan import DOMAIN, Plan, free_port, make_maildir, wait_for_port

NOBODY = 65534

MAIN = """\
compatibility_level = 3.6
queue_directory = {dir}/spool
data_directory = {dir}/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = peer.example.test
mydestination =
mynetworks = 127.0.0.0/8
relay_domains =
alias_maps =
alias_database =
local_recipient_maps =
virtual_mailbox_domains = {domain}
virtual_mailbox_base = {dir}/mail
virtual_mailbox_maps = texthash:{dir}/etc/vmailbox
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{uid}
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_banner = $myhostname ESMTP
message_size_limit = 52428800
virtual_mailbox_limit = 0
maillog_file = {dir}/postfix.log
maillog_file_prefixes = {dir}
smtputf8_enable = no
biff = no
relayhost = [127.0.0.1]:{sink}
defer_transports = smtp
smtp_tls_security_level = none
"""

MASTER = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def installed() -> str | None:
    if shutil.which("postfix") is None:
        return "postfix not installed (apt-get install -y postfix)"
    if os.geteuid() != 0:
        return "postfix peer needs root"
    return None


class Postfix:
    name = "postfix"
    serves = frozenset({"smtp", "outbound"})

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.etc = directory / "etc"
        self.ports = {"smtp": free_port()}
        self.sink_port = free_port()
        self._pid = 0

    def setup(self, plan: Plan) -> None:
        self.dir.chmod(0o755)
        self.etc.mkdir(parents=True)
        (self.dir / "spool").mkdir()
        (self.dir / "data").mkdir()
        shutil.chown(self.dir / "data", "postfix", "postfix")
        (self.etc / "main.cf").write_text(
            MAIN.format(dir=self.dir, domain=DOMAIN, uid=NOBODY, sink=self.sink_port)
        )
        (self.etc / "master.cf").write_text(MASTER.format(port=self.ports["smtp"]))
        users = [f"{name}@{DOMAIN} {name}/" for name in plan.all_users]  # trailing /: maildir
        (self.etc / "vmailbox").write_text("\n".join(users) + "\n")
        for name in plan.sink_users:
            make_maildir(self.dir / "mail" / name)
        subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", str(self.dir / "mail")], check=True)
        subprocess.run(["postfix", "-c", str(self.etc), "check"], check=True, capture_output=True)

    def outbound_prepare(self, plan: Plan) -> None:
        """Submit ``plan.outbound`` 10 KB messages for r@remote.test over SMTP (10
        connections) while ``defer_transports = smtp`` holds them in the deferred
        queue; wait until all are there."""
        from bench import load

        per = plan.outbound // 10
        for n in range(10):
            count = per + (1 if n < plan.outbound % 10 else 0)
            load.smtp_client(self.ports["smtp"], f"r{n}@remote.test", count, 10_240)
        deadline = time.monotonic() + 300
        held = 0
        while time.monotonic() < deadline:
            held = sum(1 for p in (self.dir / "spool" / "deferred").rglob("*") if p.is_file())
            if held >= plan.outbound:
                return
            time.sleep(0.2)
        raise TimeoutError(f"postfix deferred only {held} of {plan.outbound} messages")

    def outbound_release(self) -> None:
        """Clear defer_transports, reload, flush the deferred queue to the sink."""
        etc = str(self.etc)
        subprocess.run(["postconf", "-c", etc, "-e", "defer_transports ="], check=True)
        subprocess.run(["postfix", "-c", etc, "reload"], check=True, capture_output=True)
        subprocess.run(["postqueue", "-c", etc, "-f"], check=True, capture_output=True)

    def outbound_reset(self) -> None:
        etc = str(self.etc)
        subprocess.run(["postconf", "-c", etc, "-e", "defer_transports = smtp"], check=True)
        subprocess.run(["postfix", "-c", etc, "reload"], check=True, capture_output=True)

    def start(self) -> None:
        subprocess.run(["postfix", "-c", str(self.etc), "start"], check=True, capture_output=True)
        wait_for_port(self.ports["smtp"])
        pidfile = self.dir / "spool" / "pid" / "master.pid"
        deadline = time.monotonic() + 10
        while not pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        self._pid = int(pidfile.read_text().split()[0])

    @property
    def pid(self) -> int:
        return self._pid

    def stop(self) -> None:
        subprocess.run(["postfix", "-c", str(self.etc), "stop"], capture_output=True)
        deadline = time.monotonic() + 20
        while self._pid and time.monotonic() < deadline:
            try:
                os.kill(self._pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        if self._pid:
            subprocess.run(["postfix", "-c", str(self.etc), "abort"], capture_output=True)
