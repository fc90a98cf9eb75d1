"""The README's first command: the shipped tap.conf, every service on its standard port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from tests.support.server import REPO, TWISTD, env, wait_for_port
from vpop3d.config import load
from vpop3d.listeners import BUILDERS

pytestmark = pytest.mark.network


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def test_shipped_config_listens_on_every_default_port(tmp_path: Path) -> None:
    """twistd -n vpop3d -c tap.conf (the shipped file) accepts on all its enabled ports."""
    shipped = (REPO / "tap.conf").read_text()
    conf = tmp_path / "tap.conf"
    conf.write_text(shipped.replace("data_dir = data", f"data_dir = {tmp_path / 'data'}"))
    config = load(conf)
    ports = {s.name: s.port for s in config.enabled_listeners() if s.protocol in BUILDERS}
    if os.geteuid() != 0:
        pytest.skip("standard ports below 1024 need root (CI runs as root)")
    busy = [f"{name}:{port}" for name, port in ports.items() if not _port_free(port)]
    if busy:
        pytest.skip(f"ports in use on this machine: {', '.join(busy)}")
    process = subprocess.Popen(
        [*TWISTD, "-n", "--pidfile=", "vpop3d", "-c", str(conf)],
        cwd=tmp_path,
        env={**env(), "PYTHONFAULTHANDLER": "1"},  # SIGABRT prints every thread's stack
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        for port in ports.values():
            wait_for_port(port)
        assert {25, 587, 465, 5108, 5109, 389} <= set(ports.values())
    finally:
        process.terminate()
        try:
            output = process.communicate(timeout=60)[0].decode(errors="replace")
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGABRT)
            stuck = process.communicate(timeout=30)[0].decode(errors="replace")
            pytest.fail(f"vpop3d did not stop within 60 s of SIGTERM:\n{stuck[-8000:]}")
    assert "Traceback" not in output, output
