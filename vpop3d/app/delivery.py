"""The SMTP delivery use case: ``ports.DeliveryAgent`` over routing, access and the store.

RCPT: parse → ``%``/``!`` options → ``Router.resolve`` → ``core.policy`` verdict with
the manual's exact replies; the verdict is kept for DATA so routing happens once.

DATA end (:meth:`Delivery.accept`):

1. expand the accepted recipients into local users (one copy per user, however
   many addresses or mappings lead there) and outbound recipients (Internet queue,
   LAN-forward queue);
2. build the stored body: ``Received:`` + ``Return-Path:`` + the received bytes for
   local mailboxes, ``Received:`` + bytes for the queue (a relayed message must not
   carry Return-Path, RFC 5321 §4.4); each is written and fsynced once, in the
   database thread pool. The spec wants the stored copy's *first* line to be our
   ``Received:`` (features-a §2 check 4, seed-1 check 17), so Return-Path comes
   second rather than first as RFC 5321 §4.4 describes; readers find it either way;
3. one write transaction: promote the body file(s) to blobs, one message row per
   local user's INBOX, queue rows for remote recipients; SQLite runs with
   ``synchronous=FULL``, so the commit is on disk when it returns;
4. only then publish ``MailboxChanged`` and kick the queue; the protocol replies
   ``250 OK - queued as <id>``.

A crash before step 3 commits leaves at most an unreferenced temp/blob file (swept
by the store); after it, every recipient has the message exactly once.
"""

from __future__ import annotations

import json
import secrets
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Connection
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from vpop3d.app.access import AccessControl, SettingsReader
from vpop3d.app.collectorquery import QueryReplies, parse_local_part
from vpop3d.app.mailstore import FolderTarget, store_message
from vpop3d.app.routing import Router, RoutingSnapshot
from vpop3d.core.address import AddressError, Mailbox, parse_mailbox
from vpop3d.core.mapping import (
    DiscardTarget,
    GroupTarget,
    LanForwardTarget,
    ListTarget,
    LocalDomains,
    NameKind,
    Outcome,
    RemoteTarget,
    Source,
    UserTarget,
    parse_lan_forward,
)
from vpop3d.core.mapping import Target as RouteTarget
from vpop3d.core.message import (
    TraceInfo,
    date_header,
    header_values,
    original_recipient_headers,
    received_header,
    return_path_header,
    scan_headers,
)
from vpop3d.core.mime import analyse
from vpop3d.core.policy import (
    AntiRelayMode,
    Disposition,
    RecipientDecision,
    check_recipient_syntax,
    decide_recipient,
    outgoing_size_reply,
    rewrite_sender,
)
from vpop3d.core.reply import SMTP_RECIPIENT_UNKNOWN, Reply, ReplyError
from vpop3d.core.throttle import IDSEvent
from vpop3d.ports import (
    ChangeNotifier,
    Envelope,
    EnvelopeParams,
    MailboxChanged,
    Principal,
    RecipientParams,
    SMTPContext,
    Spool,
)
from vpop3d.store import queue as queue_repo
from vpop3d.store.blobs import BlobStore
from vpop3d.store.blobs import Spool as StoreSpool
from vpop3d.store.db import Database
from vpop3d.store.rows import Message

__all__ = [
    "BAD_SENDER",
    "Delivery",
    "DeliveryPlan",
    "DeliverySpool",
    "InjectResult",
    "ListExpander",
]

BAD_SENDER = Reply(501, "5.1.7", "Bad sender address syntax")
BAD_RECIPIENT = Reply(501, "5.1.3", "Bad recipient address syntax")
OUTQUEUE_FULL = Reply(451, "4.3.1", "Outgoing queue limit reached, try again later")
DEFAULT_MAX_SIZE = 50_000_000  # seed-4 §7.1 Maximum Message Size
_MEMORY_LIMIT = 1024 * 1024
_CHUNK = 256 * 1024
_DECISIONS_KEPT = 4096


