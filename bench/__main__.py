"""``python -m bench``: vpop3d against established mail servers, one command, one table.

    python -m bench [--quick] [--database sqlite|postgresql|both] [--database-url URL]
                    [--only SCENARIO ...] [--servers vpop3d,postfix,aiosmtpd,dovecot]
                    [--profile SCENARIO ...] [--big N] [--idlers N]

Every server is started as a child process from a throw-away configuration on
127.0.0.1 high ports, seeded with the same users and the same fixed corpus
(bench/corpus.py), driven by the same load generators (bench/load.py, stdlib clients
in several spawned processes), watched with psutil over its whole process tree
(bench/procstat.py), and stopped. Prints a markdown table (throughput, p50/p99
latency, server CPU seconds, peak RSS, vpop3d/peer ratio) and writes JSON to
bench/results/<UTC date>.json. A peer that is not installed is skipped with one line.
vpop3d runs once per database (SQLite, and PostgreSQL in a throw-away cluster the
bench starts and stops); the peers run once.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import multiprocessing
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

try:
    import psutil
except ImportError:  # a fresh clone without the bench extra
    sys.exit("the bench needs psutil: pip install -e '.[bench]' (or pip install psutil)")

from bench import load, pgcluster
from bench.plan import Plan, Server
from bench.procstat import Monitor, rss_bytes, uss_bytes

HERE = Path(__file__).resolve().parent
SPAWN = multiprocessing.get_context("spawn")
SCENARIOS = ("smtp", "outbound", "pop3", "imap_mixed", "imap_large", "imap_idle", "web_users")
NEEDS = {
    "smtp": "smtp",
    "outbound": "outbound",
    "pop3": "pop3",
    "imap_mixed": "imap",
    "imap_large": "imap",
    "imap_idle": "imap",
    "web_users": "web",
}


@dataclass
class Options:
    quick: bool
    databases: tuple[str, ...]  # of "sqlite", "postgresql"
    database_url: str | None
    scenarios: tuple[str, ...]
    servers: tuple[str, ...]
    profile: tuple[str, ...]
    smtp_connections: int = 10
    smtp_per_connection: int = 100
    smtp_size: int = 10_240
    pop_users: int = 10
    pop_sessions: int = 5
    imap_users: int = 20
    imap_clients: int = 10
    imap_rounds: int = 3
    imap_workers: int = 8
    big: int = 100_000
    large_repeats: int = 5
    idlers: int = 10_000
    web_users: int = 10_000
    web_requests: int = 50
    outbound: int = 2000

    def scale_quick(self) -> None:
        self.smtp_per_connection = 30
        self.pop_sessions = 2
        self.imap_users, self.imap_clients, self.imap_rounds = 5, 4, 2
        self.big = 10_000
        self.large_repeats = 3
        self.idlers = 1000
        self.web_requests = 15
        self.outbound = 300


@dataclass
class Row:
    scenario: str
    server: str
    value: float  # the headline number
    unit: str
    p50_ms: float
    p99_ms: float
    cpu_s: float
    peak_rss_mb: float
    higher_is_better: bool = True
    db: str = ""  # vpop3d's database; "" for the peers
    extra: dict[str, Any] = field(default_factory=dict)


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index] * 1000


def pool_run(
    workers: int, fn: Callable[..., load.Result], jobs: list[tuple[Any, ...]]
) -> tuple[float, list[float], int, int]:
    """Run ``jobs`` in ``workers`` spawned processes: (elapsed wall s, latencies, units,
    temporary failures)."""
    with ProcessPoolExecutor(workers, mp_context=SPAWN) as pool:
        pool.submit(time.sleep, 0).result()  # spawn cost is not the server's
        results = list(pool.map(fn, *zip(*jobs, strict=True)))
    elapsed = max(r[1] for r in results) - min(r[0] for r in results)
    return (
        elapsed,
        [x for r in results for x in r[2]],
        sum(r[3] for r in results),
        sum(r[4] for r in results),
    )


def watch(server: Server) -> Monitor:
    """The server's process tree, plus its own PostgreSQL cluster's when it has one."""
    return Monitor(server.pid, also=getattr(server, "also", ()))


def measured(
    server: Server,
    scenario: str,
    unit: str,
    work: Callable[[], tuple[float, list[float], int, int]],
) -> Row:
    with watch(server) as monitor:
        elapsed, latencies, units, errors = work()
    return Row(
        scenario,
        server.name,
        units / elapsed,
        unit,
        pct(latencies, 0.5),
        pct(latencies, 0.99),
        monitor.cpu,
        monitor.peak_rss / 2**20,
        extra={"units": units, "elapsed_s": elapsed, "errors": errors},
    )


def run_smtp(server: Server, plan: Plan, opt: Options) -> list[Row]:
    port = server.ports["smtp"]
    jobs = [
        (
            port,
            f"{plan.sink_users[n % len(plan.sink_users)]}@example.test",
            opt.smtp_per_connection,
            opt.smtp_size,
        )
        for n in range(opt.smtp_connections)
    ]
    load.smtp_client(port, jobs[0][1], 2, opt.smtp_size)  # warm-up
    return [
        measured(
            server, "smtp", "msg/s", lambda: pool_run(opt.smtp_connections, load.smtp_client, jobs)
        )
    ]


def run_outbound(server: Server, plan: Plan, opt: Options) -> list[Row]:
    """Queue -> local sink: ``plan.outbound`` messages held in the server's queue are
    released at once; throughput from the sink's first to its last arrival; latency =
    the gaps between arrivals (per-message turnaround, stalls show in p99)."""
    peer: Any = server
    peer.outbound_prepare(plan)
    ready, out = SPAWN.Queue(), SPAWN.Queue()
    sink = SPAWN.Process(target=load.sink, args=(peer.sink_port, plan.outbound, ready, out, 900.0))
    sink.start()
    try:
        ready.get(timeout=60)
        with watch(server) as monitor:
            released = time.time()
            peer.outbound_release()
            arrivals: list[float] = out.get(timeout=960)
    finally:
        sink.join(30)
        peer.outbound_reset()
    if len(arrivals) < plan.outbound:
        raise RuntimeError(f"the sink got {len(arrivals)} of {plan.outbound} messages")
    elapsed = arrivals[-1] - arrivals[0]
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    return [
        Row(
            "outbound",
            server.name,
            (len(arrivals) - 1) / elapsed,
            "msg/s",
            pct(gaps, 0.5),
            pct(gaps, 0.99),
            monitor.cpu,
            monitor.peak_rss / 2**20,
            extra={
                "messages": len(arrivals),
                "elapsed_s": elapsed,
                "first_after_release_s": arrivals[0] - released,
            },
        )
    ]


def run_pop3(server: Server, plan: Plan, opt: Options) -> list[Row]:
    port = server.ports["pop3"]
    for user in plan.pop_users:  # warm-up: first login (Dovecot indexes, caches fill)
        load.pop3_client(port, user, 1)
    jobs = [(port, user, opt.pop_sessions) for user in plan.pop_users]
    row = measured(
        server, "pop3", "sessions/s", lambda: pool_run(len(jobs), load.pop3_client, jobs)
    )
    row.extra["MB/s"] = row.value * 2.27  # 2.27 MB mailbox per session (corpus.MAILBOX_SIZES)
    return [row]


def run_imap_mixed(server: Server, plan: Plan, opt: Options) -> list[Row]:
    port = server.ports["imap"]
    for user in plan.imap_users:
        load.imap_mixed_client(port, user, 1, 999)
    jobs = [
        (port, user, opt.imap_rounds, n)
        for n, user in enumerate(u for u in plan.imap_users for _ in range(opt.imap_clients))
    ]
    return [
        measured(
            server,
            "imap_mixed",
            "cmd/s",
            lambda: pool_run(opt.imap_workers, load.imap_mixed_client, jobs),
        )
    ]


def run_imap_large(server: Server, plan: Plan, opt: Options) -> list[Row]:
    port = server.ports["imap"]
    load.imap_large_client(port, "big", 1)  # warm-up: Dovecot builds its index here
    with watch(server) as monitor:
        times = load.imap_large_client(port, "big", opt.large_repeats)
    rows = []
    for name, values in times.items():
        median = statistics.median(values)
        rows.append(
            Row(
                f"imap_large {name}",
                server.name,
                1 / median,
                "ops/s",
                pct(values, 0.5),
                pct(values, 0.99),
                monitor.cpu,
                monitor.peak_rss / 2**20,
                extra={"messages": plan.big_count, "seconds": values},
            )
        )
    return rows


def run_imap_idle(server: Server, plan: Plan, opt: Options) -> list[Row]:
    port = server.ports["imap"]
    procs = max(1, opt.idlers // 2500)
    share = [opt.idlers // procs + (1 if n < opt.idlers % procs else 0) for n in range(procs)]
    ready, done = SPAWN.Queue(), SPAWN.Event()
    load.imap_large_client(port, "idle", 1)  # warm-up, as every scenario: first login
    time.sleep(1)
    rss_before, uss_before = rss_bytes(server.pid), uss_bytes(server.pid)
    with watch(server) as monitor:
        started = time.time()
        children = [
            SPAWN.Process(target=load.idle_clients, args=(port, "idle", n, ready, done))
            for n in share
        ]
        for child in children:
            child.start()
        times: list[float] = []
        try:
            for _ in children:
                got = ready.get(timeout=1200)
                if isinstance(got, str):
                    raise RuntimeError(f"idle client failed at {got}")
                times += got
            elapsed = time.time() - started
            time.sleep(2)  # let the server settle; every session is still open and idling
            rss_after, uss_after = rss_bytes(server.pid), uss_bytes(server.pid)
        finally:
            done.set()  # the clients close their sessions only now
        for child in children:
            child.join(60)
    per_rss = (rss_after - rss_before) / opt.idlers / 1024
    per_uss = (uss_after - uss_before) / opt.idlers / 1024
    return [
        Row(
            "imap_idle",
            server.name,
            per_uss,
            "KiB/conn (USS)",
            pct(times, 0.5),
            pct(times, 0.99),
            monitor.cpu,
            monitor.peak_rss / 2**20,
            higher_is_better=False,
            extra={"connections": opt.idlers, "rss_kib_per_conn": per_rss, "setup_s": elapsed},
        )
    ]


def run_web_users(server: Server, plan: Plan, opt: Options) -> list[Row]:
    port = server.ports["web"]
    load.web_client(port, 1)
    jobs = [(port, opt.web_requests)] * 2
    return [measured(server, "web_users", "req/s", lambda: pool_run(2, load.web_client, jobs))]


RUNNERS: dict[str, Callable[[Server, Plan, Options], list[Row]]] = {
    "smtp": run_smtp,
    "outbound": run_outbound,
    "pop3": run_pop3,
    "imap_mixed": run_imap_mixed,
    "imap_large": run_imap_large,
    "imap_idle": run_imap_idle,
    "web_users": run_web_users,
}


def make_servers(opt: Options, base: Path, pg: pgcluster.Cluster | None) -> list[Server]:
    from bench.peers import aiosmtpd_peer, dovecot, postfix
    from bench.peers.vpop3d import Vpop3d

    servers: list[Server] = []
    for name in opt.servers:
        if name == "vpop3d":
            for db in opt.databases:
                directory = base / f"vpop3d-{db}"
                directory.mkdir()
                if db == "sqlite":
                    servers.append(Vpop3d(directory, None, "sqlite"))
                elif pg is not None:
                    servers.append(Vpop3d(directory, pg.url, "postgresql", (pg.pid,)))
                else:
                    servers.append(Vpop3d(directory, opt.database_url, "postgresql"))
            continue
        directory = base / name
        directory.mkdir()
        module: Any = {"postfix": postfix, "dovecot": dovecot, "aiosmtpd": aiosmtpd_peer}[name]
        why = module.installed()
        if why:
            print(f"skipping {name}: {why}", flush=True)
            continue
        peers: dict[str, Callable[[Path], Server]] = {
            "postfix": postfix.Postfix,
            "dovecot": dovecot.Dovecot,
            "aiosmtpd": aiosmtpd_peer.Aiosmtpd,
        }
        servers.append(peers[name](directory))
    return servers


def profile(server: Server, seconds: float, out: Path) -> subprocess.Popen[bytes] | None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print("profiling needs py-spy (pip install py-spy)")
        return None
    return subprocess.Popen(
        [
            spy,
            "record",
            "-p",
            str(server.pid),
            "-d",
            str(int(seconds)),
            "-f",
            "raw",
            "-o",
            str(out),
            "-r",
            "100",
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


IDLE = {"Condition.wait", "EPollReactor.doPoll", "Event.wait", "Thread.wait", "select"}


def top_costs(raw: Path, count: int = 8) -> list[tuple[str, float, float]]:
    """(function, self %, inclusive %) from py-spy's collapsed stacks."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, hits = line.rpartition(" ")
        frames = [f for f in stack.split(";") if f]
        if frames and frames[-1].split(" ")[0] in IDLE:
            continue  # a thread waiting for work, not a cost
        n = int(hits)
        total += n
        if frames:
            own[frames[-1]] = own.get(frames[-1], 0) + n
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + n
    ranked = sorted(own.items(), key=lambda kv: -kv[1])[:count]
    return [(f, 100 * n / total, 100 * inclusive[f] / total) for f, n in ranked]


