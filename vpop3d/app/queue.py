"""The outbound queue runner: claim due recipients, send them, record every result.

Two lanes (seed-1 §14, seed-3 §17):

* **LAN forwarding** (``kind="lan"``): each recipient carries its own server; sent
  at once on :meth:`QueueRunner.kick` and retried every minute, whatever the schedule.
* **Internet** (``kind="internet"``): sent when a Connection runs, i.e. when a
  Connector Schedule item fires, or at once ("send immediately", default on) when
  mail arrives and a LAN connection is always online. Nothing leaves while the
  global switch ``schedule.enabled`` is off (spec check 7).

Safety rules: an entry is leased (``store.leases``) before it is sent, so two runs
or two processes never send it together; a lease that is not renewed expires, so a
killed process frees its entries. After each 250 the delivered recipients are
committed **before the next command is sent**, so a crash can at worst resend what
was accepted in the instant before the commit (RFC 5321 §6.1 accepts that window).
4xx and connection failures defer with the sender's retry gaps; 5xx, DNS
"no such domain" and expiry fail the recipient and produce one DSN, in the same
transaction that marks it failed.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Connection
from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredSemaphore
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.ssl import CertificateOptions, optionsForClientTLS
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from typing_extensions import override

from vpop3d.app import connectors as config
from vpop3d.app.dns import DNSFailure, MXHost, MXResolver
from vpop3d.app.queueresult import Ledger, Policy, RunReport, merge, relayed_notice, settle_entry
from vpop3d.app.settings import Settings
from vpop3d.core import batv
from vpop3d.core.domainfilter import Facts
from vpop3d.core.reply import Reply
from vpop3d.core.schedule import due_connections, gap_allows
from vpop3d.proto.smtp import client as smtp
from vpop3d.store import blobs as blob_repo
from vpop3d.store import connectors as connectors_repo
from vpop3d.store import leases
from vpop3d.store import queue as queue_repo
from vpop3d.store.db import Database
from vpop3d.store.queue import ClaimedEntry, DueRecipient

# Settings keys and defaults (list these for the admin UI).
LEASE_SECONDS = "queue.lease_seconds"  # 120
CLAIM_BATCH = 200  # entries leased per batch
POLL_SECONDS = "queue.poll_seconds"  # 60: how often due retries are looked for
LAN_RETRY = "lan.retry_minutes"  # "5,10,30,60,120,240"
LAN_MAX_RETRY_HOURS = "lan.max_retry_hours"  # 120
LAN_WARN_AFTER_HOURS = "lan.warn_after_hours"  # 4
MX_PORT = "queue.mx_port"  # 25; another port only for tests against loopback sinks
BATV_ENABLED = "batv.enabled"  # False
BATV_SECRET = "batv.secret"  # ""  # noqa: S105  a settings key, not a secret


class OutboundSession(Protocol):
    """What the runner needs of a connected client (tests give fakes)."""

    server_name: str

    async def send(self, message: smtp.OutboundMessage) -> smtp.MessageResult: ...

    async def quit(self) -> None: ...


Connect = Callable[..., Awaitable[OutboundSession]]
Signer = Callable[[bytes, str], bytes]  # (message, sender domain) -> signed message


def default_tls(verify: bool) -> Callable[[str], Any]:
    """TLS for the client: verified for configured relays that ask for it, else
    opportunistic without verification (RFC 7435: better than plaintext)."""
    if verify:
        return lambda name: optionsForClientTLS(name)
    return lambda _name: CertificateOptions(verify=False)


@dataclass(frozen=True, slots=True)
class Target:
    """A host to try: a relay, an MX host, an override or a LAN-forward server."""

    name: str
    addresses: tuple[str, ...]
    port: int = 25
    username: str | None = None
    password: str | None = field(default=None, repr=False)


@dataclass
class _Work:
    entry: ClaimedEntry
    recipients: list[DueRecipient]


def _describe(target: Target, reply: Reply) -> str:
    return (
        f"{target.name}: {reply.code} {reply.enhanced + ' ' if reply.enhanced else ''}{reply.text}"
    )


class QueueRunner(Service):
    """Background service sending the outbound queue (one per server)."""

    _log = Logger()

    def __init__(
        self,
        database: Database,
        blob_store: Any,
        settings: Settings,
        reactor: Any,
        *,
        hostname: str,
        resolver: MXResolver | None = None,
        connect: Connect | None = None,
        tls: Callable[[bool], Callable[[str], Any]] = default_tls,
        signer: Signer | None = None,
        local_time: Callable[[float], time.struct_time] = time.localtime,
        owner: str | None = None,
    ) -> None:
        self._db = database
        self._blobs = blob_store
        self._settings = settings
        self._reactor = reactor
        self._hostname = hostname
        self._resolver = resolver
        self._resolvers: dict[tuple[tuple[str, int], ...], MXResolver] = {}
        self._connect: Connect = connect or smtp.connect
        self._tls = tls
        self._signer = signer
        self._local_time = local_time
        self._owner = owner or f"{hostname}:{uuid.uuid4().hex[:12]}"
        self._seq = 0
        self._running: dict[str, Deferred[Any]] = {}
        self._again: set[str] = set()
        self._held: dict[int, str] = {}  # queue id -> lease owner, while sending
        self._last_scheduled: dict[int, float] = {}  # connection id -> last scheduled run
        self._history: dict[int, list[tuple[float, int]]] = {}  # sends: (time, recipients)
        self._loop: LoopingCall | None = None
        self._renewer: LoopingCall | None = None
        self._poller: LoopingCall | None = None
        self._first: IDelayedCall | None = None
        self._kick_call: IDelayedCall | None = None

    # ------------------------------------------------------------------ service

    @override
    def startService(self) -> None:
        super().startService()
        now = self._reactor.seconds()
        self._loop = LoopingCall(self.tick)
        self._loop.clock = self._reactor
        self._renewer = LoopingCall(self._renew)
        self._renewer.clock = self._reactor
        self._renewer.start(max(self._lease_ttl() / 3, 1.0), now=False).addErrback(
            lambda f: self._log.failure("lease renewal stopped", f)
        )
        self._poller = LoopingCall(self.poll)
        self._poller.clock = self._reactor
        self._poller.start(max(self._settings.get_int(POLL_SECONDS, 60), 1), now=False).addErrback(
            lambda f: self._log.failure("queue poll stopped", f)
        )
        # Tick at the start of each minute (the schedule has minute resolution).
        self._first = self._reactor.callLater(60 - now % 60, self._start_loop)
        # The first run has no Connection yet: make the default one (LAN, direct).
        made = self._db.write(connectors_repo.ensure_default)
        made.addCallbacks(
            lambda _id: self.kick() if self.running else None,
            lambda f: self._log.failure("cannot create the default connection", f),
        )

    def _start_loop(self) -> None:
        self._first = None
        assert self._loop is not None
        self._loop.start(60, now=True).addErrback(
            lambda f: self._log.failure("queue tick stopped", f)
        )

    @override
    def stopService(self) -> None:
        super().stopService()
        for call in (self._first, self._kick_call):
            if call is not None and call.active():
                call.cancel()
        for loop in (self._loop, self._renewer, self._poller):
            if loop is not None and loop.running:
                loop.stop()

    def kick(self) -> None:
        """New mail was queued: send what may go at once (called after the commit)."""
        if self._kick_call is not None and self._kick_call.active():
            return
        self._kick_call = self._reactor.callLater(0, self._kicked)

    def _kicked(self) -> None:
        self._kick_call = None
        self._spawn("lan", self.run_lan)
        self._spawn("immediate", self._immediate)

    def poll(self) -> None:
        """Every poll interval: due LAN retries, and Internet retries while online."""
        self._spawn("lan", self.run_lan)
        if self._settings.get_bool(config.RETRY_WHEN_ONLINE, True):
            self._spawn("immediate", self._immediate)

    def tick(self) -> Deferred[None]:
        """At each minute: the schedule items due now (seed-3 §17)."""
        return Deferred.fromCoroutine(self._scheduled())

    async def _scheduled(self) -> None:
        if not self._settings.get_bool(config.SCHEDULE_ENABLED, False):
            return
        snapshot = await self._db.read(config.load)
        queued = await self._db.read(queue_repo.waiting)
        local = self._local_time(self._reactor.seconds())
        weekday = (local.tm_wday + 1) % 7  # struct_time: Monday = 0; schedule: Sunday = 0
        due = due_connections(
            snapshot.schedule,
            local.tm_hour * 60 + local.tm_min,
            weekday,
            defaults=snapshot.defaults(),
            all_ids=list(snapshot.senders),
            queued=queued,
        )
        gap = self._settings.get_int(config.MIN_GAP_MINUTES, 0)
        now = self._now()
        for connection_id in sorted(due):
            if not gap_allows(self._last_scheduled.get(connection_id), now, gap):
                continue
            self._last_scheduled[connection_id] = now
            self._spawn(f"conn:{connection_id}", self._runner_for(connection_id))

    def _runner_for(self, connection_id: int) -> Callable[[], Coroutine[Any, Any, Any]]:
        async def run() -> RunReport:
            return await self._run_connection(connection_id)

        return run

    async def _immediate(self) -> None:
        if not self._settings.get_bool(config.SCHEDULE_ENABLED, False):
            return
        if not self._settings.get_bool(config.SEND_IMMEDIATELY, True):
            return
        snapshot = await self._db.read(config.load)
        chosen = self._settings.get(config.IMMEDIATE_CONNECTIONS, []) or []
        for connection_id in config.immediate_connections(snapshot, [int(c) for c in chosen]):
            await self._run_connection(connection_id)

    def _spawn(self, lane: str, job: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        if lane in self._running:
            self._again.add(lane)
            return
        d: Deferred[Any] = Deferred.fromCoroutine(job())
        self._running[lane] = d

        def done(result: object) -> None:
            self._running.pop(lane, None)
            if lane in self._again:
                self._again.discard(lane)
                self._spawn(lane, job)

        d.addErrback(lambda f: self._log.failure("queue run {lane} failed", f, lane=lane))
        d.addBoth(done)

    def idle(self) -> bool:
        """No run in progress (tests wait for this)."""
        return not self._running and (self._kick_call is None or not self._kick_call.active())

    # ------------------------------------------------------------------ leases

    def _lease_ttl(self) -> float:
        return float(self._settings.get_int(LEASE_SECONDS, 120))

    def _run_owner(self) -> str:
        self._seq += 1
        return f"{self._owner}:{self._seq}"

    def _renew(self) -> Deferred[None]:
        held = dict(self._held)
        if not held:
            return Deferred.fromCoroutine(_nothing())
        now, ttl = self._reactor.seconds(), self._lease_ttl()

        def renew_all(conn: Connection) -> None:
            for queue_id, owner in held.items():
                leases.renew(conn, f"{queue_repo.LEASE_PREFIX}{queue_id}", owner, now, ttl)

        return self._db.write(renew_all)

    async def _claim(self, kind: str, owner: str) -> list[ClaimedEntry]:
        def claim(conn: Connection) -> list[ClaimedEntry]:
            queue_repo.sweep_finished(conn)
            return queue_repo.claim_due(
                conn,
                now=self._now(),
                owner=owner,
                ttl=self._lease_ttl(),
                kind=kind,
                limit=CLAIM_BATCH,
            )

        claimed = await self._db.write(claim)
        for entry in claimed:
            self._held[entry.id] = owner
        return claimed

    # ------------------------------------------------------------------ LAN lane

    def run_lan(self) -> Coroutine[Any, Any, RunReport]:
        """Send every due LAN-forward recipient to its own server (no schedule)."""
        return self._run_lan()

    async def _run_lan(self) -> RunReport:
        report = await self._run_lan_batch()
        while report.claimed >= CLAIM_BATCH and report.delivered:
            more = await self._run_lan_batch()
            report = merge(report, more)
            if more.claimed < CLAIM_BATCH or not more.delivered:
                break
        return report

    async def _run_lan_batch(self) -> RunReport:
        owner = self._run_owner()
        claimed = await self._claim("lan", owner)
        report = RunReport(claimed=len(claimed))
        if not claimed:
            return report
        policy = Policy(
            retry_minutes=config.parse_retry_list(
                self._settings.get_str(LAN_RETRY, "5,10,30,60,120,240")
            ),
            max_retry_hours=float(self._settings.get(LAN_MAX_RETRY_HOURS, 120.0)),
            warn_after_hours=float(self._settings.get(LAN_WARN_AFTER_HOURS, 4.0)),
        )
        ledger = Ledger()
        groups: dict[str, list[_Work]] = {}
        for entry in claimed:
            by_route: dict[str, list[DueRecipient]] = {}
            for rcpt in entry.recipients:
                by_route.setdefault(rcpt.route, []).append(rcpt)
            for route, rcpts in by_route.items():
                groups.setdefault(route, []).append(_Work(entry, rcpts))
        try:
            for route, work in groups.items():
                target = _lan_target(route)
                options = smtp.ClientOptions(
                    helo_name=self._hostname,
                    tls=smtp.TLSMode.OPTIONAL,
                    tls_creator=self._tls(False),
                    username=target.username,
                    password=target.password,
                )
                connected = await self._send_group(
                    work, [target], _constant(options), policy, ledger, report, None
                )
                report.connected = report.connected or connected
        finally:
            await self._settle(claimed, ledger, policy, owner, report)
        return report

    # ------------------------------------------------------------------ connections

    def run_connection(self, connection_id: int) -> Coroutine[Any, Any, RunReport]:
        """Run one Connection's Mail Sender now (schedule, send-immediately, admin)."""
        return self._run_connection(connection_id)

    async def _run_connection(self, connection_id: int, depth: int = 0) -> RunReport:
        snapshot = await self._db.read(config.load)
        report = RunReport()
        sender = snapshot.senders.get(connection_id)
        if sender is None:
            why = snapshot.broken.get(connection_id, "no such connection")
            report.text = f"Sender configuration error: {why}"
            await self._db.write(
                connectors_repo.record_result, connection_id, report.text, self._now()
            )
            return report
        up = sender.kind == "command" and sender.up_command
        if up and not await self._command(sender.up_command):
            report.text = "Connect command failed"
            await self._record(connection_id, report)
            return await self._fallback(sender, report, depth)
        try:
            report = await self._send_connection(sender, snapshot)
            # seed-3 §15.1: when the batch is done, look again while full batches come.
            while report.claimed >= CLAIM_BATCH and report.delivered:
                more = await self._send_connection(sender, snapshot)
                report = merge(report, more)
                if more.claimed < CLAIM_BATCH or not more.delivered:
                    break
        finally:
            if sender.kind == "command" and sender.down_command:
                await self._command(sender.down_command)
        await self._record(connection_id, report)
        if report.attempted and not report.connected:
            return await self._fallback(sender, report, depth)
        return report

    async def _fallback(
        self, sender: config.SenderConfig, report: RunReport, depth: int
    ) -> RunReport:
        # seed-3 §1.5: total failure -> try another Connection at once.
        if sender.fallback_id is None or depth >= 3:
            return report
        self._log.info(
            "{name} failed totally; trying connection {other}",
            name=sender.name,
            other=sender.fallback_id,
        )
        return await self._run_connection(sender.fallback_id, depth + 1)

    async def _record(self, connection_id: int, report: RunReport) -> None:
        await self._db.write(connectors_repo.record_result, connection_id, report.text, self._now())

    async def _command(self, command: str) -> bool:
        from twisted.internet.utils import getProcessValue

        code = await getProcessValue("/bin/sh", ["-c", command], reactor=self._reactor)
        return int(code) == 0

    def _now(self) -> float:
        return float(self._reactor.seconds())

    async def _send_connection(
        self, sender: config.SenderConfig, snapshot: config.Snapshot
    ) -> RunReport:
        report = RunReport()
        policy = Policy(
            retry_minutes=sender.retry_minutes,
            max_retry_hours=sender.max_retry_hours,
            warn_after_hours=sender.warn_after_hours,
            max_rcpt_msg=sender.max_rcpt_msg,
            max_rcpt_session=sender.max_rcpt_session,
            max_msgs_session=sender.max_msgs_session,
            next_host_on_transient=sender.method != "relay",
            rate_msgs=sender.rate_msgs if sender.method == "relay" else (0, 0),
            rate_rcpts=sender.rate_rcpts if sender.method == "relay" else (0, 0),
            rate_key=sender.connection_id,
        )
        if sender.method == "relay" and not sender.relay_servers:
            # Spec check 6: an empty relay list sends nothing; mail stays queued.
            report.text = "No SMTP relay servers configured"
            return report
        owner = self._run_owner()
        claimed = await self._claim("internet", owner)
        report.claimed = len(claimed)
        ledger = Ledger()
        try:
            work = self._filtered(claimed, sender)
            if not work:
                report.text = "Nothing to send"
                return report
            options = self._options_factory(sender)
            return_path = self._return_path_factory(sender, snapshot)
            if sender.method == "relay":
                targets = [Target(s.host, (s.host,), s.port) for s in sender.relay_servers]
                report.connected = await self._send_group(
                    work, targets, options, policy, ledger, report, return_path
                )
            else:
                await self._send_direct(work, sender, options, policy, ledger, report, return_path)
        finally:
            await self._settle(claimed, ledger, policy, owner, report)
        if not report.text:
            report.text = (
                "Connection successful"
                if report.connected
                else f"Connection failed: {report.last_error or 'no server responded'}"
            )
        return report

    def _options_factory(
        self, sender: config.SenderConfig
    ) -> Callable[[Target], smtp.ClientOptions]:
        def make(target: Target) -> smtp.ClientOptions:
            relay = sender.method == "relay"
            return smtp.ClientOptions(
                helo_name=sender.ehlo_name or self._hostname,
                tls=sender.encryption if relay else smtp.TLSMode.OPTIONAL,
                tls_creator=self._tls(sender.tls_verify and relay),
                username=target.username or (sender.username if relay else None),
                password=target.password or (sender.password if relay else None),
                auth_method=sender.auth_method,
            )

        return make

    def _return_path_factory(
        self, sender: config.SenderConfig, snapshot: config.Snapshot
    ) -> Callable[[str], str]:
        batv_on = self._settings.get_bool(BATV_ENABLED, False)
        secret = self._settings.get_str(BATV_SECRET, "")

        def rewrite(original: str) -> str:
            path = config.return_path(original, sender, snapshot.local_domains)
            domain = path.rpartition("@")[2].lower()
            if batv_on and secret and path and domain in snapshot.local_domains:
                path = batv.sign(path, secret, self._now())
            return path

        return rewrite

    def _filtered(
        self, claimed: Sequence[ClaimedEntry], sender: config.SenderConfig
    ) -> list[_Work]:
        """Domain Filtering (seed-3 §16) and send order (seed-3 §15.2)."""
        script = sender.domain_filter
        now = self._now()
        work: list[_Work] = []
        for entry in claimed:
            base = Facts(
                size=entry.size,
                retries=min(r.attempts for r in entry.recipients),
                age_seconds=now - entry.created_at,
                authsender=entry.auth_user or "",
                sender=entry.sender,
            )
            keep = [
                r
                for r in entry.recipients
                if script is None
                or script.attempt(
                    Facts(
                        size=base.size,
                        retries=r.attempts,
                        age_seconds=base.age_seconds,
                        authsender=base.authsender,
                        sender=base.sender,
                        recipient=r.address,
                    )
                )
            ]
            if keep:
                work.append(_Work(entry, keep))
        if sender.smaller_first:
            work.sort(key=lambda w: (w.entry.size, w.entry.id))
        if sender.reverse_order:
            work.reverse()
        return work

    async def _send_direct(
        self,
        work: list[_Work],
        sender: config.SenderConfig,
        options: Callable[[Target], smtp.ClientOptions],
        policy: Policy,
        ledger: Ledger,
        report: RunReport,
        return_path: Callable[[str], str],
    ) -> None:
        # seed-3 §12: one transaction per recipient domain; messages to one domain
        # share a connection; at most mx_threads domains at a time.
        by_domain: dict[str, list[_Work]] = {}
        for item in work:
            split: dict[str, list[DueRecipient]] = {}
            for rcpt in item.recipients:
                split.setdefault(rcpt.address.rpartition("@")[2].lower(), []).append(rcpt)
            for domain, rcpts in split.items():
                by_domain.setdefault(domain, []).append(_Work(item.entry, rcpts))
        resolver = self._resolver_for(sender.dns_servers)
        semaphore = DeferredSemaphore(sender.mx_threads)

        async def one(domain: str, items: list[_Work]) -> None:
            retries = min(r.attempts for w in items for r in w.recipients)
            size = max(w.entry.size for w in items)
            try:
                hosts = await resolver.route(domain, sender.overrides, retries=retries, size=size)
            except DNSFailure as exc:
                # RFC 7505 §4.2 / RFC 3463: 556 5.1.10 null MX, 550 5.1.2 bad domain.
                reply = (
                    Reply(550, "5.1.2", str(exc))
                    if exc.permanent
                    else Reply(451, "4.4.3", str(exc))
                )
                for item in items:
                    for rcpt in item.recipients:
                        self._note(ledger, report, rcpt, reply, None)
                return
            mx_port = self._settings.get_int(MX_PORT, 25)
            targets = [
                Target(
                    h.name,
                    h.addresses,
                    mx_port if h.port == 25 else h.port,
                    h.username,
                    h.password,
                )
                for h in hosts
            ]
            connected = await self._send_group(
                items, targets, options, policy, ledger, report, return_path
            )
            report.connected = report.connected or connected

        jobs = [semaphore.run(one, domain, items) for domain, items in by_domain.items()]
        for job in jobs:
            await job

    def _resolver_for(self, servers: tuple[tuple[str, int], ...]) -> MXResolver:
        if not servers and self._resolver is not None:
            return self._resolver
        if servers not in self._resolvers:
            self._resolvers[servers] = MXResolver(self._reactor, servers)
        return self._resolvers[servers]

    # ------------------------------------------------------------------ sending

    def _note(
        self,
        ledger: Ledger,
        report: RunReport,
        rcpt: DueRecipient,
        reply: Reply,
        remote: str | None,
    ) -> None:
        if reply.is_permanent:
            ledger.failed[rcpt.id] = (rcpt, reply, remote)
            ledger.deferred.pop(rcpt.id, None)
        else:
            ledger.deferred[rcpt.id] = (rcpt, reply, remote)

    async def _data(self, entry: ClaimedEntry, cache: dict[int, bytes]) -> bytes:
        if entry.blob_id not in cache:
            data = await self._db.read(blob_repo.read_bytes, self._blobs, entry.blob_id)
            if self._signer is not None and entry.sender:
                data = self._signer(data, entry.sender.rpartition("@")[2].lower())
            cache[entry.blob_id] = data
        return cache[entry.blob_id]

    async def _send_group(
        self,
        work: list[_Work],
        targets: Sequence[Target],
        options: Callable[[Target], smtp.ClientOptions],
        policy: Policy,
        ledger: Ledger,
        report: RunReport,
        return_path: Callable[[str], str] | None,
    ) -> bool:
        """Try ``targets`` in order until the work is done; True if any TCP session worked."""
        pending = [(w.entry, list(w.recipients)) for w in work]
        report.attempted += sum(len(r) for _, r in pending)
        last = Reply(421, "4.4.1", "no host to try")
        connected = False
        cache: dict[int, bytes] = {}
        for target in targets:
            if not pending:
                break
            session: OutboundSession | None = None
            responded = False
            for address in target.addresses:
                try:
                    session = await self._connect(
                        self._reactor,
                        address,
                        target.port,
                        options(target),
                        server_name=target.name,
                    )
                    break
                except smtp.SMTPSessionError as exc:
                    last, responded = exc.reply, exc.responded
                    self._log.info(
                        "{target} ({address}): {reply}",
                        target=target.name,
                        address=address,
                        reply=str(exc.reply),
                    )
                    if exc.responded:
                        break
            if session is None:
                if responded and not policy.next_host_on_transient:
                    break  # a relay that answered and refused: not the next one (seed-3 §10)
                continue
            connected = True
            pending, last = await self._session(
                session, target, pending, policy, ledger, report, return_path, cache
            )
            if not policy.next_host_on_transient:
                break
        if pending:
            report.last_error = last.text
        for _entry, rcpts in pending:
            for rcpt in rcpts:
                if rcpt.id not in ledger.failed and rcpt.id not in ledger.delivered:
                    self._note(ledger, report, rcpt, last, None)
        return connected

    async def _session(
        self,
        session: OutboundSession,
        target: Target,
        pending: list[tuple[ClaimedEntry, list[DueRecipient]]],
        policy: Policy,
        ledger: Ledger,
        report: RunReport,
        return_path: Callable[[str], str] | None,
        cache: dict[int, bytes],
    ) -> tuple[list[tuple[ClaimedEntry, list[DueRecipient]]], Reply]:
        """Send over one session; returns what should go to the next host."""
        next_host: list[tuple[ClaimedEntry, list[DueRecipient]]] = []
        last = Reply(421, "4.4.2", f"{target.name}: session ended")
        messages = recipients = 0
        queue = list(pending)
        try:
            while queue:
                entry, rcpts = queue.pop(0)
                chunk_size = policy.max_rcpt_msg or len(rcpts)
                chunks = [rcpts[i : i + chunk_size] for i in range(0, len(rcpts), chunk_size)]
                retry_here: list[DueRecipient] = []
                while chunks:
                    limited = (
                        (policy.max_msgs_session and messages >= policy.max_msgs_session)
                        or (policy.max_rcpt_session and recipients >= policy.max_rcpt_session)
                        or self._rate_limited(policy, len(chunks[0]))
                    )
                    if limited:
                        # seed-3 §11: drop the session; the rest waits for the next run.
                        leftover = [r for c in chunks for r in c]
                        report.attempted -= len(leftover)
                        for _e, later in queue:
                            report.attempted -= len(later)
                        queue = []
                        break
                    chunk = chunks.pop(0)
                    data = await self._data(entry, cache)
                    sender = return_path(entry.sender) if return_path else entry.sender
                    message = smtp.OutboundMessage(
                        sender=sender,
                        recipients=tuple(
                            smtp.OutboundRecipient(r.address, r.notify, r.orcpt) for r in chunk
                        ),
                        data=data,
                        envid=entry.envid,
                        ret=entry.ret,
                        body_type=entry.body_type,
                        smtputf8=entry.smtputf8,
                    )
                    try:
                        result = await session.send(message)
                    except smtp.SMTPSessionError as exc:
                        last = exc.reply
                        next_host.append((entry, [*chunk, *(r for c in chunks for r in c)]))
                        next_host.extend(queue)
                        return next_host, last
                    messages += 1
                    recipients += len(chunk)
                    if policy.rate_key is not None:
                        self._history.setdefault(policy.rate_key, []).append(
                            (self._now(), len(chunk))
                        )
                    by_address = {r.address: r for r in chunk}
                    accepted = [by_address[a] for a, reply in result.recipients if reply.is_success]
                    if accepted:
                        reply = next(r for a, r in result.recipients if r.is_success)
                        # Commit before anything else is sent: never twice after a 250.
                        await self._db.write(
                            queue_repo.mark_delivered,
                            [r.id for r in accepted],
                            _describe(target, reply),
                            self._now(),
                        )
                        ledger.delivered.update(r.id for r in accepted)
                        report.delivered += len(accepted)
                        dsn_capable = "DSN" in getattr(session, "extensions", {})
                        for rcpt in accepted:
                            ledger.deferred.pop(rcpt.id, None)
                            # RFC 3461 §5.2.2: a server without DSN cannot report success
                            # for us; say "relayed" ourselves if the sender asked.
                            if "SUCCESS" in rcpt.notify.upper() and not dsn_capable:
                                ledger.relayed[rcpt.id] = (rcpt, target.name)
                    for address, reply in result.recipients:
                        if reply.is_success:
                            continue
                        rcpt = by_address[address]
                        remote = target.name
                        wrapped = Reply(reply.code, reply.enhanced, _describe(target, reply))
                        if reply.is_transient and policy.next_host_on_transient:
                            retry_here.append(rcpt)
                            last = wrapped
                        self._note(ledger, report, rcpt, wrapped, remote)
                if retry_here:
                    next_host.append((entry, retry_here))
        finally:
            await session.quit()
        return next_host, last

    def _rate_limited(self, policy: Policy, next_recipients: int) -> bool:
        """seed-3 §11 "Max messages/recipients: X per Y minutes" (sliding window)."""
        if policy.rate_key is None:
            return False
        history = self._history.get(policy.rate_key, [])
        now = self._now()
        longest = max(policy.rate_msgs[1], policy.rate_rcpts[1]) * 60
        history[:] = [item for item in history if now - item[0] < longest]
        count, minutes = policy.rate_msgs
        if count and minutes:
            recent = [t for t, _n in history if now - t < minutes * 60]
            if len(recent) >= count:
                return True
        count, minutes = policy.rate_rcpts
        if count and minutes:
            recent_rcpts = sum(n for t, n in history if now - t < minutes * 60)
            if recent_rcpts + next_recipients > count and recent_rcpts:
                return True
        return False

    # ------------------------------------------------------------------ results

    async def _settle(
        self,
        claimed: Sequence[ClaimedEntry],
        ledger: Ledger,
        policy: Policy,
        owner: str,
        report: RunReport,
    ) -> None:
        now = self._now()
        hostname = self._hostname
        blobs = self._blobs

        def settle(conn: Connection) -> int:
            notices = 0
            for entry in claimed:
                ids = {r.id for r in entry.recipients}
                failed = [v for k, v in ledger.failed.items() if k in ids]
                deferred = [v for k, v in ledger.deferred.items() if k in ids]
                notices += settle_entry(
                    conn, blobs, entry, failed, deferred, policy, now, hostname, report
                )
                relayed = [v for k, v in ledger.relayed.items() if k in ids]
                if relayed:
                    notices += relayed_notice(conn, blobs, entry, relayed, now, hostname)
                queue_repo.finish(conn, entry.id)
                queue_repo.release(conn, entry.id, owner)
            return notices

        try:
            report.notices += await self._db.write(settle)
        finally:
            for entry in claimed:
                self._held.pop(entry.id, None)
        if report.notices:
            self.kick()


def _constant(options: smtp.ClientOptions) -> Callable[[Target], smtp.ClientOptions]:
    return lambda _target: options


async def _nothing() -> None:
    return None


def _lan_target(route: str) -> Target:
    data = json.loads(route) if route else {}
    server = str(data.get("server", ""))
    return Target(
        server,
        (server,),
        int(data.get("port") or 25),
        data.get("username") or None,
        data.get("password") or None,
    )


__all__ = ["MXHost", "QueueRunner", "RunReport", "Target", "default_tls"]