class DeliverySpool:
    """The body as received: in memory up to 1 MiB, then in a temp file.

    The stored blob is built from it at DATA end, with the trace headers in front,
    so the protocol never needs to know them in advance.
    """

    def __init__(self, tmp_dir: Path | None = None) -> None:
        self._file: tempfile.SpooledTemporaryFile[bytes] | None = tempfile.SpooledTemporaryFile(  # noqa: SIM115  closed by discard()
            max_size=_MEMORY_LIMIT, dir=str(tmp_dir) if tmp_dir else None
        )
        self._size = 0

    @property
    def size(self) -> int:
        return self._size

    def write(self, data: bytes) -> None:
        if self._file is None:
            raise ValueError("spool is closed")
        self._file.write(data)
        self._size += len(data)

    def chunks(self) -> Iterator[bytes]:
        """The received bytes from the start (blocking for spilled bodies)."""
        if self._file is None:
            raise ValueError("spool is closed")
        self._file.seek(0)
        while chunk := self._file.read(_CHUNK):
            yield chunk

    def head(self, limit: int = 64 * 1024) -> bytes:
        """The first ``limit`` octets, for a header scan."""
        if self._file is None:
            raise ValueError("spool is closed")
        self._file.seek(0)
        return self._file.read(limit)

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


@dataclass(slots=True)
class DeliveryPlan:
    """Where one accepted message goes."""

    user_ids: list[int] = field(default_factory=list)
    internet: list[queue_repo.QueuedRecipient] = field(default_factory=list)
    lan: list[queue_repo.QueuedRecipient] = field(default_factory=list)
    sender_outbound: str = ""
    auth_user: str = ""  # the SMTP AUTH identity, for Domain Filtering's $authsender
    sender_initiated_remote: bool = False  # Disposition.OUTBOUND recipients exist

    @property
    def queue_entries(self) -> int:
        return int(bool(self.internet)) + int(bool(self.lan))


class ListExpander(Protocol):
    """The lists feature's member lookup (distribution lists expand as BCC, L1783)."""

    def members(self, name: str) -> Deferred[Sequence[str]]:
        """Member entries of list ``name``: addresses, user names or list names."""


MAX_LIST_DEPTH = 10  # lists inside lists (L1777): cycle and depth guard


@dataclass(frozen=True, slots=True)
class InjectResult:
    """What :meth:`Delivery.inject` did."""

    queue_id: str  # "" when nothing was stored
    user_ids: tuple[int, ...]  # local mailboxes that got the message
    unrecognised: tuple[str, ...]  # local-looking addresses nobody takes
    ignored: tuple[str, ...]  # remote or *REMOTE addresses skipped in downloads


def _lan_route(target: LanForwardTarget) -> str:
    return json.dumps(
        {
            "server": target.server,
            "port": target.port,
            "username": target.username,
            "password": target.password,
        },
        sort_keys=True,
    )


