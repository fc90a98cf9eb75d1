"""In-memory fakes of the IMAP mail-store port and a transcript client over StringTransport."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from vpop3d.core.reply import LoginFailed
from vpop3d.core.sasl import Credentials, PasswordCredentials, ScramKeys, derive_scram_keys
from vpop3d.ports import LoginContext, Principal
from vpop3d.proto.imap.mailbox import (
    DELIMITER,
    AppendResult,
    CopyResult,
    FolderDelta,
    FolderInfo,
    FolderSnapshot,
    FolderStatus,
    MailboxError,
    MessageData,
    MessageMeta,
    QuotaInfo,
    SelectedFolder,
)
from vpop3d.proto.imap.server import (
    ConnectionCounter,
    IMAPLimits,
    IMAPServerFactory,
    IMAPServerProtocol,
)
from vpop3d.proto.imap.session import IMAPConfig

SPECIAL = {
    "Sent": "\\Sent",
    "Drafts": "\\Drafts",
    "Trash": "\\Trash",
    "Junk": "\\Junk",
    "Archive": "\\Archive",
}
WHEN = datetime(2026, 7, 17, 2, 44, 25, tzinfo=UTC)


@dataclass
class FakeMessage:
    uid: int
    raw: bytes
    flags: frozenset[str]
    internal_date: datetime
    modseq: int


@dataclass
class FakeFolder:
    id: int
    uidvalidity: int
    uidnext: int = 1
    modseq: int = 1
    recent_claimed: int = 0
    messages: dict[int, FakeMessage] = field(default_factory=dict)
    expunged: dict[int, int] = field(default_factory=dict)  # uid -> MODSEQ of its expunge
    listeners: list[Callable[[], None]] = field(default_factory=list)

    def notify(self) -> None:
        for listener in list(self.listeners):
            listener()

    def add(self, raw: bytes, flags: frozenset[str] = frozenset(), when: datetime = WHEN) -> int:
        uid = self.uidnext
        self.uidnext += 1
        self.modseq += 1
        self.messages[uid] = FakeMessage(uid, raw, flags, when, self.modseq)
        return uid


class FakeSelected:
    """A SelectedFolder over a FakeFolder that remembers what its session knows."""

    def __init__(self, folder: FakeFolder, name: str, read_only: bool) -> None:
        self.folder = folder
        self.read_only = read_only
        self.known = set(folder.messages)
        self.seen_modseq = folder.modseq
        recent: frozenset[int] = frozenset(u for u in folder.messages if u > folder.recent_claimed)
        if not read_only and folder.messages:
            folder.recent_claimed = max(folder.recent_claimed, max(folder.messages))
        self.snapshot = FolderSnapshot(
            folder_id=folder.id,
            name=name,
            uidvalidity=folder.uidvalidity,
            uidnext=folder.uidnext,
            highest_modseq=folder.modseq,
            messages=[
                MessageMeta(m.uid, m.flags, m.modseq)
                for m in sorted(folder.messages.values(), key=lambda m: m.uid)
            ],
            recent=recent,
            read_only=read_only,
        )
        self.closed = False
        self.refreshes = 0

    def refresh(self) -> Deferred[FolderDelta]:
        self.refreshes += 1
        folder = self.folder
        current = set(folder.messages)
        expunged = sorted(self.known - current)
        upserted = [
            MessageMeta(m.uid, m.flags, m.modseq)
            for m in sorted(folder.messages.values(), key=lambda m: m.uid)
            if m.modseq > self.seen_modseq or m.uid not in self.known
        ]
        recent: set[int] = set()
        if not self.read_only:
            recent = {u for u in current if u > folder.recent_claimed}
            if recent:
                folder.recent_claimed = max(recent)
        self.known = current
        self.seen_modseq = folder.modseq
        return succeed(
            FolderDelta(expunged, upserted, frozenset(recent), folder.uidnext, folder.modseq)
        )

    def load(self, uids: Sequence[int], with_body: bool) -> Deferred[Sequence[MessageData]]:
        out = []
        for uid in uids:
            m = self.folder.messages.get(uid)
            if m is not None:
                out.append(
                    MessageData(uid, m.internal_date, len(m.raw), m.raw if with_body else None)
                )
        return succeed(out)

    def store(
        self,
        uids: Sequence[int],
        mode: str,
        flags: frozenset[str],
        unchanged_since: int | None = None,
    ) -> Deferred[Sequence[MessageMeta]]:
        out = []
        changed = False
        for uid in uids:
            m = self.folder.messages.get(uid)
            if m is None or (unchanged_since is not None and m.modseq > unchanged_since):
                continue
            new = flags if mode == "" else m.flags | flags if mode == "+" else m.flags - flags
            if new != m.flags:
                self.folder.modseq += 1
                m.flags = new
                m.modseq = self.folder.modseq
                changed = True
            out.append(MessageMeta(uid, m.flags, m.modseq))
        if changed:
            self.folder.notify()
        return succeed(out)

    def expunge(self, uids: Sequence[int] | None) -> Deferred[Sequence[int]]:
        gone = [
            m.uid
            for m in self.folder.messages.values()
            if "\\Deleted" in m.flags and (uids is None or m.uid in uids)
        ]
        if gone:
            self.folder.modseq += 1
        for uid in gone:
            del self.folder.messages[uid]
            self.folder.expunged[uid] = self.folder.modseq
        if gone:
            self.folder.notify()
        return succeed(sorted(gone))

    def copy(self, uids: Sequence[int], dest: str, move: bool) -> Deferred[CopyResult]:
        target = self.store_.folders.get(dest)
        if target is None:
            return fail(MailboxError("No such mailbox", "TRYCREATE"))
        src, dst = [], []
        for uid in uids:
            m = self.folder.messages.get(uid)
            if m is None:
                continue
            src.append(uid)
            dst.append(target.add(m.raw, m.flags, m.internal_date))
        if move:
            self.folder.modseq += 1
            for uid in src:
                del self.folder.messages[uid]
                self.folder.expunged[uid] = self.folder.modseq
            self.folder.notify()
        target.notify()
        return succeed(CopyResult(target.uidvalidity, src, dst))

    def vanished(self, since_modseq: int) -> Deferred[Sequence[int]]:
        return succeed(sorted(u for u, m in self.folder.expunged.items() if m > since_modseq))

    def watch(self, listener: Callable[[], None]) -> Callable[[], None]:
        self.folder.listeners.append(listener)
        return lambda: self.folder.listeners.remove(listener)

    def close(self) -> None:
        self.closed = True

    store_: FakeStore


class FakeStore:
    """One user's folders, shared by every session of a test."""

    def __init__(self) -> None:
        self.folders: dict[str, FakeFolder] = {}
        self.subscribed: set[str] = set()
        self.next_id = 1
        self.appends: list[tuple[str, bytes]] = []
        self.selected: list[FakeSelected] = []
        self.quota_kb = 0  # 0: no limit

    def usage(self) -> int:
        return sum(len(m.raw) for f in self.folders.values() for m in f.messages.values())

    def quota(self, user: Principal) -> Deferred[QuotaInfo]:
        return succeed(QuotaInfo((self.usage() + 1023) // 1024, self.quota_kb))

    def set_quota(self, user: Principal, limit_kb: int) -> Deferred[None]:
        self.quota_kb = limit_kb
        return succeed(None)

    def folder(self, name: str) -> FakeFolder:
        return self.folders[name]

    def _make(self, name: str) -> FakeFolder:
        folder = FakeFolder(self.next_id, uidvalidity=1000 + self.next_id)
        self.next_id += 1
        self.folders[name] = folder
        return folder

    def ensure_defaults(self, user: Principal) -> Deferred[None]:
        for name in ["INBOX", *SPECIAL]:
            if name not in self.folders:
                self._make(name)
        return succeed(None)

    def list_folders(self, user: Principal) -> Deferred[Sequence[FolderInfo]]:
        return succeed(
            [
                FolderInfo(name, (SPECIAL[name],) if name in SPECIAL else ())
                for name in sorted(self.folders)
            ]
        )

    def subscriptions(self, user: Principal) -> Deferred[Sequence[str]]:
        return succeed(sorted(self.subscribed))

    def set_subscribed(self, user: Principal, name: str, subscribed: bool) -> Deferred[None]:
        if subscribed:
            self.subscribed.add(name)
        else:
            self.subscribed.discard(name)
        return succeed(None)

    def create_folder(self, user: Principal, name: str) -> Deferred[None]:
        if name in self.folders:
            return fail(MailboxError("Mailbox already exists", "ALREADYEXISTS"))
        parts = name.split(DELIMITER)
        for depth in range(1, len(parts) + 1):
            prefix = DELIMITER.join(parts[:depth])
            if prefix not in self.folders:
                self._make(prefix)
        return succeed(None)

    def delete_folder(self, user: Principal, name: str) -> Deferred[None]:
        if name not in self.folders:
            return fail(MailboxError("No such mailbox", "NONEXISTENT"))
        del self.folders[name]
        return succeed(None)

    def rename_folder(self, user: Principal, old: str, new: str) -> Deferred[None]:
        if old not in self.folders:
            return fail(MailboxError("No such mailbox", "NONEXISTENT"))
        if new in self.folders:
            return fail(MailboxError("Mailbox already exists", "ALREADYEXISTS"))
        if old == "INBOX":
            target = self._make(new)
            inbox = self.folders["INBOX"]
            for m in list(inbox.messages.values()):
                target.add(m.raw, m.flags, m.internal_date)
            inbox.messages.clear()
            inbox.modseq += 1
            inbox.notify()
            return succeed(None)
        for name in sorted(self.folders):
            if name == old or name.startswith(old + DELIMITER):
                self.folders[new + name[len(old) :]] = self.folders.pop(name)
        return succeed(None)

    def select(self, user: Principal, name: str, read_only: bool) -> Deferred[SelectedFolder]:
        folder = self.folders.get(name)
        if folder is None:
            return fail(MailboxError("No such mailbox", "NONEXISTENT"))
        selected = FakeSelected(folder, name, read_only)
        selected.store_ = self
        self.selected.append(selected)
        return succeed(selected)

    def status(self, user: Principal, name: str) -> Deferred[FolderStatus]:
        folder = self.folders.get(name)
        if folder is None:
            return fail(MailboxError("No such mailbox", "NONEXISTENT"))
        msgs = folder.messages.values()
        return succeed(
            FolderStatus(
                messages=len(folder.messages),
                recent=sum(1 for m in msgs if m.uid > folder.recent_claimed),
                uidnext=folder.uidnext,
                uidvalidity=folder.uidvalidity,
                unseen=sum(1 for m in msgs if "\\Seen" not in m.flags),
                highest_modseq=folder.modseq,
                size=sum(len(m.raw) for m in msgs),
                deleted=sum(1 for m in msgs if "\\Deleted" in m.flags),
                deleted_size=sum(len(m.raw) for m in msgs if "\\Deleted" in m.flags),
            )
        )

    def append(
        self,
        user: Principal,
        name: str,
        message: bytes,
        flags: frozenset[str],
        internal_date: datetime | None,
    ) -> Deferred[AppendResult]:
        folder = self.folders.get(name)
        if folder is None:
            return fail(MailboxError("No such mailbox", "TRYCREATE"))
        if self.quota_kb and (self.usage() + len(message) + 1023) // 1024 > self.quota_kb:
            return fail(MailboxError("Over quota", "OVERQUOTA"))
        uid = folder.add(message, flags, internal_date or WHEN)
        self.appends.append((name, message))
        folder.notify()
        return succeed(AppendResult(folder.uidvalidity, uid))

    def deliver(self, raw: bytes, name: str = "INBOX") -> int:
        """What delivery does: add a message and publish the change."""
        folder = self.folders[name]
        uid = folder.add(raw)
        folder.notify()
        return uid


class FakeAuthenticator:
    """Accepts the users in ``passwords``; SCRAM keys derived from the same passwords."""

    def __init__(self, passwords: dict[str, str] | None = None) -> None:
        self.passwords = passwords or {"fred": "secret"}
        self.contexts: list[LoginContext] = []
        self.cram = False

    def authenticate(self, credentials: Credentials, context: LoginContext) -> Deferred[Principal]:
        self.contexts.append(context)
        username = credentials.username
        ok = False
        if isinstance(credentials, PasswordCredentials):
            ok = self.passwords.get(username) == credentials.password
        elif username in self.passwords:
            ok = not hasattr(credentials, "verify") or credentials.verify(self.passwords[username])
        if not ok:
            return fail(LoginFailed())
        admin = username == "admin"  # the one administrator of these tests
        return succeed(Principal(1, username, admin, f"{username}@example.test"))

    def scram_keys(self, username: str) -> Deferred[ScramKeys | None]:
        password = self.passwords.get(username)
        if password is None:
            return succeed(None)
        return succeed(derive_scram_keys(password, b"0123456789abcdef", 4096))

    def plaintext_equivalent_enabled(self) -> bool:
        return self.cram


class TLSStringTransport(StringTransport):
    """StringTransport that records STARTTLS."""

    tls_started: object | None = None

    def startTLS(self, context: object) -> None:  # noqa: N802 - Twisted's name
        self.tls_started = context


class Client:
    """Drives one server connection and hands back what it wrote."""

    def __init__(
        self,
        store: FakeStore | None = None,
        *,
        auth: FakeAuthenticator | None = None,
        config: IMAPConfig | None = None,
        limits: IMAPLimits | None = None,
        clock: Clock | None = None,
        implicit_tls: bool = False,
        counter: ConnectionCounter | None = None,
        gate: Callable[[str], bool] | None = None,
    ) -> None:
        self.store = store or FakeStore()
        self.auth = auth or FakeAuthenticator()
        self.clock = clock or Clock()
        factory = IMAPServerFactory(
            config or IMAPConfig(hostname="imap.example.test"),
            self.store,
            self.auth,
            self.clock,
            limits,
            tls_context=object(),
            implicit_tls=implicit_tls,
            counter=counter,
            gate=gate,
        )
        self.protocol: IMAPServerProtocol = factory.buildProtocol(
            IPv4Address("TCP", "192.0.2.7", 4242)
        )
        self.transport = TLSStringTransport(peerAddress=IPv4Address("TCP", "192.0.2.7", 4242))
        self.protocol.makeConnection(self.transport)
        self.greeting = self.take()

    def take(self) -> str:
        """Everything written since the last call."""
        out: str = self.transport.value().decode("utf-8", "replace")
        self.transport.clear()
        return out

    def raw(self, data: bytes) -> str:
        self.protocol.dataReceived(data)
        return self.take()

    def send(self, line: str) -> str:
        """Send one line (CRLF added) and return the server's output."""
        return self.raw(line.encode("utf-8") + b"\r\n")

    def lines(self, line: str) -> list[str]:
        return self.send(line).split("\r\n")[:-1]

    def login(self, user: str = "fred", password: str = "secret") -> None:
        out = self.send(f"L1 LOGIN {user} {password}")
        assert "L1 OK" in out, out

    def select(self, name: str = "INBOX") -> str:
        out = self.send(f"S1 SELECT {name}")
        assert "S1 OK" in out, out
        return out


def message(subject: str = "Hello", body: str = "Hi there.\r\n", sender: str = "a@b.test") -> bytes:
    """A small RFC 5322 message."""
    return (
        f"From: {sender}\r\nTo: fred@example.test\r\nSubject: {subject}\r\n"
        f"Date: Fri, 17 Jul 2026 02:44:25 +0000\r\nMessage-ID: <{subject}@b.test>\r\n\r\n{body}"
    ).encode()


def with_messages(count: int, store: FakeStore | None = None) -> FakeStore:
    """A store with INBOX holding ``count`` messages (subjects m1..mN)."""
    store = store or FakeStore()
    store.ensure_defaults(Principal(1, "fred", False, "fred@example.test"))
    for n in range(1, count + 1):
        store.folders["INBOX"].add(message(f"m{n}"))
    return store