def run_server(server: Server, plan: Plan, opt: Options) -> list[Row]:
    started = time.monotonic()
    db = getattr(server, "db", "")
    label = server.name + (f" ({db})" if db else "")
    server.setup(plan)
    print(f"{label}: seeded in {time.monotonic() - started:.1f} s", flush=True)
    rows: list[Row] = []
    server.start()
    try:
        for scenario in opt.scenarios:
            if NEEDS[scenario] not in server.serves:
                continue
            spy = None
            if scenario == "imap_idle":  # memory per connection: on a fresh process
                server.stop()
                server.start()
            raw = HERE / "results" / f"profile-{scenario}-{getattr(server, 'db', '')}.raw"
            if scenario in opt.profile and server.name == "vpop3d":
                spy = profile(server, 600, raw)
                time.sleep(1)
            t0 = time.monotonic()
            try:
                got = RUNNERS[scenario](server, plan, opt)
            except Exception as exc:  # noqa: BLE001  one failed scenario must not lose the rest
                print(f"  {scenario} on {label} FAILED: {exc!r}", flush=True)
                got = []
            if spy is not None:
                spy.send_signal(2)
                spy.wait(60)
                if raw.exists():
                    print(f"py-spy top costs for {scenario} on {label} (self %, inclusive %):")
                    for frame, mine, incl in top_costs(raw):
                        print(f"  {mine:5.1f} {incl:5.1f}  {frame}")
            for row in got:
                row.db = getattr(server, "db", "")
                print(
                    f"  {row.scenario:28} {label:20} {row.value:10.1f} {row.unit}"
                    f"  ({time.monotonic() - t0:.1f} s)",
                    flush=True,
                )
            rows += got
    finally:
        server.stop()
    return rows