class Delivery:
    """Implements ``ports.DeliveryAgent``."""

    _log = Logger()

    def __init__(
        self,
        database: Database,
        blob_store: BlobStore,
        router: Router,
        access: AccessControl,
        notifier: ChangeNotifier,
        settings: SettingsReader,
        *,
        clock: IReactorTime,
        hostname: str,
        tmp_dir: Path | None = None,
        queue_kick: Callable[[], None] = lambda: None,
        new_id: Callable[[], str] = lambda: secrets.token_hex(8),
        lists: ListExpander | None = None,
    ) -> None:
        self._lists = lists
        self._db = database
        self._blobs = blob_store
        self._router = router
        self._access = access
        self._notifier = notifier
        self._settings = settings
        self._clock = clock
        self._hostname = hostname
        self._tmp_dir = tmp_dir
        self._kick = queue_kick
        self._new_id = new_id
        self._decisions: OrderedDict[int, tuple[Envelope, dict[str, RecipientDecision]]] = (
            OrderedDict()
        )
        # Hook: replies to Mail Collector download queries (seed-3 §4.6) are claimed
        # by vpop3d.app.collectorquery at RCPT and granted at the end of DATA.
        self._query_replies = QueryReplies(database, router)

    # ------------------------------------------------------------ DeliveryAgent

    def max_message_size(self, context: SMTPContext) -> int:
        value = self._settings.get(f"smtp.{context.listener}.max_message_size", None)
        if value is None:
            value = self._settings.get("smtp.max_message_size", DEFAULT_MAX_SIZE)
        return int(value)

    def open_spool(self) -> Spool:
        return DeliverySpool(self._tmp_dir)

    def check_sender(self, context: SMTPContext, envelope: Envelope) -> Deferred[None]:
        if envelope.sender:
            try:
                parse_mailbox(envelope.sender, smtputf8=envelope.params.smtputf8)
            except AddressError as exc:
                self._log.info("bad sender {sender!r}: {why}", sender=envelope.sender, why=exc)
                return fail(ReplyError(BAD_SENDER))
        self._decisions.pop(id(envelope), None)
        return succeed(None)

    def check_recipient(
        self, context: SMTPContext, envelope: Envelope, recipient: str
    ) -> Deferred[None]:
        return Deferred.fromCoroutine(self._check_recipient(context, envelope, recipient))

    def accept(self, context: SMTPContext, envelope: Envelope, spool: Spool) -> Deferred[str]:
        return Deferred.fromCoroutine(self._accept(context, envelope, spool))

    def lookup(
        self, context: SMTPContext, argument: str, expand: bool
    ) -> Deferred[list[str] | None]:
        return Deferred.fromCoroutine(self._lookup(context, argument, expand))

    async def _lookup(self, context: SMTPContext, argument: str, expand: bool) -> list[str] | None:
        """VRFY/EXPN (seed-4 §7.8): off unless ``smtp.vrfy_expn_enabled``, and then only
        for clients the ``vrfy.access_rules`` table allows (default: Local Nets)."""
        if not self._settings.get("smtp.vrfy_expn_enabled", False):
            return None
        if not self._access.verdict("vrfy", context.peer_ip).allowed:
            return None
        try:
            mailbox = parse_mailbox(argument.strip().strip("<>"), smtputf8=True)
        except AddressError:
            return []
        resolution = await self._router.resolve(mailbox)
        if resolution.outcome is not Outcome.DELIVER or not resolution.targets:
            return []
        if not expand:
            return [f"{mailbox.local}@{mailbox.domain}"]
        snapshot = await self._router.snapshot()
        found: list[str] = []
        for target in resolution.targets:
            if isinstance(target, UserTarget):
                found.append(f"{target.name}@{mailbox.domain}")
            elif isinstance(target, GroupTarget):
                members = snapshot.group_members.get(target.name, ())
                found.extend(f"{name}@{mailbox.domain}" for name in members)
            elif isinstance(target, ListTarget) and self._lists is not None:
                found.extend(await self._lists.members(target.name))
            elif isinstance(target, RemoteTarget):
                found.append(f"{target.address.local}@{target.address.domain}")
        return found

    # ------------------------------------------------------------ RCPT

    async def _check_recipient(
        self, context: SMTPContext, envelope: Envelope, recipient: str
    ) -> None:
        decision = await self.decide(context, envelope, recipient)
        ip = context.peer_ip
        if decision.reply is not None:
            relay = decision.reply.enhanced == "5.7.1"
            self._access.record(ip, IDSEvent.RELAY_DENIED if relay else IDSEvent.BAD_LOCAL_RCPT)
            self._log.info(
                "rcpt refused {rcpt} from {ip}: {reply} ({notes})",
                rcpt=recipient,
                ip=ip,
                reply=str(decision.reply),
                notes="; ".join(decision.notes),
            )
            raise ReplyError(decision.reply)
        outbound = decision.disposition is Disposition.OUTBOUND
        if outbound:
            await self._check_outqueue()
            await self._check_declared_size(context, envelope)
        self._access.record(ip, IDSEvent.RELAY_ALLOWED if outbound else IDSEvent.GOOD_LOCAL_RCPT)
        self._remember(envelope, recipient, decision)

    async def _check_declared_size(self, context: SMTPContext, envelope: Envelope) -> None:
        """Refuse a remote RCPT early when MAIL SIZE= already exceeds the group limit."""
        declared = envelope.params.size
        if context.principal is None or not declared:
            return
        snapshot = await self._router.snapshot()
        user = snapshot.user(context.principal.username)
        if user is None:
            return
        refusal = outgoing_size_reply(declared, user.settings.max_outgoing_kb, has_remote=True)
        if refusal is not None:
            raise ReplyError(refusal)

    async def _check_outqueue(self) -> None:
        """Refuse outbound RCPTs while the Outqueue holds N or more messages (L6943)."""
        limit = int(self._settings.get("smtp.outqueue_limit", 0))
        if limit <= 0:
            return
        queued: int = await self._db.read(queue_repo.count)
        if queued >= limit:
            raise ReplyError(OUTQUEUE_FULL)

    async def decide(
        self, context: SMTPContext, envelope: Envelope, recipient: str
    ) -> RecipientDecision:
        """The policy verdict for one RCPT (also used by VRFY-like callers)."""
        snapshot = await self._router.snapshot()
        mailbox = self._parse_recipient(recipient, envelope, snapshot)
        if mailbox is None:
            return RecipientDecision(BAD_RECIPIENT)
        settings = self._access.relay_settings(context.listener)
        refusal = check_recipient_syntax(mailbox, settings)
        if refusal is not None:
            return RecipientDecision(refusal, notes=("'%' or '!' in local part",))
        client = self._access.client(context)
        if parse_local_part(mailbox.local) and snapshot.domains.contains(mailbox):
            # hook: a reply to a collector's download query (vpop3d.app.collectorquery)
            claimed = await self._query_replies.decide(client, envelope.sender, mailbox)
            if claimed is not None:
                return claimed
        resolution = await self._router.resolve(mailbox)
        sender_is_local = False
        if envelope.sender and settings.mode is AntiRelayMode.CHECK_FROM_ADDRESS:
            sender_is_local = await self._router.is_local_address(envelope.sender)
        may_send = True
        if context.principal is not None:
            user = snapshot.user(context.principal.username)
            may_send = user is None or user.settings.allow_send_internet
        return decide_recipient(
            settings,
            client,
            resolution,
            sender_is_local=sender_is_local,
            sender_may_send_internet=may_send,
            no_internet_receivers=snapshot.no_internet_receivers(),
        )

    @staticmethod
    def _parse_recipient(
        recipient: str, envelope: Envelope, snapshot: RoutingSnapshot
    ) -> Mailbox | None:
        if recipient.casefold() == "postmaster":  # RFC 5321 §4.1.1.3 bare <Postmaster>
            domain = snapshot.default_domain
            return Mailbox("postmaster", domain) if domain else None
        try:
            return parse_mailbox(recipient, smtputf8=envelope.params.smtputf8)
        except AddressError:
            return None

    def _remember(self, envelope: Envelope, recipient: str, decision: RecipientDecision) -> None:
        key = id(envelope)
        entry = self._decisions.get(key)
        if entry is None or entry[0] is not envelope:
            entry = (envelope, {})
            self._decisions[key] = entry
        entry[1][recipient] = decision
        self._decisions.move_to_end(key)
        while len(self._decisions) > _DECISIONS_KEPT:
            self._decisions.popitem(last=False)

    # ------------------------------------------------------------ DATA end

    async def _decisions_for(
        self, context: SMTPContext, envelope: Envelope
    ) -> list[tuple[str, RecipientParams, RecipientDecision]]:
        entry = self._decisions.pop(id(envelope), None)
        known = entry[1] if entry is not None and entry[0] is envelope else {}
        out: list[tuple[str, RecipientParams, RecipientDecision]] = []
        for recipient, params in envelope.recipients:
            decision = known.get(recipient)
            if decision is None:  # evicted or another entry point: decide again
                decision = await self.decide(context, envelope, recipient)
            if decision.reply is None:
                out.append((recipient, params, decision))
            else:
                self._log.warn(
                    "recipient {rcpt} no longer accepted at DATA: {reply}",
                    rcpt=recipient,
                    reply=str(decision.reply),
                )
        return out

    async def expand_lists(
        self, decisions: Sequence[tuple[str, RecipientParams, RecipientDecision]]
    ) -> list[tuple[str, RecipientParams, RecipientDecision]]:
        """Replace list targets by their members' routes (nested lists, cycles cut)."""
        out: list[tuple[str, RecipientParams, RecipientDecision]] = []
        for recipient, params, decision in decisions:
            if not any(isinstance(t, ListTarget) for t in decision.targets):
                out.append((recipient, params, decision))
                continue
            targets: list[RouteTarget] = []
            for target in decision.targets:
                if isinstance(target, ListTarget):
                    targets.extend(await self._list_targets(target.name, frozenset(), 0))
                else:
                    targets.append(target)
            expanded = RecipientDecision(None, decision.disposition, tuple(targets))
            out.append((recipient, params, expanded))
        return out

    async def _list_targets(self, name: str, seen: frozenset[str], depth: int) -> list[RouteTarget]:
        if self._lists is None:
            self._log.warn("list {name} cannot be expanded: no lists service", name=name)
            return []
        if name in seen or depth >= MAX_LIST_DEPTH:
            self._log.warn("list {name} nested too deep or in a cycle", name=name)
            return []
        seen = seen | {name}
        snapshot = await self._router.snapshot()
        members: Sequence[str] = await self._lists.members(name)
        out: list[RouteTarget] = []
        for member in members:
            entry = member.strip()
            if "@" not in entry and not entry.upper().startswith("SMTP:"):
                kind = snapshot.directory.kind_of(entry)
                if kind is NameKind.LIST:
                    out.extend(await self._list_targets(entry.casefold(), seen, depth + 1))
                elif kind is NameKind.USER:
                    out.append(UserTarget(entry.casefold()))
                elif kind is NameKind.GROUP:
                    out.append(GroupTarget(entry.casefold()))
                else:
                    self._log.warn("list {name}: unknown member {m!r}", name=name, m=entry)
                continue
            if entry.upper().startswith("SMTP:"):
                try:
                    out.append(parse_lan_forward(entry))
                except ValueError:
                    self._log.warn("list {name}: bad member {m!r}", name=name, m=entry)
                continue
            try:
                mailbox = parse_mailbox(entry, smtputf8=True)
            except AddressError:
                self._log.warn("list {name}: bad member {m!r}", name=name, m=entry)
                continue
            resolution = await self._router.resolve(mailbox)
            if resolution.outcome is Outcome.REMOTE:  # incl. *REMOTE: send it out
                out.append(RemoteTarget(mailbox))
                continue
            for target in resolution.targets:
                if isinstance(target, ListTarget):
                    out.extend(await self._list_targets(target.name, seen, depth + 1))
                elif isinstance(target, RemoteTarget) and target.hosted_elsewhere:
                    out.append(RemoteTarget(target.address))
                else:
                    out.append(target)
        return out

    def plan(
        self,
        principal: Principal | None,
        sender: str,
        decisions: Sequence[tuple[str, RecipientParams, RecipientDecision]],
        snapshot: RoutingSnapshot,
    ) -> DeliveryPlan:
        """Turn accepted recipients into users and queue rows (pure over the snapshot)."""
        plan = DeliveryPlan(
            sender_outbound=sender, auth_user=principal.username if principal else ""
        )
        users: dict[int, None] = {}
        internet: dict[str, queue_repo.QueuedRecipient] = {}
        lan: dict[tuple[str, str], queue_repo.QueuedRecipient] = {}

        def add_user(name: str) -> None:
            user = snapshot.user(name)
            if user is None:
                self._log.warn("routing target user {name} vanished", name=name)
                return
            users.setdefault(user.id, None)

        discarded = False
        for recipient, params, decision in decisions:
            notify = ",".join(params.notify)
            if decision.disposition is Disposition.OUTBOUND:
                plan.sender_initiated_remote = True
                internet.setdefault(
                    recipient.casefold(),
                    queue_repo.QueuedRecipient(recipient, notify=notify, orcpt=params.orcpt),
                )
                continue
            if decision.disposition is Disposition.UNRECOGNISED:
                add_user(self._main_admin())
                continue
            for target in decision.targets:
                if isinstance(target, UserTarget):
                    add_user(target.name)
                elif isinstance(target, GroupTarget):
                    for member in snapshot.group_members.get(target.name, ()):
                        add_user(member)
                elif isinstance(target, RemoteTarget):
                    address = str(target.address)
                    internet.setdefault(
                        address.casefold(),
                        queue_repo.QueuedRecipient(address, notify=notify, orcpt=params.orcpt),
                    )
                elif isinstance(target, LanForwardTarget):
                    route = _lan_route(target)
                    address = str(target.recipient)
                    lan.setdefault(
                        (address.casefold(), route),
                        queue_repo.QueuedRecipient(address, route, notify, params.orcpt),
                    )
                elif isinstance(target, DiscardTarget):
                    discarded = True
                elif isinstance(target, ListTarget):  # pragma: no cover - expand_lists ran
                    self._log.warn("unexpanded list target {name}", name=target.name)
        if not users and not internet and not lan and not discarded:
            # Nothing left to deliver to (targets vanished): never drop accepted mail.
            self._log.warn("no deliverable target; giving the message to the administrator")
            add_user(self._main_admin())
        plan.user_ids = list(users)
        plan.internet = list(internet.values())
        plan.lan = list(lan.values())
        if principal is not None:
            user = snapshot.user(principal.username)
            if user is not None:
                rewritten = rewrite_sender(user.settings.reply_address, user.name)
                if rewritten:
                    plan.sender_outbound = rewritten
        return plan

    def _main_admin(self) -> str:
        """Who gets mail nobody else can take (bootstrap's main administrator)."""
        return str(self._settings.get("admin.main_administrator", "postmaster"))

    def _check_size(
        self, context: SMTPContext, plan: DeliveryPlan, size: int, snapshot: RoutingSnapshot
    ) -> None:
        principal = context.principal
        if principal is None:
            return
        user = snapshot.user(principal.username)
        if user is None:
            return
        refusal = outgoing_size_reply(
            size, user.settings.max_outgoing_kb, has_remote=plan.sender_initiated_remote
        )
        if refusal is not None:
            raise ReplyError(refusal)

    def _trace(self, context: SMTPContext, envelope: Envelope, queue_id: str) -> bytes:
        tls = context.tls_description or ("TLS" if context.secure else "")
        single = envelope.recipients[0][0] if len(envelope.recipients) == 1 else ""
        return received_header(
            TraceInfo(
                helo=context.peer_host,
                peer_ip=context.peer_ip,
                by_host=self._hostname,
                when=datetime.fromtimestamp(self._clock.seconds(), UTC),
                queue_id=queue_id,
                esmtp=context.esmtp,
                tls_description=tls,
                authenticated=context.principal is not None,
                smtputf8=envelope.params.smtputf8,
                recipient=single,
            )
        )

    async def _content_headers(self, context: SMTPContext, spool: DeliverySpool) -> bytes:
        """``Date:`` for local submissions without one (seed-4 §7.9, L6921)."""
        if not self._settings.get("smtp.add_date_header", False):
            return b""
        if not self._access.client(context).is_local_session:
            return b""
        head: bytes = await self._db.call_in_pool(spool.head)
        if header_values(scan_headers(head), "Date"):
            return b""
        return date_header(datetime.fromtimestamp(self._clock.seconds(), UTC))

    def _build_spool(self, prefix: bytes, body: DeliverySpool) -> StoreSpool:
        """Write prefix + body into a store spool and make it durable (blocking)."""
        spool = self._blobs.new_spool()
        try:
            spool.write(prefix)
            for chunk in body.chunks():
                spool.write(chunk)
            self._blobs.prepare(spool)
        except BaseException:
            spool.discard()
            raise
        return spool

    def _build_local_spool(self, prefix: bytes, body: DeliverySpool) -> tuple[StoreSpool, str]:
        """The mailbox copy plus its parsed summary (ENVELOPE, BODYSTRUCTURE...), so IMAP
        never has to parse the message again (blocking)."""
        spool = self._build_spool(prefix, body)
        return spool, analyse(spool.read_all()).to_json()

    async def _accept(self, context: SMTPContext, envelope: Envelope, spool: Spool) -> str:
        if not isinstance(spool, DeliverySpool):
            raise TypeError("accept() needs a spool from open_spool()")
        decisions = await self._decisions_for(context, envelope)
        if not decisions:
            raise ReplyError(SMTP_RECIPIENT_UNKNOWN)
        await self._query_replies.accepted(decisions)  # hook: collector query replies
        decisions = await self.expand_lists(decisions)
        snapshot = await self._router.snapshot()
        plan = self.plan(context.principal, envelope.sender, decisions, snapshot)
        self._check_size(context, plan, spool.size, snapshot)
        queue_id = self._new_id()
        received = self._trace(context, envelope, queue_id)
        content = await self._content_headers(context, spool)
        local_extra = b""
        if self._settings.get("smtp.add_original_recipients", False):
            local_extra = original_recipient_headers([r for r, _ in envelope.recipients])
        await self._store(
            plan,
            queue_id,
            spool,
            sender=envelope.sender,
            recipients=[r for r, _ in envelope.recipients],
            params=envelope.params,
            trace=received,
            local_extra=local_extra,
            content=content,
        )
        return queue_id

    async def inject(
        self,
        sender: str,
        recipients: Sequence[str],
        body: DeliverySpool,
        *,
        trace: bytes = b"",
        source: Source = Source.POP3,
        collector_id: int | None = None,
        local_domains: LocalDomains | None = None,
        implied: bool | None = None,
        use_from_mappings: bool = True,
    ) -> InjectResult:
        """Deliver a message that did not arrive by SMTP (collectors, lists, DSNs).

        Recipients are routed like RCPTs but without relay policy: for downloaded
        mail (``Source.POP3``) non-local and ``*REMOTE`` addresses are ignored (manual
        L1901); for ``Source.SMTP`` they are queued. FROM-mappings add targets for
        downloads (L1903-1907). Unrecognised addresses are reported, not stored;
        if nothing is deliverable nothing is stored and ``queue_id`` is "".
        ``trace`` is the caller's ``Received:`` line(s); the body spool is consumed.
        """
        decisions: list[tuple[str, RecipientParams, RecipientDecision]] = []
        unrecognised: list[str] = []
        ignored: list[str] = []
        for address in recipients:
            try:
                mailbox = parse_mailbox(address, smtputf8=True)
            except AddressError:
                unrecognised.append(address)
                continue
            resolution = await self._router.resolve(
                mailbox, source, collector_id, local_domains=local_domains, implied=implied
            )
            if resolution.outcome is Outcome.DELIVER:
                decision = RecipientDecision(None, Disposition.LOCAL, resolution.targets)
                decisions.append((address, RecipientParams(), decision))
            elif resolution.outcome is Outcome.REMOTE:
                if source is Source.POP3:
                    ignored.append(address)
                else:
                    outbound = RecipientDecision(None, Disposition.OUTBOUND)
                    decisions.append((address, RecipientParams(), outbound))
            else:
                unrecognised.append(address)
        if use_from_mappings and sender and source is Source.POP3:
            try:
                sender_box = parse_mailbox(sender, smtputf8=True)
            except AddressError:
                sender_box = None
            if sender_box is not None:
                extra = await self._router.resolve_from(sender_box, collector_id)
                if extra:
                    decision = RecipientDecision(None, Disposition.LOCAL, extra)
                    decisions.append((sender, RecipientParams(), decision))
        if not decisions:
            body.discard()
            return InjectResult("", (), tuple(unrecognised), tuple(ignored))
        decisions = await self.expand_lists(decisions)
        snapshot = await self._router.snapshot()
        plan = self.plan(None, sender, decisions, snapshot)
        queue_id = self._new_id()
        await self._store(
            plan,
            queue_id,
            body,
            sender=sender,
            recipients=[address for address, _, _ in decisions],
            params=EnvelopeParams(),
            trace=trace,
        )
        return InjectResult(queue_id, tuple(plan.user_ids), tuple(unrecognised), tuple(ignored))

    async def _store(
        self,
        plan: DeliveryPlan,
        queue_id: str,
        spool: DeliverySpool,
        *,
        sender: str,
        recipients: Sequence[str],
        params: EnvelopeParams,
        trace: bytes,
        local_extra: bytes = b"",
        content: bytes = b"",
    ) -> list[Message]:
        """Build the stored bodies, commit them in one transaction, then notify."""
        local_prefix = trace + return_path_header(sender) + local_extra + content
        queue_prefix = trace + content
        local_spool: StoreSpool | None = None
        queue_spool: StoreSpool | None = None
        try:
            summary: str | None = None
            if plan.user_ids:
                local_spool, summary = await self._db.call_in_pool(
                    self._build_local_spool, local_prefix, spool
                )
            if plan.queue_entries:
                queue_spool = await self._db.call_in_pool(self._build_spool, queue_prefix, spool)
            stored: list[Message] = await self._db.write_grouped(
                self._commit,
                plan,
                sender,
                recipients,
                params,
                local_spool,
                queue_spool,
                queue_id,
                summary,
            )
        except BaseException:
            for leftover in (local_spool, queue_spool):
                if leftover is not None:
                    leftover.discard()
            raise
        spool.discard()
        self._log.info(
            "accepted {id} from <{sender}> for {count} recipient(s): {users} local, "
            "{remote} remote",
            id=queue_id,
            sender=sender,
            count=len(recipients),
            users=len(plan.user_ids),
            remote=len(plan.internet) + len(plan.lan),
        )
        for message in stored:
            self._notifier.publish(MailboxChanged(message.folder_id, message.modseq))
        if plan.queue_entries:
            self._kick()
        return stored

    def _commit(
        self,
        conn: Connection,
        plan: DeliveryPlan,
        sender: str,
        recipients: Sequence[str],
        params: EnvelopeParams,
        local_spool: StoreSpool | None,
        queue_spool: StoreSpool | None,
        queue_id: str,
        summary: str | None = None,
    ) -> list[Message]:
        """The one transaction: blobs, INBOX rows, queue rows (blocking)."""
        stored: list[Message] = []
        if local_spool is not None:
            _blob_id, stored = store_message(
                conn,
                self._blobs,
                local_spool,
                [FolderTarget(user_id) for user_id in plan.user_ids],
                envelope_from=sender,
                envelope_to=recipients,
                summary=summary,
            )
        if queue_spool is not None:
            blob_id = self._blobs.commit(conn, queue_spool, refs=plan.queue_entries)
            common: dict[str, Any] = {
                "blob_id": blob_id,
                "sender": plan.sender_outbound,
                "size": queue_spool.size,
                "envid": params.envid,
                "ret": params.ret,
                "body_type": params.body,
                "smtputf8": params.smtputf8,
                "source": f"smtp:{queue_id}",
                "auth_user": plan.auth_user,
            }
            if plan.internet:
                queue_repo.enqueue(conn, recipients=plan.internet, kind="internet", **common)
            if plan.lan:
                queue_repo.enqueue(conn, recipients=plan.lan, kind="lan", **common)
        return stored
