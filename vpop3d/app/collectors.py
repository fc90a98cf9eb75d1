"""Mail Collectors: download from ISP POP3 mailboxes, route and store (seed-3 §2-§7).

One run (:meth:`CollectorRunner.run`) follows seed-3 §3.6: connect, STLS/TLS,
authenticate, UIDL + LIST, update the Messages tab, then per message decide
(Del flag, already stored, over-size, download), ``RETR`` into a spool, route
(seed-3 §5), and store. The UIDL is marked stored **in the same transaction**
that files the message (mailboxes and queue), and ``DELE`` is sent only after
that commit; deletions count only after ``QUIT`` (RFC 1939 §6). So a drop at
any point re-downloads nothing that was stored and loses nothing that was not.

Unroutable mail goes to the Routing Errors target (default: the Main
Administrator), never dropped unless the collector says Ignore (seed-3 §6).

Download Rules that keep a message at the server remember it on the Messages tab:
Ignore and Reject (after one failure report to the sender) until Leave on Server
expires; Query (after one notice to the recipients) until the administrator presses
Download or Delete there, or the Query Download Delay expires (seed-3 §4.3, §4.6).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from sqlalchemy import Connection
from twisted.internet import endpoints, ssl
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from vpop3d.app import etrn
from vpop3d.app.collectorconfig import CollectorConfig, RunResult, config_from_row
from vpop3d.app.collectornotices import CollectorNotices
from vpop3d.app.collectorroute import drop_mbox_from
from vpop3d.app.collectorrouting import MAIN_ADMIN, DownloadRouter, Routed
from vpop3d.app.delivery import Delivery, DeliveryPlan, DeliverySpool
from vpop3d.app.downloadrules import Facts, Rule, Verdict, evaluate
from vpop3d.app.etrn import ETRNError
from vpop3d.app.mailstore import FolderTarget, store_message
from vpop3d.app.odmr import ATRNError
from vpop3d.app.routing import Router
from vpop3d.core.mapping import LocalDomains, Source
from vpop3d.core.message import header_values, return_path_header, scan_headers
from vpop3d.core.mime import analyse
from vpop3d.ports import ChangeNotifier, MailboxChanged
from vpop3d.proto.pop3.client import POP3Client, POP3Error, TLSMode
from vpop3d.store import collectors as repo
from vpop3d.store import leases
from vpop3d.store import queue as queue_repo
from vpop3d.store.blobs import BlobStore
from vpop3d.store.blobs import Spool as StoreSpool
from vpop3d.store.db import Database
from vpop3d.store.rows import Message

__all__ = ["COLLECT_NOW", "CollectorConfig", "CollectorRunner", "RunResult", "config_from_row"]

DAY = 86400.0
LEASE_TTL = 900.0
# Query actions (seed-3 §4.3, §4.6): the message stays at the server and its recipients
# are told; the administrator decides on the Messages tab (Download sets the Get flag,
# Delete the Del flag). Without a decision it is deleted after the Query Download Delay.
QUERY_ACTIONS = {"query", "redirect-query", "copy-query"}
# What a granted query does instead (the rule's Orig/Targets/both, §4.3).
GRANTED = {"query": "download", "redirect-query": "redirect", "copy-query": "copy"}
# Deletion notices (§4.3 Delete and Warn ...): to Orig, Targets, or both.
WARNINGS = {"delete-and-warn", "delete-and-warn-other", "delete-and-copy-warning"}
# Messages tab states of messages a rule left at the server without downloading them.
HELD = {"ignored", "queried", "rejected"}
QUERY_DELAY_DAYS = "collectors.query_download_delay_days"  # "Query Download Delay", 14
COLLECT_NOW = "collectors.collect_now."  # + id: UNIX time of a "collect now" request
TOO_BIG_TARGET = "collectors.too_big_target"  # message target "pop3downloadtoobig"
_BOUNDARY = b"=_vpop3d-routing-error"
HOLD_OBSOLETE_DAYS = "collectors.hold_obsolete_uidl_days"  # default 3 (seed-3 §3.4)


class CollectorRunner:
    """Runs collectors: on demand (``run``), and for the Connector Schedule."""

    _log = Logger()

    def __init__(
        self,
        database: Database,
        blob_store: BlobStore,
        delivery: Delivery,
        router: Router,
        notifier: ChangeNotifier,
        settings: Any,
        *,
        reactor: Any,
        hostname: str,
        queue_kick: Any = None,
        timeout: float = 60.0,
        now: Any = None,
        smtp_factory: Any = None,
        inbound_sessions: Callable[[], int] | None = None,
    ) -> None:
        self._db = database
        self._blobs = blob_store
        self._delivery = delivery
        self._router = router
        self._notifier = notifier
        self._settings = settings
        self._reactor = reactor
        self._clock: IReactorTime = reactor
        self._hostname = hostname
        self._kick = queue_kick
        self._timeout = timeout
        self._now = now or reactor.seconds
        self._routing = DownloadRouter(router, settings)
        self._smtp_factory = smtp_factory  # our SMTP server, for ATRN turn-around
        self._inbound = inbound_sessions  # open inbound SMTP sessions (feed "wait N s")
        self._running: dict[int, Deferred[RunResult]] = {}
        self._owner = f"collector-{secrets.token_hex(6)}"

    # ------------------------------------------------------------ entry points

    def run(self, collector_id: int) -> Deferred[RunResult]:
        """Collect now; a run already in progress for this collector is shared."""
        if collector_id in self._running:
            return succeed(RunResult(False, "collector is already running"))
        deferred = Deferred.fromCoroutine(self._run(collector_id))
        self._running[collector_id] = deferred

        def done(result: Any) -> Any:
            self._running.pop(collector_id, None)
            return result

        deferred.addBoth(done)
        return deferred

    async def run_named(self, name: str) -> RunResult:
        row = await self._db.read(repo.by_name, name)
        if row is None:
            raise KeyError(name)
        return await self.run(int(row["id"]))

    async def run_for_connections(self, connection_ids: set[int]) -> list[RunResult]:
        """The schedule fired these Connections: run their enabled collectors by priority."""
        rows = await self._db.read(repo.list_all)
        results: list[RunResult] = []
        for row in rows:
            config = config_from_row(row)
            if not config.enabled:
                continue
            if config.connection_ids and not set(config.connection_ids) & connection_ids:
                continue
            results.append(await self.run(config.id))
        return results

    # ------------------------------------------------------------ one run

    async def _run(self, collector_id: int) -> RunResult:
        row = await self._db.read(repo.by_id, collector_id)
        if row is None:
            return RunResult(False, "no such collector")
        config = config_from_row(row)
        lease = f"collector:{collector_id}"
        got = await self._db.write(leases.acquire, lease, self._owner, self._now(), LEASE_TTL)
        if not got:
            return RunResult(False, "collector is already running elsewhere")
        result = RunResult()
        try:
            if config.kind == "pop3":
                await self._pop3(config, result)
            elif config.kind == "smtp-feed":
                result.text = await self._feed(config)
            elif config.kind == "odmr" and self._smtp_factory is not None:
                from vpop3d.app.odmr import ODMR_PORT, run_atrn

                port = config.port if config.port not in (0, 110) else ODMR_PORT
                where = config.server if ":" in config.server else f"{config.server}:{port}"
                result.text = await run_atrn(
                    self._reactor,
                    where,
                    helo=self._hostname,
                    username=config.username,
                    password=config.password,
                    domains=config.odmr_domains,
                    smtp_factory=self._smtp_factory,
                    timeout=self._timeout,
                )
            else:
                result.ok = False
                result.text = f"collector type {config.kind!r} is not supported here"
        except (POP3Error, ETRNError, ATRNError) as exc:
            result.ok = False
            result.text = str(exc)
        except Exception as exc:  # noqa: BLE001 - any failure must reach last_result
            result.ok = False
            result.text = f"{type(exc).__name__}: {exc}"
            self._log.failure("collector {name} failed", name=config.name)
        finally:
            await self._db.write(leases.release, lease, self._owner)
        if result.ok and not result.text:
            result.text = (
                f"OK: {result.listed} listed, {result.downloaded} downloaded, "
                f"{result.deleted} deleted"
            )
        if not result.ok:
            self._log.warn("collector {name}: {text}", name=config.name, text=result.text)
        await self._db.write(repo.record_result, collector_id, result.text, self._now())
        return result

    async def _feed(self, config: CollectorConfig) -> str:
        """Incoming SMTP Mail Feed (seed-3 §8): ETRN if configured, then keep the run
        open up to "wait N seconds" so the ISP can deliver before we move on."""
        parts: list[str] = []
        if config.etrn_server or config.etrn_argument:
            parts.append(
                await etrn.send_etrn(
                    self._reactor,
                    config.etrn_server,
                    config.etrn_argument,
                    helo=self._hostname,
                    timeout=self._timeout,
                )
            )
        if config.wait_seconds > 0:
            waited = await etrn.wait_for_feed(self._clock, config.wait_seconds, self._inbound)
            parts.append(waited if parts else f"OK: {waited}")
        return "; ".join(parts) or "OK: nothing to do (no ETRN server, no wait)"

    async def _connect(self, config: CollectorConfig) -> POP3Client:
        client = POP3Client(self._clock, self._timeout)
        host = config.server
        if config.tls_mode is TLSMode.IMPLICIT:
            endpoint: Any = endpoints.SSL4ClientEndpoint(
                self._reactor, host, config.port, self._tls(config), timeout=self._timeout
            )
        else:
            endpoint = endpoints.TCP4ClientEndpoint(
                self._reactor, host, config.port, timeout=self._timeout
            )
        try:
            await endpoints.connectProtocol(endpoint, client)
        except Exception as exc:
            raise POP3Error(f"cannot connect to {host}:{config.port}: {exc}") from exc
        client.secure = config.tls_mode is TLSMode.IMPLICIT
        await client.greeting
        return client

    @staticmethod
    def _tls(config: CollectorConfig) -> Any:
        if config.tls_verify:
            return ssl.optionsForClientTLS(config.server)
        return ssl.CertificateOptions()

    async def _login(self, client: POP3Client, config: CollectorConfig) -> None:
        if config.tls_mode in (TLSMode.REQUIRED, TLSMode.OPTIONAL):
            capabilities = [c.split()[0].upper() for c in await client.capa() if c.split()]
            if "STLS" in capabilities:
                await client.stls(self._tls(config))
            elif config.tls_mode is TLSMode.REQUIRED:
                # seed-3 §3.1: refuse to continue; never send credentials in the clear.
                raise POP3Error("server does not offer STLS; not sending credentials")
        method = config.auth_method
        if method in ("apop",):
            await client.login_apop(config.username, config.password)
        elif method in ("cram-md5", "cram_md5"):
            await client.login_cram_md5(config.username, config.password)
        elif method == "plain":
            await client.login_user(config.username, config.password)
        else:
            raise POP3Error(f"authentication method {method!r} is not supported")

    async def _pop3(self, config: CollectorConfig, result: RunResult) -> None:
        client = await self._connect(config)
        try:
            await self._login(client, config)
            await self._session(client, config, result)
        except BaseException:
            client.abort()
            raise

    async def _session(
        self, client: POP3Client, config: CollectorConfig, result: RunResult
    ) -> None:
        try:
            listing = await client.uidl()
            have_uidl = True
        except POP3Error:
            if config.leave_days > 0:
                raise POP3Error(
                    "server does not support UIDL; set Leave Messages on Server to 0"
                ) from None
            listing, have_uidl = [], False
        sizes = await client.list_sizes()
        if not have_uidl:
            listing = [(number, "") for number in sorted(sizes)]
        keys = _keys(listing)
        result.listed = len(keys)
        now = self._now()
        if have_uidl:
            await self._db.write(repo.see, config.id, [key for _n, key in keys], now)
        known: dict[str, dict[str, Any]] = await self._db.read(repo.uidls, config.id)
        to_delete: list[tuple[int, str]] = []
        seen_hashes: set[str] = set()
        still_here = await self._local_copies(config, known)
        rules: list[Rule] = []
        if config.use_rules:
            rules = [Rule.from_row(row) for row in await self._db.read(repo.list_rules)]
        renewed = self._clock.seconds()
        for number, key in keys:
            if self._clock.seconds() - renewed > LEASE_TTL / 3:  # long sessions keep the lock
                renewed = self._clock.seconds()
                await self._db.write(
                    leases.renew, f"collector:{config.id}", self._owner, self._now(), LEASE_TTL
                )
            state = known.get(key) if have_uidl else None
            if state is not None and state["del_flag"]:
                to_delete.append((number, key))
                continue
            if state is not None and state["stored"] and not state["get_flag"]:
                if self._due(state, config, now) or _gone_locally(state, still_here, config):
                    to_delete.append((number, key))
                else:
                    result.skipped += 1
                continue
            if state is not None and state["disposition"] in HELD and not state["get_flag"]:
                # Ignore/Reject: removed after LoS days; Query: after QDD (seed-3 §4.3).
                if self._held_due(state, config, now):
                    to_delete.append((number, key))
                else:
                    result.skipped += 1
                continue
            if config.max_messages and result.downloaded >= config.max_messages:
                result.skipped += 1
                continue
            size = sizes.get(number, 0)
            if config.max_size_kb and size > config.max_size_kb * 1024:
                # seed-3 §3.3: not downloaded, stays on the server; one notice per UIDL.
                if state is None or state["disposition"] != "too_big":
                    await self._notify_too_big(client, config, number, size)
                if have_uidl:
                    await self._db.write(repo.set_disposition, config.id, key, "too_big")
                result.skipped += 1
                continue
            verdict: Verdict | None = None
            getting = state is not None and bool(state["get_flag"])
            granted = getting and state is not None and state["disposition"] == "queried"
            if config.use_rules and (granted or not getting):
                remembered = key if have_uidl else ""
                verdict = await self._rules(
                    client, config, number, size, rules, remembered, granted
                )
                if not verdict.downloads:
                    if verdict.delete_now:
                        to_delete.append((number, key))
                    elif have_uidl:
                        held = _held_disposition(verdict.action)
                        await self._db.write(repo.set_disposition, config.id, key, held)
                    result.skipped += 1
                    continue
            stored = await self._download(client, config, number, key, seen_hashes, result, verdict)
            immediate = verdict is not None and verdict.delete_now
            if stored and (config.leave_days == 0 or not have_uidl or immediate):
                to_delete.append((number, key))
        for number, _key in to_delete:
            await client.dele(number)
        await client.quit()
        if to_delete and have_uidl:
            await self._db.write(repo.mark_deleted, config.id, [key for _n, key in to_delete])
        result.deleted = len(to_delete)
        if have_uidl:  # "Hold Obsolete UIDLs for X days" (seed-3 §3.4)
            hold = float(self._settings.get(HOLD_OBSOLETE_DAYS, 3))
            await self._db.write(repo.forget_missing, config.id, now - max(hold, 0.0) * DAY)

    async def _local_copies(
        self, config: CollectorConfig, known: dict[str, dict[str, Any]]
    ) -> set[int]:
        if not config.delete_when_deleted_locally:
            return set()
        ids = {int(i) for row in known.values() for i in str(row["message_ids"]).split() if i}
        found: set[int] = await self._db.read(repo.existing_messages, ids)
        return found

    def _held_due(self, state: dict[str, Any], config: CollectorConfig, now: float) -> bool:
        """Is a rule-held message due for removal? A query waits for the Query Download
        Delay (default 14 days, overriding a shorter Leave on Server, seed-6 L10963);
        Ignore and Reject follow Leave on Server, counted from first sight (§3.4)."""
        if state["disposition"] == "queried":
            delay = max(float(self._settings.get(QUERY_DELAY_DAYS, 14) or 0), 0.0)
            days = max(delay, float(config.leave_days))
            return bool(now - float(state["first_seen"]) >= days * DAY)
        return self._due(state, config, now)

    @staticmethod
    def _due(state: dict[str, Any], config: CollectorConfig, now: float) -> bool:
        """Leave Messages on Server: age counts from the first download (seed-3 §3.4)."""
        if config.leave_days <= 0:
            return True
        since = state["retrieved_at"] or state["first_seen"]
        return bool(now - float(since) >= config.leave_days * DAY)

    async def _download(
        self,
        client: POP3Client,
        config: CollectorConfig,
        number: int,
        key: str,
        seen_hashes: set[str],
        result: RunResult,
        verdict: Verdict | None = None,
    ) -> bool:
        """RETR, route and store one message; True once it is safely stored here."""
        body = DeliverySpool(None)
        digest = hashlib.sha256()
        first = [True]

        def sink(line: bytes) -> None:
            if first[0]:
                first[0] = False
                if config.options.ignore_from_line and drop_mbox_from(line):
                    return
            digest.update(line)
            body.write(line)

        try:
            if verdict is not None and "headers-only" in verdict.action:
                for line in (await client.top(number, 0)).splitlines(keepends=True):
                    sink(line)  # Headers only (seed-3 §4.3)
            else:
                await client.retr(number, sink)
            head = body.head()
            headers = scan_headers(head)
            duplicate = False
            if config.remove_duplicates:
                fingerprint = digest.hexdigest()
                duplicate = fingerprint in seen_hashes
                seen_hashes.add(fingerprint)
            routed = await self._routing.route(config, headers)
            if verdict is not None:
                await self._routing.apply_verdict(config, routed, verdict)
            if duplicate:
                routed.decisions, routed.bounce_to = [], ""
                routed.error = "duplicate in this session"
            info = _tab_info(headers, routed, body.size)
            stored = await self._store(config, key, body, routed, info)
        finally:
            body.discard()
        result.downloaded += 1
        if routed.error and not duplicate:
            result.routing_errors += 1
            self._log.warn(
                "collector {name}: message {key}: {why}",
                name=config.name,
                key=key,
                why=routed.error,
            )
        for message in stored:
            self._notifier.publish(MailboxChanged(message.folder_id, message.modseq))
        return True

    async def _rules(
        self,
        client: POP3Client,
        config: CollectorConfig,
        number: int,
        size: int,
        rules: list[Rule],
        key: str = "",
        granted: bool = False,
    ) -> Verdict:
        """TOP n 0, compute the recipients, run the Download Rules (seed-3 §4), and send
        the notices the action calls for (query, deletion warning, reject DSN).

        ``granted``: the administrator pressed Download for a queried message, so a
        query action now downloads to whom it would have asked (§4.6)."""
        head = await client.top(number, 0)
        headers = scan_headers(head)
        routed = await self._routing.route(config, headers)
        local = time.localtime(self._now())
        facts = Facts(
            headers=headers,
            size=size,
            collector_name=config.name,
            collector_id=config.id,
            recipients=tuple(routed.recipients),
            valid=0 if routed.error else len(routed.recipients),
            invalid=len(routed.invalid),
            hour_minute=local.tm_hour * 60 + local.tm_min,
            weekday_sun1=(local.tm_wday + 1) % 7 + 1,
        )
        verdict = evaluate(rules, facts)
        if verdict.rule:
            self._log.info(
                "collector {name}: rule {rule} -> {action} for message {n}",
                name=config.name,
                rule=verdict.rule,
                action=verdict.action,
                n=number,
            )
        if granted:
            if verdict.action in GRANTED:
                verdict.action = GRANTED[verdict.action]
            elif not verdict.downloads:  # the rules changed since: the decision stands
                verdict = Verdict(rule=verdict.rule)
            return verdict
        if not key and (verdict.action in QUERY_ACTIONS or verdict.action == "reject"):
            # Without UIDL nothing remembers the message: its notice would repeat at
            # every run. Leave it on the server untouched instead (Ignore).
            self._log.warn(
                "collector {name}: {action} needs a server with UIDL; message {n} is "
                "left on the server (Ignore)",
                name=config.name,
                action=verdict.action,
                n=number,
            )
            verdict.action = "ignore"
            return verdict
        snapshot = await self._router.snapshot()
        notices = CollectorNotices(
            self._delivery,
            self._db,
            self._blobs,
            self._hostname,
            local_domains=LocalDomains.of(
                snapshot.domains.entries + LocalDomains.parse(config.accepted_domains).entries
            ),
            collector_id=config.id,
            reply_domain=_reply_domain(snapshot.default_domain, snapshot.domains.entries),
        )
        when = self._now()
        if verdict.action in QUERY_ACTIONS:
            to = await self._qualify(_notice_recipients(verdict, routed.recipients))
            delay = int(float(self._settings.get(QUERY_DELAY_DAYS, 14) or 0))
            await notices.query(config, key, head, to, verdict.rule, delay, when)
        elif verdict.action in WARNINGS:
            to = await self._qualify(_notice_recipients(verdict, routed.recipients))
            await notices.deleted(config, head, to, verdict.rule, when)
        elif verdict.action == "reject":
            await notices.reject(config, head, routed.sender, routed.recipients, verdict, when)
        return verdict

    async def _qualify(self, names: list[str]) -> list[str]:
        """Local names (``fred``, a rule's ``fred Customers`` target) as addresses."""
        if all("@" in name for name in names):
            return names
        snapshot = await self._router.snapshot()
        return [name if "@" in name else f"{name}@{snapshot.default_domain}" for name in names]

    # ------------------------------------------------------------ storing

    async def _store(
        self,
        config: CollectorConfig,
        key: str,
        body: DeliverySpool,
        routed: Routed,
        info: dict[str, Any],
    ) -> list[Message]:
        """One transaction: mailboxes, queue rows and the UIDL marked stored."""
        plan: DeliveryPlan | None = None
        if routed.decisions:
            decisions = await self._delivery.expand_lists(routed.decisions)
            snapshot = await self._router.snapshot()
            plan = self._delivery.plan(None, routed.sender, decisions, snapshot)
        queue_id = secrets.token_hex(8)
        trace = self._received(config, queue_id) + routed.extra_headers
        if routed.error:
            trace += f"X-VPOP3-Routing-Error: {routed.error}\r\n".encode()
        local: tuple[StoreSpool, str] | None = None
        queued: StoreSpool | None = None
        suffix = b""
        try:
            if plan is not None and plan.user_ids:
                prefix = trace + return_path_header(routed.sender)
                if routed.wrap:  # seed-3 §6 option 1: an error notice, message attached
                    prefix = trace + return_path_header("") + self._error_notice(config, routed)
                    suffix = b"\r\n--" + _BOUNDARY + b"--\r\n"
                local = await self._db.call_in_pool(self._build, prefix, body, True, suffix)
            if plan is not None and plan.queue_entries:
                built = await self._db.call_in_pool(self._build, trace, body, False)
                queued = built[0]
            stored: list[Message] = await self._db.write(
                self._commit, config.id, key, plan, routed, local, queued, info, self._now()
            )
        except BaseException:
            for leftover in (local[0] if local else None, queued):
                if leftover is not None:
                    leftover.discard()
            raise
        if plan is not None and plan.queue_entries and callable(self._kick):
            self._kick()
        if routed.bounce_to:
            await self._bounce(config, routed, body)
        return stored

    def _error_notice(self, config: CollectorConfig, routed: Routed) -> bytes:
        """Headers and text of the Routing Errors notice; the message follows as an
        RFC 2046 §5.2.1 message/rfc822 part."""
        boundary = _BOUNDARY.decode()
        when = format_datetime(datetime.fromtimestamp(self._now(), UTC))
        found = ", ".join(routed.recipients + routed.invalid) or "none"
        return (
            f"From: Mail Collector {_comment(config.name)} <>\r\n"
            f"Subject: Routing error in Mail Collector {_comment(config.name)}\r\n"
            f"Date: {when}\r\nAuto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n"
            f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
            f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            f"The attached message could not be routed: {routed.error}.\r\n"
            f"Sender: {routed.sender or '(none)'}\r\nAddresses found: {found}\r\n\r\n"
            f"--{boundary}\r\nContent-Type: message/rfc822\r\n\r\n"
        ).encode()

    async def _bounce(self, config: CollectorConfig, routed: Routed, body: DeliverySpool) -> None:
        """seed-3 §6 Bounce: a failure notice to the sender, from the null path."""
        if not routed.bounce_to or routed.bounce_to == "<>":
            return
        head = body.head(16 * 1024).split(b"\r\n\r\n", 1)[0]
        text = (
            (
                f"From: Mail Delivery System <>\r\nTo: <{routed.bounce_to}>\r\n"
                "Subject: Undeliverable: your message had no valid recipient\r\n"
                f"Date: {format_datetime(datetime.fromtimestamp(self._now(), UTC))}\r\n"
                "Auto-Submitted: auto-replied\r\n\r\n"
                f"Your message, collected by {_comment(config.name)}, named no recipient\r\n"
                "known here and was not delivered. Its headers were:\r\n\r\n"
            ).encode()
            + head
            + b"\r\n"
        )
        notice = DeliverySpool(None)
        notice.write(text)
        try:
            await self._delivery.inject("", [routed.bounce_to], notice, source=Source.SMTP)
        except Exception:  # noqa: BLE001 - the message is handled; the bounce is extra
            self._log.failure("collector {name}: bounce failed", name=config.name)

    def _build(
        self, prefix: bytes, body: DeliverySpool, summary: bool, suffix: bytes = b""
    ) -> tuple[StoreSpool, str]:
        spool = self._blobs.new_spool()
        try:
            spool.write(prefix)
            for chunk in body.chunks():
                spool.write(chunk)
            spool.write(suffix)
            self._blobs.prepare(spool)
            text = analyse(spool.read_all()).to_json() if summary else ""
        except BaseException:
            spool.discard()
            raise
        return spool, text

    def _commit(
        self,
        conn: Connection,
        collector_id: int,
        key: str,
        plan: DeliveryPlan | None,
        routed: Routed,
        local: tuple[StoreSpool, str] | None,
        queued: StoreSpool | None,
        info: dict[str, Any],
        now: float,
    ) -> list[Message]:
        stored: list[Message] = []
        if plan is not None and local is not None:
            _blob, stored = store_message(
                conn,
                self._blobs,
                local[0],
                [FolderTarget(user_id) for user_id in plan.user_ids],
                envelope_from=routed.sender,
                envelope_to=routed.recipients,
                summary=local[1] or None,
            )
        if plan is not None and queued is not None:
            blob_id = self._blobs.commit(conn, queued, refs=plan.queue_entries)
            common: dict[str, Any] = {
                "blob_id": blob_id,
                "sender": routed.sender,
                "size": queued.size,
                "source": f"collector:{collector_id}",
            }
            if plan.internet:
                queue_repo.enqueue(conn, recipients=plan.internet, kind="internet", **common)
            if plan.lan:
                queue_repo.enqueue(conn, recipients=plan.lan, kind="lan", **common)
        disposition = "error" if routed.error else "downloaded"
        info = {
            **info,
            "disposition": disposition,
            "message_ids": " ".join(str(m.id) for m in stored),
        }
        repo.mark_stored(conn, collector_id, key, now, **info)
        return stored

    async def _notify_too_big(
        self, client: POP3Client, config: CollectorConfig, number: int, size: int
    ) -> None:
        """Tell the "pop3downloadtoobig" target (default: the Main Administrator) that a
        message was left at the server (seed-3 §3.3, Download Rules off)."""
        headers = scan_headers(await client.top(number, 0))

        def first(name: str) -> str:
            values = header_values(headers, name)
            return _comment(values[0][:200]) if values else ""

        target = str(
            self._settings.get(TOO_BIG_TARGET, "") or self._settings.get(MAIN_ADMIN, "postmaster")
        )
        if "@" not in target:
            snapshot = await self._router.snapshot()
            target = f"{target}@{snapshot.default_domain}"
        text = (
            f"From: <>\r\nTo: <{target}>\r\n"
            f"Subject: Message too big to download ({config.name})\r\n"
            f"Date: {format_datetime(datetime.fromtimestamp(self._now(), UTC))}\r\n"
            "Auto-Submitted: auto-generated\r\n\r\n"
            f"Mail Collector {config.name} left a message of {size} bytes on the server\r\n"
            f"because it is larger than the limit of {config.max_size_kb} kB.\r\n\r\n"
            f"From: {first('from')}\r\nTo: {first('to')}\r\nSubject: {first('subject')}\r\n"
            f"Date: {first('date')}\r\n"
        )
        notice = DeliverySpool(None)
        notice.write(text.encode("utf-8"))
        await self._delivery.inject("", [target], notice, source=Source.SMTP)

    def _received(self, config: CollectorConfig, queue_id: str) -> bytes:
        """The trace field for the download hop (seed-1 §11.2: every hop prepends one)."""
        when = format_datetime(datetime.fromtimestamp(self._now(), UTC))
        user = _comment(config.username)
        return (
            f"Received: from {config.server} (POP3 account {user})\r\n"
            f"\tby {self._hostname} with POP3 id {queue_id};\r\n\t{when}\r\n"
        ).encode()


def _held_disposition(action: str) -> str:
    """The Messages tab state of a message a rule left at the server (seed-3 §7)."""
    if action in QUERY_ACTIONS:
        return "queried"
    return "rejected" if action == "reject" else "ignored"


def _reply_domain(default: str | None, entries: Sequence[str]) -> str:
    """A Local Domain for query reply addresses (seed-3 §4.6): the default domain, else
    the first plain one; "" (no reply address) when there is none."""
    if default:
        return default
    plain = [e for e in entries if "@" not in e and "*" not in e and "?" not in e]
    return plain[0] if plain else ""


def _notice_recipients(verdict: Verdict, orig: list[str]) -> list[str]:
    """Orig, Targets or both, by the action's family (seed-3 §4.3)."""
    targets = [t.split()[0] for t in verdict.targets.split(",") if t.split()]
    action = verdict.action
    if action.startswith("redirect") or action == "delete-and-warn-other":
        return targets
    if action.startswith("copy") or action == "delete-and-copy-warning":
        return list(dict.fromkeys([*orig, *targets]))
    return list(orig)


def _gone_locally(state: dict[str, Any], still_here: set[int], config: CollectorConfig) -> bool:
    """Delete When Deleted Locally: every local copy of this download is gone."""
    if not config.delete_when_deleted_locally:
        return False
    ids = {int(i) for i in str(state["message_ids"]).split() if i}
    return bool(ids) and not ids & still_here


def _comment(text: str) -> str:
    return "".join(ch if ch.isprintable() and ch not in "()\\" else "?" for ch in text)


def _keys(listing: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Inventory keys: the UIDL, made unique when a server repeats one (seed issue 8:
    duplicate UIDLs at the ISP) so two messages never share one inventory row."""
    counts: dict[str, int] = {}
    out: list[tuple[int, str]] = []
    for number, uid in listing:
        seen = counts.get(uid, 0)
        counts[uid] = seen + 1
        out.append((number, uid if seen == 0 else f"{uid}#{seen + 1}"))
    return out


def _tab_info(headers: list[tuple[str, str]], routed: Routed, size: int) -> dict[str, Any]:
    def first(name: str) -> str:
        values = header_values(headers, name)
        return values[0][:500] if values else ""

    return {
        "subject": first("subject"),
        "sender": routed.sender[:500],
        "recipients": ", ".join(routed.recipients)[:1000],
        "message_date": first("date"),
        "size": size,
    }