def fmt(value: float) -> str:
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def table(rows: list[Row]) -> str:
    """One markdown table; vpop3d has a row per database, the peers one row each and a
    ratio column per database: vpop3d on that database / the peer."""
    dbs = [db for db in ("sqlite", "postgresql") if any(r.db == db for r in rows)]
    head = "| scenario | server | db | throughput | p50 ms | p99 ms | server CPU s | peak RSS MB |"
    head += "".join(f" vpop3d ({db})/peer |" for db in dbs)
    lines = [head, "|---|---|---|---:|---:|---:|---:|---:|" + "---:|" * len(dbs)]
    ours = {(r.scenario, r.db): r for r in rows if r.server == "vpop3d"}
    for row in sorted(
        rows,
        key=lambda r: (
            SCENARIOS.index(r.scenario.split()[0]),
            r.scenario,
            r.server != "vpop3d",
            r.server,
            dbs.index(r.db) if r.db in dbs else 0,
        ),
    ):
        ratios = ""
        for db in dbs:
            mine = ours.get((row.scenario, db))
            ratio = ""
            if row.server != "vpop3d" and mine is not None and row.value:
                ratio = f"{mine.value / row.value:.2f}"
            ratios += f" {ratio} |"
        errors = row.extra.get("errors", 0)
        failed = f" ({errors} failed)" if errors else ""
        lines.append(
            f"| {row.scenario} | {row.server} | {row.db or '-'} | {fmt(row.value)} {row.unit}"
            f"{failed} "
            f"| {fmt(row.p50_ms)} | {fmt(row.p99_ms)} | {row.cpu_s:.2f} | {row.peak_rss_mb:.0f} |"
            + ratios
        )
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )

    def version(*cmd: str) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
        except OSError:
            return "not installed"

    return {
        "nproc": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "cpu": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postfix": version("postconf", "-h", "mail_version"),
        "dovecot": version("dovecot", "--version"),
        "load_avg_at_start": os.getloadavg(),
    }


