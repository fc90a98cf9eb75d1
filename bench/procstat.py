"""CPU seconds and peak RSS of a server's whole process tree (psutil).

CPU: for every live process in the tree, user + system + reaped children's times
(Linux ``cutime``/``cstime``), so short-lived workers (Dovecot's per-session
processes, Postfix's smtpd/cleanup) are still counted once their parent reaps them.
RSS: summed over the tree, sampled every 50 ms; the peak is kept.
"""

from __future__ import annotations

import contextlib
import threading

import psutil


def tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def cpu_seconds(pid: int) -> float:
    total = 0.0
    for proc in tree(pid):
        try:
            t = proc.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.NoSuchProcess:
            pass
    return total


def rss_bytes(pid: int) -> int:
    total = 0
    for proc in tree(pid):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += proc.memory_info().rss
    return total


def uss_bytes(pid: int) -> int:
    """Unique set size summed over the tree: memory that is each process's own."""
    total = 0
    for proc in tree(pid):
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += proc.memory_full_info().uss
    return total


class Monitor:
    """``with Monitor(pid) as m: ...`` then ``m.cpu`` (s) and ``m.peak_rss`` (bytes).

    ``also``: further process trees counted with the server's (vpop3d's own
    PostgreSQL cluster)."""

    def __init__(self, pid: int, interval: float = 0.05, also: tuple[int, ...] = ()) -> None:
        self.pids = (pid, *also)
        self.interval = interval
        self.cpu = 0.0
        self.peak_rss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._cpu_start = 0.0

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_rss = max(self.peak_rss, self._rss())
            self._stop.wait(self.interval)

    def _rss(self) -> int:
        return sum(rss_bytes(pid) for pid in self.pids)

    def _cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids)

    def __enter__(self) -> Monitor:
        self._cpu_start = self._cpu()
        self.peak_rss = self._rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_rss = max(self.peak_rss, self._rss())
        self.cpu = self._cpu() - self._cpu_start
