"""A throw-away PostgreSQL cluster for the bench: initdb into a temp dir, a free
loopback port, trust auth, fsync on (the durability vpop3d's SQLite has), torn down
after the run.

As root the cluster runs as the ``postgres`` user (PostgreSQL refuses root), the way
CI does it (.ci/run). The postmaster's pid is exposed so its process tree's CPU and
memory are counted with vpop3d's: on PostgreSQL the database work leaves vpop3d's
own process tree, and leaving it out would flatter vpop3d.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shlex
import shutil
import subprocess
from pathlib import Path

from bench.plan import free_port

INSTALL = "apt-get install -y postgresql"


def pg_bin() -> Path | None:
    """The newest PostgreSQL server binaries directory, or None."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: [int(x) for x in p.parent.name.split(".") if x.isdigit()],
    )
    for directory in reversed(found):
        if (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            return directory
    which = shutil.which("initdb")
    return Path(which).parent if which else None


def missing() -> str | None:
    """Why a throw-away cluster cannot be started here, or None."""
    if pg_bin() is None:
        return f"PostgreSQL server binaries not found ({INSTALL})"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root needs a 'postgres' user for initdb"
    return None


class Cluster:
    """``with Cluster(tmp) as pg: pg.url`` — started on enter, stopped on exit."""

    def __init__(self, base: Path) -> None:
        found = pg_bin()
        assert found is not None, missing()
        self.bin = found
        self.dir = base / "pg"
        self.port = free_port()
        self.url = f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/vpop3d_bench"
        self.pid = 0

    def _run(self, *argv: str) -> None:
        command = " ".join(shlex.quote(a) for a in argv)
        if os.geteuid() == 0:
            full = ["su", "postgres", "-s", "/bin/sh", "-c", command]
        else:
            full = ["sh", "-c", command]
        subprocess.run(full, check=True, capture_output=True, cwd="/")

    def start(self) -> None:
        self.dir.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        data = str(self.dir / "data")
        self._run(
            str(self.bin / "initdb"), "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8"
        )
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=on"
            " -c max_connections=200"
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            data,
            "-o",
            options,
            "-l",
            str(self.dir / "log"),
            "-w",
            "start",
        )
        self.pid = int((self.dir / "data" / "postmaster.pid").read_text().split()[0])
        self._run(
            str(self.bin / "createdb"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "vpop3d_bench",
        )

    def stop(self) -> None:
        if not self.pid:
            return
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "fast", "stop")
        self.pid = 0

    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