def choose_databases(wanted: str | None, url: str | None) -> tuple[str, ...]:
    """--database, defaulting to both when PostgreSQL can be started (or a URL given)."""
    if wanted is None:
        why = None if url else pgcluster.missing()
        if why:
            print(f"vpop3d on SQLite only: {why}", flush=True)
            return ("sqlite",)
        return ("sqlite", "postgresql")
    if wanted != "sqlite" and not url:
        why = pgcluster.missing()
        if why:
            sys.exit(f"--database {wanted}: {why}")
    return ("sqlite", "postgresql") if wanted == "both" else (wanted,)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller loads (10k-message folder)")
    parser.add_argument(
        "--database",
        choices=("sqlite", "postgresql", "both"),
        help="vpop3d's database (default: both when PostgreSQL's binaries are installed)",
    )
    parser.add_argument(
        "--database-url",
        help="PostgreSQL URL to use instead of a throw-away cluster (its schema is wiped)",
    )
    parser.add_argument("--only", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--servers", default="vpop3d,postfix,aiosmtpd,dovecot")
    parser.add_argument(
        "--profile", nargs="+", choices=SCENARIOS, default=[], help="py-spy vpop3d in these"
    )
    parser.add_argument("--big", type=int, help="messages in the large folder")
    parser.add_argument("--idlers", type=int, help="idle IMAP connections")
    args = parser.parse_args(argv)
    databases = choose_databases(args.database, args.database_url)
    opt = Options(
        args.quick,
        databases,
        args.database_url,
        tuple(args.only),
        tuple(args.servers.split(",")),
        tuple(args.profile),
    )
    if opt.quick:
        opt.scale_quick()
    opt.big = args.big or opt.big
    opt.idlers = args.idlers or opt.idlers
    plan = Plan(
        pop_users=tuple(f"pop{n}" for n in range(opt.pop_users)),
        imap_users=tuple(f"imap{n}" for n in range(opt.imap_users)),
        sink_users=tuple(f"sink{n}" for n in range(opt.smtp_connections)),
        big_count=opt.big,
        web_users=opt.web_users,
        outbound=opt.outbound,
    )
    info = machine()
    print(f"machine: {info['nproc']} CPUs ({info['cpu']}), {info['memory_gib']} GiB", flush=True)
    started = time.monotonic()
    rows: list[Row] = []
    (HERE / "results").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vpop3d-bench-") as tmp:
        Path(tmp).chmod(0o755)  # peers drop to their own users (postfix, nobody, postgres)
        pg = None
        if "postgresql" in databases and not args.database_url and "vpop3d" in opt.servers:
            pg = pgcluster.Cluster(Path(tmp))
            pg.start()
            print(f"PostgreSQL: throw-away cluster on 127.0.0.1:{pg.port} ({pg.bin})")
        try:
            for server in make_servers(opt, Path(tmp), pg):
                if any(NEEDS[s] in server.serves for s in opt.scenarios):
                    rows += run_server(server, plan, opt)
        finally:
            if pg is not None:
                pg.stop()
    print()
    print(table(rows))
    stamp = datetime.datetime.now(datetime.UTC)
    out = HERE / "results" / f"{stamp:%Y-%m-%dT%H%M%SZ}.json"
    out.write_text(
        json.dumps(
            {
                "date": stamp.isoformat(),
                "machine": info,
                "options": asdict(opt),
                "databases": list(databases),
                "seconds": time.monotonic() - started,
                "rows": [asdict(r) for r in rows],
            },
            indent=2,
        )
    )
    print(f"\n{len(rows)} rows in {time.monotonic() - started:.0f} s; JSON: {out}")


if __name__ == "__main__":
    main()
