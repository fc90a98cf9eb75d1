"""The IMAP4rev1 session state machine (RFC 3501 §3), free of sockets and timers.

The Twisted adapter parses a command with ``grammar.parse_command`` and awaits
:meth:`IMAPSession.execute`; the session writes untagged and tagged responses
through its :class:`Channel` and reads continuation lines (AUTHENTICATE, IDLE's
``DONE``) from it. Each selected session keeps its own message sequence map, so
changes made by other sessions or by delivery are reported only at the points
RFC 3501 §5.2 and §7.4.1 allow: never an EXPUNGE while answering FETCH, STORE or
SEARCH, and never when no command is in progress (except during IDLE).
"""

from __future__ import annotations

import enum
from bisect import bisect_left, bisect_right
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionClosed
from twisted.logger import Logger

from vpop3d import __version__
from vpop3d.core import imaprights, imapsearch, imapthread, mime, sasl, utf7
from vpop3d.core.reply import LoginFailed, ReplyError
from vpop3d.core.seqset import SeqSet
from vpop3d.ports import Authenticator, LoginContext, Principal
from vpop3d.proto.imap import fetch, searchres
from vpop3d.proto.imap.grammar import (
    Append,
    Authenticate,
    Capability,
    Check,
    Close,
    Command,
    Compress,
    Copy,
    Create,
    Delete,
    DeleteAcl,
    Enable,
    Expunge,
    Fetch,
    GetAcl,
    GetQuota,
    GetQuotaRoot,
    Id,
    Idle,
    List,
    ListRights,
    Login,
    Logout,
    MyRights,
    Namespace,
    Noop,
    QResync,
    Rename,
    Search,
    Select,
    SetAcl,
    SetQuota,
    Sort,
    StartTLS,
    Status,
    Store,
    Subscribe,
    Tagged,
    Unselect,
    is_saved_result,
    render_uid_set,
)
from vpop3d.proto.imap.grammar import Thread as ThreadCommand
from vpop3d.proto.imap.mailbox import (
    DELIMITER,
    SYSTEM_FLAGS,
    FolderAccess,
    FolderInfo,
    MailboxError,
    MailStore,
    MessageData,
    MessageMeta,
    SelectedFolder,
)

FETCH_BATCH = 200  # messages loaded per store round trip while streaming FETCH
BODY_BATCH = 20  # the same when whole messages are loaded


class State(enum.Enum):
    NOT_AUTHENTICATED = "not authenticated"
    AUTHENTICATED = "authenticated"
    SELECTED = "selected"
    LOGOUT = "logout"


class Outcome(enum.Enum):
    """What the adapter must do after a command."""

    CONTINUE = "continue"
    STARTTLS = "starttls"  # start TLS now, dropping anything buffered (RFC 3501 §6.2.1)
    CLOSE = "close"  # LOGOUT or too many failures: close the connection
    COMPRESS = "compress"  # DEFLATE both directions from the next octet (RFC 4978 §3)


class IMAPError(Exception):
    """Answer the current command with ``status [code] text`` (NO or BAD)."""

    def __init__(self, status: str, text: str, code: str = "") -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.code = code


def _no(text: str, code: str = "") -> IMAPError:
    return IMAPError("NO", text, code)


def _bad(text: str) -> IMAPError:
    return IMAPError("BAD", text)


class Channel(Protocol):
    """What the session needs from its connection."""

    def write(self, data: bytes) -> None: ...

    def read_line(self) -> Deferred[bytes]:
        """The next line the client sends (without CRLF), for continuations."""

    def register_login(self, user_id: int) -> bool:
        """Count this session against the user's login limit; False: over the limit."""

    def drained(self) -> Deferred[None]:
        """Fires once the transport is not holding back output (streaming FETCH)."""

    def acquire(self, kind: str) -> Deferred[Callable[[], None] | None]:
        """A FETCH/SEARCH slot ("fetch"/"search"): a release callable, or None on timeout."""

    @property
    def secure(self) -> bool: ...

    @property
    def peer_ip(self) -> str: ...


@dataclass(frozen=True, slots=True)
class IMAPConfig:
    """Per-listener settings (spec seed-4 §8)."""

    hostname: str = "localhost"
    starttls_available: bool = False
    plaintext_without_tls: bool = True  # False: LOGINDISABLED until TLS
    idle_enabled: bool = True
    max_failed_logins: int = 3  # spec seed-4 §8.3
    append_limit: int = 50 * 1024 * 1024
    literal_plus: bool = True  # False: LITERAL- (non-synchronizing literals up to 4096)


class _View:
    """One session's picture of its selected folder (RFC 3501 §2.3.1.2)."""

    def __init__(self, folder: SelectedFolder) -> None:
        snap = folder.snapshot
        self.folder = folder
        self.read_only = snap.read_only
        self.rights = snap.rights  # RFC 4314 rights on a shared folder; None: all
        self.uids: list[int] = [m.uid for m in snap.messages]
        self.flags: dict[int, frozenset[str]] = {m.uid: m.flags for m in snap.messages}
        self.modseq: dict[int, int] = {m.uid: m.modseq for m in snap.messages}
        self.highest_modseq = snap.highest_modseq
        self.condstore = False  # RFC 7162 §3.1: MODSEQ in every FETCH once enabled
        self.qresync = False  # RFC 7162 §3.2.10: VANISHED instead of EXPUNGE
        self.recent: set[int] = set(snap.recent)
        self.keywords: set[str] = set(snap.keywords)
        for flags in self.flags.values():
            self.keywords.update(f for f in flags if f[:1] != "\\")
        self.announced: set[str] = set(snap.keywords)
        self.pending_expunge: set[int] = set()
        self.saved: list[int] = []  # RFC 5182 "$": UIDs of the last SEARCH RETURN (SAVE)
        self.dirty = False
        self.unwatch: Callable[[], None] = lambda: None

    def may(self, right: str) -> bool:
        """True when the user holds the RFC 4314 ``right`` on this folder."""
        return self.rights is None or right in self.rights

    def permanent_flags(self, flags: Sequence[str]) -> str:
        """PERMANENTFLAGS: only what this user may change (RFC 4314 §4 SELECT)."""
        if self.read_only:
            return ""
        if self.rights is None:
            return " ".join([*flags, "\\*"])
        allowed = [f for f in flags if self.may(imaprights.right_for_flag(f))]
        return " ".join(allowed + (["\\*"] if self.may("w") else []))

    def msn_of(self, uid: int) -> int:
        """Message sequence number of a UID in the view (binary search)."""
        return bisect_left(self.uids, uid) + 1

    def resolve(self, messages: SeqSet, by_uid: bool) -> list[tuple[int, int]]:
        """(msn, uid) pairs named by a sequence set, ascending."""
        if is_saved_result(messages):  # RFC 5182 §2: expunged ones have dropped out
            return [(self.msn_of(uid), uid) for uid in self.saved if uid in self.flags]
        count = len(self.uids)
        if by_uid:
            largest = self.uids[-1] if self.uids else 0
            # RFC 3501 §6.4.8: "n:*" always includes the largest UID in use.
            out: list[tuple[int, int]] = []
            for low, high in messages.ranges(largest):
                start = bisect_left(self.uids, low)
                end = bisect_right(self.uids, high)
                out.extend((i + 1, self.uids[i]) for i in range(start, end))
            return out
        if count == 0 and all(None in item for item in messages.items):
            return []  # "1:*" on an empty mailbox names nothing; clients send it
        if messages.max_number(count) > count or (count == 0 and messages.items):
            raise _bad("Invalid message sequence number")
        return [(n, self.uids[n - 1]) for n in messages.iter_numbers(count)]

    def flags_response(self, uid: int, with_uid: bool, flags: bool = True) -> bytes:
        msn = self.msn_of(uid)
        items = [b"UID %d" % uid] if with_uid else []
        if flags:
            items.append(b"FLAGS " + fetch.format_flags(self.flags[uid], uid in self.recent))
        if self.condstore:
            items.append(b"MODSEQ (%d)" % self.modseq.get(uid, 0))
        return b"* %d FETCH (%s)\r\n" % (msn, b" ".join(items))

    def remove(self, uids: Iterable[int]) -> list[int]:
        """Drop ``uids`` from the view; their sequence numbers, highest first.

        Announcing EXPUNGEs from the highest number down keeps each number valid at
        the moment its response is read (RFC 3501 §7.4.1) with one pass over the map.
        """
        gone = {uid for uid in uids if uid in self.flags}
        if not gone:
            return []
        numbers = sorted((self.msn_of(uid) for uid in gone), reverse=True)
        self.uids = [uid for uid in self.uids if uid not in gone]
        for uid in gone:
            del self.flags[uid]
            self.modseq.pop(uid, None)
            self.recent.discard(uid)
            self.pending_expunge.discard(uid)
        return numbers

    def expunge_lines(self, uids: Iterable[int]) -> bytes:
        if self.qresync:
            gone = sorted({uid for uid in uids if uid in self.flags})
            self.remove(gone)
            return b"* VANISHED %s\r\n" % render_uid_set(gone).encode() if gone else b""
        return b"".join(b"* %d EXPUNGE\r\n" % msn for msn in self.remove(uids))


_ANY = frozenset({Capability, Noop, Logout, Id})
_NOT_AUTH = _ANY | {StartTLS, Authenticate, Login}
_AUTH = _ANY | {
    Select,
    Create,
    Delete,
    Rename,
    Subscribe,
    List,
    Status,
    Append,
    Idle,
    Namespace,
    Enable,
    GetQuota,
    GetQuotaRoot,
    SetQuota,
    Compress,
    GetAcl,
    SetAcl,
    DeleteAcl,
    ListRights,
    MyRights,
}
_SELECTED = (_AUTH - {Enable}) | {
    Check,
    Close,
    Unselect,
    Expunge,
    Search,
    Sort,
    ThreadCommand,
    Fetch,
    Store,
    Copy,
}
_ALLOWED: dict[State, frozenset[type]] = {
    State.NOT_AUTHENTICATED: frozenset(_NOT_AUTH),
    State.AUTHENTICATED: frozenset(_AUTH),
    State.SELECTED: frozenset(_SELECTED),
    State.LOGOUT: frozenset(),
}
# RFC 3501 §7.4.1: no EXPUNGE while responding to these (sequence numbers in use).
_NO_EXPUNGE = frozenset({Fetch, Store, Search, Sort, ThreadCommand})

_LOGIN_CODES = {"AUTH": "AUTHENTICATIONFAILED", "SYS/TEMP": "UNAVAILABLE", "IN-USE": "INUSE"}


def quote(text: str) -> bytes:
    """An IMAP string for ``text``: quoted when possible, else a literal."""
    data = text.encode("utf-8")
    if data.isascii() and b"\r" not in data and b"\n" not in data and len(data) < 1000:
        return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return b"{%d}\r\n" % len(data) + data


_ATOM_SPECIALS = frozenset('(){ %*"\\]')


def astring(text: str) -> bytes:
    """An atom when ``text`` is one (RFC 3501 §9 astring), else a quoted string or literal.

    ACL identifiers and rights go out bare, as clients that split ACL lines expect.
    """
    if text and text.isascii() and all(" " < c < "\x7f" and c not in _ATOM_SPECIALS for c in text):
        return text.encode()
    return quote(text)


def mailbox_name(name: str, utf8: bool = False) -> bytes:
    """A mailbox name on the wire: modified UTF-7 (RFC 3501 §5.1.3), quoted.

    After ENABLE UTF8=ACCEPT it is plain UTF-8, in a quoted string (RFC 6855 §3).
    """
    if not utf8:
        return quote(utf7.encode(name))
    data = name.encode("utf-8")
    if b"\r" in data or b"\n" in data or len(data) >= 1000:
        return b"{%d}\r\n" % len(data) + data
    return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def valid_name(name: str) -> bool:
    """A name we store: no LIST wildcards, no empty levels, no control characters."""
    return (
        bool(name)
        and not name.startswith(DELIMITER)
        and DELIMITER * 2 not in name
        and not any(c in name for c in "*%")
        and all(ord(c) >= 0x20 and c != "\x7f" for c in name)
    )


def list_matches(pattern: str, name: str) -> bool:
    """RFC 3501 §6.3.8 LIST wildcards: ``*`` any run, ``%`` any run without ``/``."""
    if pattern.upper().startswith("INBOX") and name == "INBOX":
        pattern = "INBOX" + pattern[5:]
    memo: dict[tuple[int, int], bool] = {}

    def match(p: int, n: int) -> bool:
        key = (p, n)
        if key in memo:
            return memo[key]
        if p == len(pattern):
            result = n == len(name)
        elif pattern[p] == "*":
            result = match(p + 1, n) or (n < len(name) and match(p, n + 1))
        elif pattern[p] == "%":
            result = match(p + 1, n) or (n < len(name) and name[n] != DELIMITER and match(p, n + 1))
        else:
            result = n < len(name) and pattern[p] == name[n] and match(p + 1, n + 1)
        memo[key] = result
        return result

    return match(0, 0)


class IMAPSession:
    """One client connection's IMAP state."""

    _log = Logger()

    def __init__(
        self,
        config: IMAPConfig,
        store: MailStore,
        authenticator: Authenticator,
        channel: Channel,
    ) -> None:
        self.config = config
        self.store = store
        self.authenticator = authenticator
        self.channel = channel
        self.state = State.NOT_AUTHENTICATED
        self.user: Principal | None = None
        self.condstore = False
        self.utf8 = False  # RFC 6855: ENABLE UTF8=ACCEPT
        self.qresync = False  # RFC 7162 §3.2.3: ENABLE QRESYNC
        self.rev2 = False  # RFC 9051: ENABLE IMAP4rev2 switched the session to rev2 rules
        self.compressed = False  # RFC 4978: COMPRESS DEFLATE is in force
        self.view: _View | None = None
        self.failed_logins = 0
        self._idling = False
        self._idle_sync: Deferred[None] | None = None
        self._idle_again = False
        self._idle_running = False
        self._handlers: dict[type, Callable[[str, Command], Awaitable[Outcome | None]]] = {
            Capability: self._capability,
            Noop: self._noop,
            Logout: self._logout,
            Id: self._id,
            StartTLS: self._starttls,
            Login: self._login,
            Authenticate: self._authenticate,
            Select: self._select,
            Create: self._create,
            Delete: self._delete,
            Rename: self._rename,
            Subscribe: self._subscribe,
            List: self._list,
            Status: self._status,
            Append: self._append,
            Idle: self._idle,
            Namespace: self._namespace,
            Enable: self._enable,
            Compress: self._compress,
            GetQuota: self._getquota,
            GetQuotaRoot: self._getquotaroot,
            SetQuota: self._setquota,
            GetAcl: self._getacl,
            SetAcl: self._setacl,
            DeleteAcl: self._deleteacl,
            ListRights: self._listrights,
            MyRights: self._myrights,
            Check: self._noop,
            Close: self._close,
            Unselect: self._unselect,
            Expunge: self._expunge,
            Search: self._search,
            Sort: self._search,
            ThreadCommand: self._search,
            Fetch: self._fetch,
            Store: self._store,
            Copy: self._copy,
        }

    # ------------------------------------------------------------- plumbing

    @property
    def idling(self) -> bool:
        """True while an IDLE command waits for DONE."""
        return self._idling

    def connection_lost(self) -> None:
        """Stop watching the selected folder."""
        self._leave_folder()
        self.state = State.LOGOUT

    def write(self, data: bytes) -> None:
        self.channel.write(data)

    def untagged(self, text: str) -> None:
        self.channel.write(b"* " + text.encode("utf-8") + b"\r\n")

    def greeting(self) -> bytes:
        caps = " ".join(self.capabilities())
        return f"* OK [CAPABILITY {caps}] {self.config.hostname} IMAP4rev1 ready\r\n".encode()

    def capabilities(self) -> list[str]:
        """RFC 3501 §7.2.1 capability list for the current state."""
        literal = "LITERAL+" if self.config.literal_plus else "LITERAL-"  # RFC 7888
        caps = ["IMAP4rev1", "IMAP4rev2", "SASL-IR", literal, "ID", "ENABLE"]
        if self.config.idle_enabled:
            caps.append("IDLE")
        if self.state is State.NOT_AUTHENTICATED:
            if self.config.starttls_available and not self.channel.secure:
                caps.append("STARTTLS")
            if not self._plaintext_allowed():
                caps.append("LOGINDISABLED")
            caps += [f"AUTH={m}" for m in self._mechanisms()]
        else:
            caps += [
                "NAMESPACE",
                "UIDPLUS",
                "MOVE",
                "UNSELECT",
                "CHILDREN",
                "SPECIAL-USE",
                "CONDSTORE",
                "QRESYNC",
                "ESEARCH",
                "LIST-STATUS",
                "SORT",
                "SORT=DISPLAY",
                "THREAD=ORDEREDSUBJECT",
                "THREAD=REFERENCES",
                f"APPENDLIMIT={self.config.append_limit}",
                "QUOTA",
                "QUOTA=RES-STORAGE",
                "STATUS=SIZE",
                "UTF8=ACCEPT",
                "COMPRESS=DEFLATE",
                "BINARY",  # RFC 3516
                "LIST-EXTENDED",  # RFC 5258
                "SEARCHRES",  # RFC 5182
                "WITHIN",  # RFC 5032 OLDER/YOUNGER
            ]
            if self.user is not None and self.user.is_admin:
                caps.append("QUOTASET")  # RFC 9208: only who may SETQUOTA
            if isinstance(self.store, FolderAccess):
                caps += ["ACL", "RIGHTS=texk"]  # RFC 4314 §2, §3
        return caps

    def _plaintext_allowed(self) -> bool:
        return self.channel.secure or self.config.plaintext_without_tls

    def _mechanisms(self) -> list[str]:
        return sasl.advertised_mechanisms(
            secure=self.channel.secure,
            allow_plaintext_equivalent=self.authenticator.plaintext_equivalent_enabled(),
            allow_plaintext_without_tls=self.config.plaintext_without_tls,
        )

    async def execute(self, tagged: Tagged) -> Outcome:
        """Run one command to its tagged response; never raises."""
        tag, command = tagged.tag, tagged.command
        if type(command) not in _ALLOWED[self.state]:
            if self.state is State.AUTHENTICATED and type(command) in _SELECTED:
                text = "No mailbox selected"
            else:
                text = f"{tagged.verb} not allowed in the {self.state.value} state"
            self._tagged(tag, "BAD", text)
            return Outcome.CONTINUE
        try:
            outcome = await self._handlers[type(command)](tag, command)
        except IMAPError as err:
            await self._safe_sync(allow_expunge=type(command) not in _NO_EXPUNGE)
            self._tagged(tag, err.status, err.text, err.code)
            return Outcome.CONTINUE
        except MailboxError as err:
            await self._safe_sync(allow_expunge=type(command) not in _NO_EXPUNGE)
            self._tagged(tag, "NO", err.text, err.code)
            return Outcome.CONTINUE
        except ReplyError as err:
            self._tagged(tag, "NO", err.reply.text)
            return Outcome.CONTINUE
        except ConnectionClosed:
            return Outcome.CLOSE  # the client went away mid-command (IDLE, AUTHENTICATE)
        except Exception:  # noqa: BLE001  command boundary
            self._log.failure("IMAP command {verb} failed", verb=tagged.verb)
            self._tagged(tag, "NO", "Temporary server error, please try again", "UNAVAILABLE")
            return Outcome.CONTINUE
        return outcome or Outcome.CONTINUE

    def _tagged(self, tag: str, status: str, text: str, code: str = "") -> None:
        code_part = f"[{code}] " if code else ""
        self.write(f"{tag} {status} {code_part}{text}\r\n".encode())

    def _done(self, tag: str, text: str, code: str = "") -> None:
        self._tagged(tag, "OK", text, code)

    def _selected(self) -> _View:
        if self.view is None:  # pragma: no cover - the state table prevents it
            raise _bad("No mailbox selected")
        return self.view

    def _principal(self) -> Principal:
        if self.user is None:  # pragma: no cover - the state table prevents it
            raise _bad("Not authenticated")
        return self.user

    # ------------------------------------------------------------- unsolicited updates

    def _changed(self) -> None:
        """Listener for the folder's change notifications."""
        if self.view is not None:
            self.view.dirty = True
            if self._idling:
                self._kick_idle_sync()

    def _kick_idle_sync(self) -> None:
        if self._idle_running:
            self._idle_again = True
            return
        self._idle_running = True

        async def run() -> None:
            try:
                while True:
                    self._idle_again = False
                    await self._safe_sync(allow_expunge=True)
                    if not self._idle_again:
                        break
            finally:
                self._idle_running = False
                self._idle_sync = None

        running = Deferred.fromCoroutine(run())
        if self._idle_running:
            self._idle_sync = running

    async def _safe_sync(self, allow_expunge: bool) -> None:
        try:
            await self._sync(allow_expunge)
        except Exception:  # noqa: BLE001  updates are best effort; next command retries
            self._log.failure("IMAP refresh failed")
            if self.view is not None:
                self.view.dirty = True

    async def _sync(self, allow_expunge: bool) -> None:
        """Report other sessions' changes, holding EXPUNGEs back when not allowed."""
        view = self.view
        if view is None or self.state is not State.SELECTED:
            return
        changed: list[int] = []
        arrived = False
        if view.dirty:
            view.dirty = False
            try:
                delta = await view.folder.refresh()
            except BaseException:
                view.dirty = True
                raise
            if self.view is not view:
                return
            gone = set(delta.expunged)
            view.pending_expunge.update(uid for uid in gone if uid in view.flags)
            last = view.uids[-1] if view.uids else 0
            arrivals: list[MessageMeta] = []
            for meta in delta.upserted:
                if meta.uid in gone:
                    continue
                if meta.uid in view.flags:
                    moved = view.condstore and view.modseq.get(meta.uid) != meta.modseq
                    view.modseq[meta.uid] = max(view.modseq.get(meta.uid, 0), meta.modseq)
                    if view.flags[meta.uid] != meta.flags or moved:
                        view.flags[meta.uid] = meta.flags
                        changed.append(meta.uid)
                elif meta.uid > last:
                    arrivals.append(meta)
                view.keywords.update(f for f in meta.flags if not f.startswith("\\"))
            arrived = bool(arrivals)
            for meta in sorted(arrivals, key=lambda m: m.uid):
                view.uids.append(meta.uid)
                view.flags[meta.uid] = meta.flags
                view.modseq[meta.uid] = meta.modseq
            view.highest_modseq = max(view.highest_modseq, delta.highest_modseq)
            if not self.rev2:
                view.recent.update(uid for uid in delta.recent if uid in view.flags)
        if allow_expunge and view.pending_expunge:
            self.write(view.expunge_lines(list(view.pending_expunge)))
            view.pending_expunge.clear()
        if arrived:
            self.write(b"* %d EXISTS\r\n" % len(view.uids))
            if not self.rev2:  # RFC 9051 has no \Recent and no RECENT response
                self.write(b"* %d RECENT\r\n" % len(view.recent))
        self._announce_keywords(view)
        for uid in changed:
            if uid in view.flags and uid not in view.pending_expunge:
                self.write(view.flags_response(uid, with_uid=True))

    def _announce_keywords(self, view: _View) -> None:
        """RFC 3501 §7.2.6: a new keyword in use means a new FLAGS response."""
        if view.keywords != view.announced:
            view.announced = set(view.keywords)
            self._write_flags(view)

    def _write_flags(self, view: _View) -> None:
        keywords = sorted(view.keywords)
        self.untagged("FLAGS (" + " ".join([*SYSTEM_FLAGS, *keywords]) + ")")
        permanent = view.permanent_flags([*SYSTEM_FLAGS, *keywords])
        self.untagged(f"OK [PERMANENTFLAGS ({permanent})] Flags permitted")

    # ------------------------------------------------------------- any state

    async def _capability(self, tag: str, command: Command) -> Outcome | None:
        self.untagged("CAPABILITY " + " ".join(self.capabilities()))
        await self._safe_sync(allow_expunge=True)
        self._done(tag, "CAPABILITY completed")
        return None

    async def _noop(self, tag: str, command: Command) -> Outcome | None:
        if self.view is not None:
            self.view.dirty = True  # NOOP/CHECK always poll (RFC 3501 §6.1.2)
        await self._safe_sync(allow_expunge=True)
        name = "CHECK" if isinstance(command, Check) else "NOOP"
        self._done(tag, f"{name} completed")
        return None

    async def _logout(self, tag: str, command: Command) -> Outcome | None:
        self.untagged(f"BYE {self.config.hostname} IMAP4rev1 server logging out")
        self._leave_folder()
        self.state = State.LOGOUT
        self._done(tag, "LOGOUT completed")
        return Outcome.CLOSE

    async def _id(self, tag: str, command: Command) -> Outcome | None:
        # RFC 2971: the server answers with its own identification.
        self.write(b'* ID ("name" "vpop3d" "version" ' + quote(__version__) + b")\r\n")
        await self._safe_sync(allow_expunge=True)
        self._done(tag, "ID completed")
        return None

    # ------------------------------------------------------------- not authenticated

    async def _starttls(self, tag: str, command: Command) -> Outcome | None:
        if not self.config.starttls_available or self.channel.secure:
            raise _bad("STARTTLS not available")
        self._done(tag, "Begin TLS negotiation now")
        return Outcome.STARTTLS

    async def _login(self, tag: str, command: Command) -> Outcome | None:
        assert isinstance(command, Login)
        if not self._plaintext_allowed():
            # RFC 3501 §6.2.3 / §7.2.1 LOGINDISABLED
            raise _no("Plaintext login is disabled; use STARTTLS", "PRIVACYREQUIRED")
        creds = sasl.PasswordCredentials(command.username, command.password)
        return await self._finish_login(tag, creds, b"")

    async def _finish_login(
        self, tag: str, credentials: sasl.Credentials, final: bytes | Callable[[], bytes]
    ) -> Outcome | None:
        context = LoginContext("imap", self.channel.peer_ip, self.channel.secure)
        try:
            principal = await self.authenticator.authenticate(credentials, context)
        except LoginFailed as err:
            return self._login_failed(tag, err.text, _LOGIN_CODES.get(err.response_code, ""))
        if not self.channel.register_login(principal.user_id):
            # Spec seed-4 §8.3: the manual's text for "Concurrent logins for a User".
            raise _no("Too many logins for this user", "LIMIT")
        await self.store.ensure_defaults(principal)
        self.user = principal
        self.state = State.AUTHENTICATED
        self._log.info(
            "IMAP login {user} from {ip}", user=principal.username, ip=self.channel.peer_ip
        )
        extra = final() if callable(final) else final
        if extra:
            # RFC 4959 §3 / RFC 3501 §6.2.2: SCRAM server-final as a last challenge
            self.write(b"+ " + sasl.encode_challenge(extra) + b"\r\n")
            line = await self.channel.read_line()
            if line.strip():
                self.user = None
                self.state = State.NOT_AUTHENTICATED
                raise _bad("Expected an empty response")
        caps = " ".join(self.capabilities())
        self._done(tag, "Logged in", f"CAPABILITY {caps}")
        return None

    def _login_failed(self, tag: str, text: str, code: str) -> Outcome | None:
        self.failed_logins += 1
        if self.failed_logins >= self.config.max_failed_logins:
            self._tagged(tag, "NO", text, code)
            self.untagged("BYE Too many failed login attempts")
            self.state = State.LOGOUT
            return Outcome.CLOSE
        raise _no(text, code)

    async def _authenticate(self, tag: str, command: Command) -> Outcome | None:
        assert isinstance(command, Authenticate)
        name = command.mechanism
        if name not in self._mechanisms():
            if name in ("PLAIN", "LOGIN") and not self._plaintext_allowed():
                raise _no("Plaintext authentication needs TLS", "PRIVACYREQUIRED")
            raise _no(f"Unsupported mechanism {name}", "CANNOT")
        mechanism = sasl.server_mechanism(
            name,
            self.config.hostname,
            allow_plaintext_equivalent=self.authenticator.plaintext_equivalent_enabled(),
        )
        if mechanism is None:
            raise _no(f"Unsupported mechanism {name}", "CANNOT")
        try:
            initial = None
            if command.initial_response is not None:
                initial = sasl.decode_client_response(command.initial_response)
            step = mechanism.start(initial)
            while True:
                if isinstance(step, sasl.Challenge):
                    self.write(b"+ " + sasl.encode_challenge(step.data) + b"\r\n")
                    line = await self.channel.read_line()
                    step = mechanism.respond(sasl.decode_client_response(line))
                elif isinstance(step, sasl.NeedScramKeys):
                    keys = await self.authenticator.scram_keys(step.username)
                    step = mechanism.provide_keys(keys)
                elif isinstance(step, sasl.Failed):
                    self._log.info("SASL {mech} failed: {reason}", mech=name, reason=step.reason)
                    return self._login_failed(tag, "Authentication failed", "AUTHENTICATIONFAILED")
                else:
                    return await self._finish_login(tag, step.credentials, mechanism.server_final)
        except sasl.SASLCancelled:
            raise _bad("Authentication cancelled") from None
        except sasl.SASLMalformed:
            raise _bad("Invalid base64 in SASL response") from None

    # ------------------------------------------------------------- authenticated

    def _leave_folder(self) -> None:
        if self.view is not None:
            self.view.unwatch()
            self.view.folder.close()
            self.view = None
        if self.state is State.SELECTED:
            self.state = State.AUTHENTICATED

    async def _select(self, tag: str, command: Command) -> Outcome | None:
        assert isinstance(command, Select)
        if command.qresync is not None and not self.qresync:
            raise _bad("QRESYNC is not enabled")  # RFC 7162 §3.2.5
        if self.view is not None:
            self._leave_folder()  # RFC 3501 §6.3.1: a failed SELECT leaves none selected
            self.untagged("OK [CLOSED] Previous mailbox closed")  # RFC 7162 §3.2.11
        folder = await self.store.select(self._principal(), command.mailbox, command.readonly)
        view = _View(folder)
        view.qresync = self.qresync
        self.view = view
        self.state = State.SELECTED
        view.unwatch = folder.watch(self._changed)
        snap = folder.snapshot
        flags = list(SYSTEM_FLAGS) + sorted(view.keywords)
        self.untagged("FLAGS (" + " ".join(flags) + ")")
        if self.rev2:
            # RFC 9051 §6.3.2: no RECENT, no UNSEEN code, and a LIST response for the name
            view.recent.clear()
            self.write(b"* %d EXISTS\r\n" % len(view.uids))
            self.write(b'* LIST () "/" ' + mailbox_name(snap.name, utf8=True) + b"\r\n")
        else:
            self.write(b"* %d EXISTS\r\n* %d RECENT\r\n" % (len(view.uids), len(view.recent)))
        unseen = enumerate([] if self.rev2 else view.uids, start=1)
        for msn, uid in unseen:
            if "\\Seen" not in view.flags[uid]:
                self.untagged(f"OK [UNSEEN {msn}] First unseen message")
                break
        permanent = view.permanent_flags(flags)
        self.untagged(f"OK [PERMANENTFLAGS ({permanent})] Flags permitted")
        self.untagged(f"OK [UIDVALIDITY {snap.uidvalidity}] UIDs valid")
        self.untagged(f"OK [UIDNEXT {snap.uidnext}] Predicted next UID")
        # RFC 7162 §3.1.2.1: always sent by a CONDSTORE server.
        self.untagged(f"OK [HIGHESTMODSEQ {snap.highest_modseq}] Highest")
        view.condstore = self.condstore or command.condstore
        self.condstore = view.condstore
        if command.qresync is not None and command.qresync.uidvalidity == snap.uidvalidity:
            await self._resync(view, command.qresync)
        mode = "READ-ONLY" if view.read_only else "READ-WRITE"
        verb = "EXAMINE" if command.readonly else "SELECT"
        self._done(tag, f"{verb} completed", mode)
        return None

    async def _resync(self, view: _View, known: QResync) -> None:
        """RFC 7162 §3.2.5: what changed since the client's MODSEQ, at SELECT time."""
        gone = await view.folder.vanished(known.modseq)
        if known.known_uids is not None:
            top = max([*gone, *view.uids[-1:]], default=0)
            gone = [uid for uid in gone if known.known_uids.contains(uid, top)]
        gone = [uid for uid in gone if uid not in view.flags]
        if gone:
            self.write(b"* VANISHED (EARLIER) %s\r\n" % render_uid_set(gone).encode())
        for uid in view.uids:
            if view.modseq.get(uid, 0) > known.modseq:
                self.write(view.flags_response(uid, with_uid=True))

    async def _create(self, tag: str, command: Command) -> Outcome | None:
        assert isinstance(command, Create)
        name = command.mailbox.rstrip(DELIMITER)  # RFC 3501 §6.3.3 trailing delimiter
        if not valid_name(name) or name == "INBOX":
            raise _no("Cannot create that mailbox", "CANNOT")
        await self.store.create_folder(self._principal(), name)
        await self._safe_sync(allow_expunge=True)
        self._done(tag, "CREATE completed")
        return None

    async def _delete(self, tag: str, command: Command) -> Outcome | None:
        assert isinstance(command, Delete)
        if command.mailbox == "INBOX":
            raise _no("INBOX cannot be deleted", "CANNOT")
        await self.store.delete_folder(self._principal(), command.mailbox)
        await self._safe_sync(allow_expunge=True)
        self._done(tag, "DELETE completed")
        return None

    async def _rename(self, tag: str, command: Command) -> Outcome | None:
        assert isinstance(command, Rename)
        new = command.new.rstrip(DELIMITER)
        if not valid_name(new) or new == "INBOX":
            raise _no("Cannot rename to that name", "CANNOT")
        await self.store.rename_folder(self._principal(), command.old, new)
        await self._safe_sync(allow_expunge=True)
        self._done(tag, "RENAME completed")
        return None

    async def _subscribe(self, tag: str, command: Command) -> Outcome | None:
        assert isinstance(command, Subscribe)
        await self.store.set_subscribed(self._principal(), command.mailbox, command.subscribe)
        await self._safe_sync(allow_expunge=True)
        verb = "SUBSCRIBE" if command.subscribe else "UNSUBSCRIBE"
        self._done(tag, f"{verb} completed")
        return None

    async def _list(self, tag: str, command: Command) -> Outcome | None:
        assert isinstance(command, List)
        verb = "LSUB" if command.lsub else "LIST"
        if not command.pattern:
            if not command.lsub:  # RFC 3501 §6.3.8: the delimiter and root
                self.untagged('LIST (\\Noselect) "/" ""')
            await self._safe_sync(allow_expunge=True)
            self._done(tag, f"{verb} completed")
            return None
        if command.extended:
            return await self._list_extended(tag, command)
        pattern = command.reference + command.pattern
        folders = await self.store.list_folders(self._principal())
        existing = {f.name: f for f in folders}
        if command.lsub:
            names = list(await self.store.subscriptions(self._principal()))
        else:
            names = list(existing)
        rows = self._list_rows(pattern, names, existing, command.lsub)
        for name, attributes in rows:
            if command.special_use and not any(a in _SPECIAL_USE for a in attributes):
                continue
            line = b"* " + verb.encode() + b" (" + " ".join(attributes).encode() + b') "/" '
            self.write(line + mailbox_name(name, self.utf8) + b"\r\n")
            if command.status and "\\Noselect" not in attributes and name in existing:
                # RFC 5819: STATUS right after the mailbox's LIST response
                await self._write_status(name, command.status)
        await self._safe_sync(allow_expunge=True)
        self._done(tag, f"{verb} completed")
        return None

    def _list_rows(
        self, pattern: str, names: list[str], existing: dict[str, FolderInfo], lsub: bool
    ) -> list[tuple[str, list[str]]]:
        all_names = set(existing)
        rows: dict[str, list[str]] = {}
        for name in names:
            if list_matches(pattern, name):
                rows[name] = self._attributes(name, existing, all_names, lsub)
                if lsub:
                    continue
            # RFC 3501 §6.3.9: an unsubscribed parent stands in for a subscribed name only
            # where the pattern ("%") stops above it. §6.3.4/§6.3.8: a missing parent of an
            # existing mailbox (e.g. one DELETEd with inferiors) is listed as \Noselect.
            parts = name.split(DELIMITER)
            for depth in range(1, len(parts)):
                parent = DELIMITER.join(parts[:depth])
                if parent not in rows and list_matches(pattern, parent):
                    if lsub and (parent in names or "%" not in pattern):
                        continue
                    if not lsub and parent in existing:
                        continue
                    rows[parent] = ["\\Noselect", "\\HasChildren"] if not lsub else ["\\Noselect"]
        return sorted(rows.items(), key=lambda r: (r[0] != "INBOX", r[0]))

    @staticmethod
    def _attributes(
        name: str, existing: dict[str, FolderInfo], all_names: set[str], lsub: bool
    ) -> list[str]:
        info = existing.get(name)
        if info is None:
            return [] if lsub else ["\\NonExistent"]
        attributes = list(info.attributes)
        if lsub:
            return [a for a in attributes if a == "\\Noselect"]
        if not any(a in ("\\HasChildren", "\\HasNoChildren") for a in attributes):
            prefix = name + DELIMITER
            has = any(other.startswith(prefix) for other in all_names)
            attributes.append("\\HasChildren" if has else "\\HasNoChildren")
        return attributes

    async def _list_extended(self, tag: str, command: List) -> Outcome | None:
        """RFC 5258 LIST: several patterns, SUBSCRIBED selection and return options."""
        user = self._principal()
        existing = {f.name: f for f in await self.store.list_folders(user)}
        subscribed = set(await self.store.subscriptions(user))
        patterns = [command.reference + p for p in (command.pattern, *command.more_patterns)]

        def matched(name: str) -> bool:
            return any(list_matches(p, name) for p in patterns if p)

        rows: dict[str, list[str]] = {}
        childinfo: set[str] = set()
        if command.subscribed:
            for name in subscribed:
                if matched(name):
                    rows[name] = self._attributes(name, existing, set(existing), lsub=False)
                elif command.recursive:
                    # RFC 5258 CHILDINFO: a matching ancestor reports its subscribed descendant.
                    parts = name.split(DELIMITER)
                    for depth in range(1, len(parts)):
                        parent = DELIMITER.join(parts[:depth])
                        if matched(parent):
                            childinfo.add(parent)
            for parent in childinfo - set(rows):
                rows[parent] = self._attributes(parent, existing, set(existing), lsub=False)
        else:
            for pattern in patterns:
                if pattern:
                    rows.update(self._list_rows(pattern, list(existing), existing, False))
        for name, attributes in sorted(rows.items(), key=lambda r: (r[0] != "INBOX", r[0])):
            if command.special_use and not any(a in _SPECIAL_USE for a in attributes):
                continue
            if (command.subscribed or command.return_subscribed) and name in subscribed:
                attributes = [*attributes, "\\Subscribed"]
            extra = b' ("CHILDINFO" ("SUBSCRIBED"))' if name in childinfo else b""
            line = b"* LIST (" + " ".join(attributes).encode() + b') "/" '
            self.write(line + mailbox_name(name, self.utf8) + extra + b"\r\n")
            if command.status and name in existing and "\\Noselect" not in attributes:
                await self._write_status(name, command.status)  # RFC 5819
        await self._safe_sync(allow_expunge=True)
        self._done(tag, "LIST completed")
        return None

    async def _status(self, tag: str, command: Command) -> Outcome | None:
        assert isinstance(command, Status)
        await self._write_status(command.mailbox, command.items)
        await self._safe_sync(allow_expunge=True)
        self._done(tag, "STATUS completed")
        return None

    async def _write_status(self, mailbox: str, items: Sequence[str]) -> None:
        status = await self.store.status(self._principal(), mailbox)
        values = {
            "MESSAGES": status.messages,
            "RECENT": status.recent,
            "UIDNEXT": status.uidnext,
            "UIDVALIDITY": status.uidvalidity,
            "UNSEEN": status.unseen,
            "HIGHESTMODSEQ": status.highest_modseq,
            "SIZE": status.size,  # RFC 8438
            "DELETED": status.deleted,  # RFC 9208 STATUS items
            "DELETED-STORAGE": (status.deleted_size + 1023) // 1024,
        }
        if "HIGHESTMODSEQ" in items:
            self._enable_condstore()
        body = " ".join(f"{item} {values[item]}" for item in items)
        self.write(b"* STATUS " + mailbox_name(mailbox, self.utf8) + f" ({body})\r\n".encode())

    async def _append(self, tag: str, command: Command) -> Outcome | None:
        assert isinstance(command, Append)
        if len(command.message) > self.config.append_limit:
            raise _no("Message too large", "TOOBIG")
        if not command.message:
            raise _no("Empty message")
        flags = frozenset(f for f in command.flags if f != "\\Recent")
        result = await self.store.append(
            self._principal(), command.mailbox, command.message, flags, command.internal_date
        )
        if self.view is not None:
            self.view.dirty = True
        await self._safe_sync(allow_expunge=True)
        self._done(tag, "APPEND completed", f"APPENDUID {result.uidvalidity} {result.uid}")
        return None

    async def _idle(self, tag: str, command: Command) -> Outcome | None:
        if not self.config.idle_enabled:
            raise _bad("IDLE is disabled")
        # RFC 2177: report pending changes at once, then as they happen.
        self.write(b"+ idling\r\n")
        await self._safe_sync(allow_expunge=True)
        self._idling = True
        if self.view is not None and self.view.dirty:
            self._kick_idle_sync()
        try:
            line = await self.channel.read_line()
        finally:
            self._idling = False
        if self._idle_sync is not None:
            await self._idle_sync
        if line.strip().upper() != b"DONE":
            raise _bad("Expected DONE")
        self._done(tag, "IDLE terminated")
        return None

    async def _namespace(self, tag: str, command: Command) -> Outcome | None:
        # Spec seed-1 §11.3: empty personal namespace ("Root Folder Path" blank);
        # RFC 2342 other users' namespace where folders can be shared (RFC 4314).
        others = '(("#users/" "/"))' if isinstance(self.store, FolderAccess) else "NIL"
        self.untagged(f'NAMESPACE (("" "/")) {others} NIL')
        await self._safe_sync(allow_expunge=True)
        self._done(tag, "NAMESPACE completed")
        return None

    async def _compress(self, tag: str, command: Command) -> Outcome | None:
        assert isinstance(command, Compress)
        if command.mechanism != "DEFLATE":
            raise _bad(f"Unknown compression mechanism {command.mechanism[:40]}")
        if self.compressed:
            raise _no("DEFLATE is already active", "COMPRESSIONACTIVE")
        self.compressed = True
        # Nothing may be written after this OK until the adapter has switched over.
        self._done(tag, "DEFLATE active")
        return Outcome.COMPRESS

    async def _quota_lines(self) -> bytes:
        """RFC 9208 QUOTA response for the user's root ``""``; empty without a limit."""
        info = await self.store.quota(self._principal())
        if not info.limit_kb:
            return b""
        return b'* QUOTA "" (STORAGE %d %d)\r\n' % (info.usage_kb, info.limit_kb)

    async def _getquotaroot(self, tag: str, command: Command) -> Outcome | None:
        assert isinstance(command, GetQuotaRoot)
        await self.store.status(self._principal(), command.mailbox)  # NONEXISTENT if absent
        quota = await self._quota_lines()
        root = b' ""' if quota else b""  # RFC 9208: no limit, no quota root
        self.write(
            b"* QUOTAROOT " + mailbox_name(command.mailbox, self.utf8) + root + b"\r\n" + quota
        )
        await self._safe_sync(allow_expunge=True)
        self._done(tag, "GETQUOTAROOT completed")
        return None

    async def _getquota(self, tag: str, command: Command) -> Outcome | None:
        assert isinstance(command, GetQuota)
        quota = await self._quota_lines() if command.root == "" else b""
        if not quota:
            raise _no("No such quota root", "NONEXISTENT")
        self.write(quota)
        await self._safe_sync(allow_expunge=True)
        self._done(tag, "GETQUOTA completed")
        return None

    async def _setquota(self, tag: str, command: Command) -> Outcome | None:
        assert isinstance(command, SetQuota)
        if not self._principal().is_admin:
            raise _no("Only administrators may change quotas", "NOPERM")
        if command.root != "":
            raise _no("No such quota root", "NONEXISTENT")
        limits = dict(command.limits)
        if set(limits) - {"STORAGE"}:
            raise _no("Only the STORAGE resource has a limit here", "CANNOT")
        # RFC 9208: a resource left out of the list loses its limit.
        await self.store.set_quota(self._principal(), limits.get("STORAGE", 0))
        self.write(await self._quota_lines())
        await self._safe_sync(allow_expunge=True)
        self._done(tag, "SETQUOTA completed")
        return None

    # ------------------------------------------------------------- RFC 4314 ACL

    def _access(self) -> FolderAccess:
        if not isinstance(self.store, FolderAccess):
            raise _bad("ACL is not supported here")
        return self.store

    async def _getacl(self, tag: str, command: Command) -> Outcome | None:
        assert isinstance(command, GetAcl)
        entries = await self._access().get_acl(self._principal(), command.mailbox)
        body = b"".join(b" " + astring(who) + b" " + astring(rights) for who, rights in entries)
        self.write(b"* ACL " + mailbox_name(command.mailbox, self.utf8) + body + b"\r\n")
        await self._safe_sync(allow_expunge=True)
        self._done(tag, "GETACL completed")
        return None

    async def _setacl(self, tag: str, command: Command) -> Outcome | None:
        assert isinstance(command, SetAcl)
        try:
            imaprights.parse_change(command.rights)
        except imaprights.RightsError as err:
            # RFC 4314 §3.1: an unknown right fails the command, never ignored
            raise _bad(f"{err}; rights are {imaprights.ALL} (and obsolete c, d)") from None
        access = self._access()
        await access.set_acl(self._principal(), command.mailbox, command.identifier, command.rights)
        await self._safe_sync(allow_expunge=True)
        self._done(tag, "SETACL completed")
        return None

    async def _deleteacl(self, tag: str, command: Command) -> Outcome | None:
        assert isinstance(command, DeleteAcl)
        await self._access().delete_acl(self._principal(), command.mailbox, command.identifier)
        await self._safe_sync(allow_expunge=True)
        self._done(tag, "DELETEACL completed")
        return None

    async def _listrights(self, tag: str, command: Command) -> Outcome | None:
        assert isinstance(command, ListRights)
        info = await self._access().list_rights(
            self._principal(), command.mailbox, command.identifier
        )
        groups = b"".join(b" " + astring(group) for group in info.optional)
        self.write(
            b"* LISTRIGHTS "
            + mailbox_name(command.mailbox, self.utf8)
            + b" "
            + astring(command.identifier)
            + b" "
            + astring(info.required)
            + groups
            + b"\r\n"
        )
        await self._safe_sync(allow_expunge=True)
        self._done(tag, "LISTRIGHTS completed")
        return None

    async def _myrights(self, tag: str, command: Command) -> Outcome | None:
        assert isinstance(command, MyRights)
        rights = await self._access().my_rights(self._principal(), command.mailbox)
        name = mailbox_name(command.mailbox, self.utf8)
        self.write(b"* MYRIGHTS " + name + b" " + astring(rights) + b"\r\n")
        await self._safe_sync(allow_expunge=True)
        self._done(tag, "MYRIGHTS completed")
        return None

    async def _enable(self, tag: str, command: Command) -> Outcome | None:
        assert isinstance(command, Enable)
        known = ("CONDSTORE", "QRESYNC", "UTF8=ACCEPT", "IMAP4REV2")
        enabled = [n for n in command.capabilities if n in known]
        if "CONDSTORE" in enabled or "QRESYNC" in enabled:
            self._enable_condstore()  # RFC 7162 §3.2.3: QRESYNC implies CONDSTORE
        if "QRESYNC" in enabled:
            self.qresync = True
        if "UTF8=ACCEPT" in enabled:
            self.utf8 = True
        if "IMAP4REV2" in enabled:
            enabled = [n if n != "IMAP4REV2" else "IMAP4rev2" for n in enabled]
            # RFC 9051 §6.3.1: from now on rev2 rules, with UTF-8 mailbox names (§5.1)
            self.rev2 = True
            self.utf8 = True
        self.untagged("ENABLED" + "".join(f" {name}" for name in enabled))
        self._done(tag, "ENABLE completed")
        return None

    # ------------------------------------------------------------- selected

    async def _close(self, tag: str, command: Command) -> Outcome | None:
        view = self._selected()
        if not view.read_only and view.may("e"):
            # RFC 3501 §6.4.2: expunge silently, no EXPUNGE responses
            # (RFC 4314 §4: without "e" CLOSE just closes)
            await view.folder.expunge(None)
        self._leave_folder()
        self._done(tag, "CLOSE completed")
        return None

    async def _unselect(self, tag: str, command: Command) -> Outcome | None:
        self._leave_folder()  # RFC 3691
        self._done(tag, "UNSELECT completed")
        return None

    async def _expunge(self, tag: str, command: Command) -> Outcome | None:
        assert isinstance(command, Expunge)
        view = self._selected()
        if view.read_only:
            raise _no("Mailbox is read-only", "READ-ONLY")
        if not view.may("e"):
            raise _no("You may not expunge this mailbox", "NOPERM")  # RFC 4314 §4
        uids = None
        if command.uids is not None:
            uids = [uid for _, uid in view.resolve(command.uids, by_uid=True)]
        if uids is None or uids:
            removed = await view.folder.expunge(uids)
            self.write(view.expunge_lines(removed))
        await self._safe_sync(allow_expunge=True)
        # RFC 7162: with CONDSTORE on, the new HIGHESTMODSEQ once the client knows it all.
        code = f"HIGHESTMODSEQ {view.highest_modseq}" if view.condstore else ""
        self._done(tag, "EXPUNGE completed", code)
        return None

    async def _fetch(self, tag: str, command: Command) -> Outcome | None:
        release = await self.channel.acquire("fetch")
        if release is None:
            # Spec seed-4 §8.3: the manual's text once the 40 s wait is over.
            raise _no("Too many current FETCHes active", "LIMIT")
        try:
            return await self._fetch_slotted(tag, command)
        finally:
            release()

    async def _fetch_slotted(self, tag: str, command: Command) -> Outcome | None:
        assert isinstance(command, Fetch)
        view = self._selected()
        if command.vanished and not self.qresync:
            raise _bad("QRESYNC is not enabled")  # RFC 7162 §3.2.6
        targets = view.resolve(command.messages, command.uid)
        wants_modseq = command.changed_since is not None or any(
            item.name == "MODSEQ" for item in command.items
        )
        if wants_modseq:
            self._enable_condstore()
        if command.vanished:
            await self._vanished_earlier(view, command.messages, command.changed_since or 0)
        if command.changed_since is not None:  # RFC 7162 §3.1.4.1
            since = command.changed_since
            targets = [(msn, uid) for msn, uid in targets if view.modseq.get(uid, 0) > since]
        need = fetch.need_of(command.items)
        # RFC 4314 §4 FETCH: \Seen is set only for holders of the "s" right.
        seen = fetch.sets_seen(command.items) and not view.read_only and view.may("s")
        modseq = wants_modseq
        items = fetch.with_implicit(command.items, command.uid, seen_set=False, modseq=modseq)
        # RFC 7162 §3.1: once enabled, an implicit \Seen change reports UID and MODSEQ.
        with_flags = fetch.with_implicit(
            command.items,
            command.uid or view.condstore,
            seen_set=True,
            modseq=modseq or view.condstore,
        )
        missing = False
        size = BODY_BATCH if need >= fetch.Need.SUMMARY else FETCH_BATCH
        for start in range(0, len(targets), size):
            batch = targets[start : start + size]
            if start:
                await self.channel.drained()  # stream: wait while the client lags
            loaded: dict[int, MessageData] = {}
            if need > fetch.Need.FLAGS:
                loaded = await self._load(view, [uid for _, uid in batch], need)
            newly_seen: set[int] = set()
            if seen:
                unseen = [uid for _, uid in batch if "\\Seen" not in view.flags.get(uid, ())]
                unseen = [uid for uid in unseen if need is fetch.Need.FLAGS or uid in loaded]
                if unseen:
                    for meta in await view.folder.store(unseen, "+", frozenset({"\\Seen"})):
                        if meta.uid in view.flags:
                            view.flags[meta.uid] = meta.flags
                            view.modseq[meta.uid] = max(view.modseq[meta.uid], meta.modseq)
                            newly_seen.add(meta.uid)
            out: list[bytes] = []  # one write per batch: fewer transport (and DEFLATE) calls
            for _msn, uid in batch:
                if uid not in view.flags:
                    continue
                message = loaded.get(uid)
                if need > fetch.Need.FLAGS and message is None:
                    missing = True  # expunged by another session (RFC 2180 §4.1.2)
                    continue
                out.append(
                    fetch.render(
                        view.msn_of(uid),
                        uid,
                        view.flags[uid],
                        uid in view.recent,
                        with_flags if uid in newly_seen else items,
                        message,
                        view.modseq.get(uid, 0),
                    )
                )
            if out:
                self.write(b"".join(out))
        await self._safe_sync(allow_expunge=command.uid)
        if missing:
            raise _no("Some messages were expunged by another session", "EXPUNGEISSUED")
        self._done(tag, f"{'UID ' if command.uid else ''}FETCH completed")
        return None

    async def _vanished_earlier(self, view: _View, uids: SeqSet, since: int) -> None:
        """RFC 7162 §3.2.6: UIDs in ``uids`` expunged since ``since``, before the FETCHes."""
        gone = await view.folder.vanished(since)
        top = max([*gone, *view.uids[-1:]], default=0)
        gone = [u for u in gone if u not in view.flags and uids.contains(u, top)]
        if gone:
            self.write(b"* VANISHED (EARLIER) %s\r\n" % render_uid_set(gone).encode())

    @staticmethod
    async def _load(view: _View, uids: list[int], need: fetch.Need) -> dict[int, MessageData]:
        """Load what ``need`` asks for; bodies only where no summary is cached."""
        data = await view.folder.load(uids, need is fetch.Need.BODY)
        loaded = {d.uid: d for d in data}
        if need is fetch.Need.SUMMARY:
            lacking = [d.uid for d in data if d.summary is None]
            if lacking:
                loaded.update((d.uid, d) for d in await view.folder.load(lacking, True))
        return loaded

    async def _store(self, tag: str, command: Command) -> Outcome | None:
        assert isinstance(command, Store)
        view = self._selected()
        if view.read_only:
            raise _no("Mailbox is read-only", "READ-ONLY")
        targets = view.resolve(command.messages, command.uid)
        flags = frozenset(f for f in command.flags if f != "\\Recent")
        uids = [uid for _, uid in targets if uid not in view.pending_expunge]
        since = command.unchanged_since
        if since is not None:
            self._enable_condstore()
        result = await view.folder.store(uids, command.mode, flags, since) if uids else []
        for meta in result:
            if meta.uid in view.flags:
                view.flags[meta.uid] = meta.flags
                view.modseq[meta.uid] = max(view.modseq.get(meta.uid, 0), meta.modseq)
                view.highest_modseq = max(view.highest_modseq, meta.modseq)
                view.keywords.update(f for f in meta.flags if not f.startswith("\\"))
        self._announce_keywords(view)
        for meta in result:
            if meta.uid in view.flags and (not command.silent or view.condstore):
                # RFC 7162 §3.1.3: .SILENT still reports the new MODSEQ.
                # RFC 7162 §3.1: with CONDSTORE on, STORE's FETCHes carry UID and MODSEQ.
                with_uid = command.uid or view.condstore
                self.write(
                    view.flags_response(meta.uid, with_uid=with_uid, flags=not command.silent)
                )
        done = {meta.uid for meta in result}
        code = ""
        if since is not None:
            # RFC 7162 §3.1.3: messages changed since UNCHANGEDSINCE are left alone.
            modified = [(msn, uid) for msn, uid in targets if uid not in done and uid in view.flags]
            if modified:
                numbers = [uid if command.uid else msn for msn, uid in modified]
                code = f"MODIFIED {render_uid_set(numbers)}"
        missing = since is None and len(uids) < len(targets)
        await self._safe_sync(allow_expunge=command.uid)
        if missing:
            raise _no("Some messages were expunged by another session", "EXPUNGEISSUED")
        verb = f"{'UID ' if command.uid else ''}STORE"
        self._done(tag, f"Conditional {verb} failed" if code else f"{verb} completed", code)
        return None

    def _enable_condstore(self) -> None:
        """RFC 7162 §3.1: the first CONDSTORE-enabling command turns MODSEQ reporting on."""
        if not self.condstore:
            self.condstore = True
            if self.view is not None:
                self.view.condstore = True
                self.untagged(f"OK [HIGHESTMODSEQ {self.view.highest_modseq}] Highest")

    async def _copy(self, tag: str, command: Command) -> Outcome | None:
        assert isinstance(command, Copy)
        view = self._selected()
        verb = ("UID " if command.uid else "") + ("MOVE" if command.move else "COPY")
        if command.move and view.read_only:
            raise _no("Mailbox is read-only", "READ-ONLY")
        targets = view.resolve(command.messages, command.uid)
        uids = [uid for _, uid in targets]
        if not uids:
            await self._safe_sync(allow_expunge=True)
            self._done(tag, f"{verb} completed")
            return None
        result = await view.folder.copy(uids, command.mailbox, command.move)
        code = ""
        if result.source_uids:
            code = (
                f"COPYUID {result.uidvalidity} {render_uid_set(list(result.source_uids))} "
                f"{render_uid_set(list(result.dest_uids))}"
            )
        if command.move:
            # RFC 6851 §4.3: COPYUID goes in an untagged OK before the EXPUNGEs.
            if code:
                self.untagged(f"OK [{code}] Moved")
            self.write(view.expunge_lines(result.source_uids))
            code = ""
        await self._safe_sync(allow_expunge=True)
        if command.move and view.condstore:
            # RFC 6851 §4.4 + RFC 7162 §3.2.10: the expunges of a MOVE end as EXPUNGE's do.
            code = f"HIGHESTMODSEQ {view.highest_modseq}"
        self._done(tag, f"{verb} completed", code)
        return None

    async def _search(self, tag: str, command: Command) -> Outcome | None:
        view = self._selected()
        command = searchres.bind(command, view.saved)
        if searchres.saves(command):
            view.saved = []  # RFC 5182: a SAVE that fails leaves "$" empty
        release = await self.channel.acquire("search")
        if release is None:
            raise _no("Too many concurrent searches - try again later", "LIMIT")
        try:
            return await self._search_slotted(tag, command)
        finally:
            release()

    async def _search_slotted(self, tag: str, command: Command) -> Outcome | None:
        assert isinstance(command, Search | Sort | ThreadCommand)
        view = self._selected()
        if command.charset not in (None, "UTF-8", "US-ASCII"):
            raise _no("Unsupported charset", "BADCHARSET (UTF-8 US-ASCII)")
        uses_modseq = _mentions_modseq(command.key)
        if uses_modseq:
            self._enable_condstore()
        need = search_need(command.key)
        if not isinstance(command, Search):
            need = max(need, fetch.Need.SUMMARY)  # RFC 5256: sort/thread fields
        found = await self._matching(view, command.key, need)
        top = max((c.modseq for c in found), default=0)

        def number(c: _Candidate) -> int:
            return c.uid if command.uid else c.seq

        verb = type(command).__name__.upper()
        if isinstance(command, Sort):
            found.sort(key=lambda c: imapsearch.sort_key(command.criteria, c))
            self.untagged("SORT" + "".join(f" {number(c)}" for c in found))
        elif isinstance(command, ThreadCommand):
            verb = "THREAD"
            nodes = [
                imapthread.ThreadMessage.from_summary(number(c), c.summary, c.internal_date)
                for c in found
            ]
            if command.algorithm == "REFERENCES":
                threads = imapthread.thread_references(nodes)
            else:
                threads = imapthread.thread_orderedsubject(nodes)
            data = imapthread.format_threads(threads)
            # RFC 5256 §5: thread-data = "THREAD" [SP 1*thread-list]
            self.write(b"* THREAD" + (b" " + data if data else b"") + b"\r\n")
        else:
            hits = [number(c) for c in found]
            if searchres.saves(command) and self.view is view:
                view.saved = searchres.saved_uids(command.returns or (), [c.uid for c in found])
            returns = searchres.reported(command.returns, self.rev2)
            # RFC 7162 §3.1.5: a MODSEQ search reports the highest MODSEQ of the matches.
            if returns:
                self.untagged(esearch(tag, command.uid, returns, hits, top, uses_modseq))
            elif returns is None:
                suffix = f" (MODSEQ {top})" if uses_modseq and hits else ""
                self.untagged("SEARCH" + "".join(f" {n}" for n in hits) + suffix)
        await self._safe_sync(allow_expunge=command.uid)
        self._done(tag, f"{'UID ' if command.uid else ''}{verb} completed")
        return None

    async def _matching(
        self, view: _View, key: imapsearch.SearchKey, need: fetch.Need
    ) -> list[_Candidate]:
        """The messages of the view that ``key`` selects, in mailbox order."""
        count = len(view.uids)
        largest_uid = view.uids[-1] if view.uids else 0
        found: list[_Candidate] = []
        if need is fetch.Need.FLAGS and imapsearch.reads_flags_only(key):
            return self._matching_flags(view, key, count, largest_uid)
        pairs = list(enumerate(view.uids, start=1))
        for start in range(0, len(pairs), FETCH_BATCH):
            batch = pairs[start : start + FETCH_BATCH]
            loaded: dict[int, MessageData] = {}
            if need > fetch.Need.FLAGS:
                loaded = await self._load(view, [uid for _, uid in batch], need)
            for msn, uid in batch:
                if uid not in view.flags:
                    continue
                message = loaded.get(uid)
                if need > fetch.Need.FLAGS and message is None:
                    continue  # expunged meanwhile
                candidate = _Candidate(msn, uid, view.flags[uid], uid in view.recent, message)
                candidate.modseq = view.modseq.get(uid, 0)
                if imapsearch.matches(key, candidate, max_seq=count, max_uid=largest_uid):
                    found.append(candidate)
        return found

    @staticmethod
    def _matching_flags(
        view: _View, key: imapsearch.SearchKey, count: int, largest_uid: int
    ) -> list[_Candidate]:
        """A flags-only key (UNSEEN, DELETED, KEYWORD x, ...) decided once per flag set.

        Its answer depends on nothing but a message's flags and \\Recent, and a folder
        holds few distinct combinations (the store shares one set per combination), so a
        100,000-message search evaluates the key a handful of times, not once per message.
        """
        decided: dict[tuple[frozenset[str], bool], bool] = {}
        found: list[_Candidate] = []
        for msn, uid in enumerate(view.uids, start=1):
            flags = view.flags[uid]
            recent = uid in view.recent
            verdict = decided.get((flags, recent))
            if verdict is None:
                probe = _Candidate(msn, uid, flags, recent, None)
                verdict = imapsearch.matches(key, probe, max_seq=count, max_uid=largest_uid)
                decided[(flags, recent)] = verdict
            if verdict:
                candidate = _Candidate(msn, uid, flags, recent, None)
                candidate.modseq = view.modseq.get(uid, 0)
                found.append(candidate)
        return found


_SPECIAL_USE = frozenset(
    {"\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash"}
)


_META_KEYS = (
    imapsearch.Before,
    imapsearch.On,
    imapsearch.Since,
    imapsearch.Larger,
    imapsearch.Smaller,
    imapsearch.Older,
    imapsearch.Younger,
)
_SENT_KEYS = (imapsearch.SentBefore, imapsearch.SentOn, imapsearch.SentSince)


def esearch(
    tag: str, uid: bool, returns: Sequence[str], hits: list[int], top: int, modseq: bool
) -> str:
    """The RFC 4731 ``ESEARCH`` response for ``hits`` (ascending)."""
    parts = [f'ESEARCH (TAG "{tag}")']
    if uid:
        parts.append("UID")
    if hits and "MIN" in returns:
        parts.append(f"MIN {hits[0]}")
    if hits and "MAX" in returns:
        parts.append(f"MAX {hits[-1]}")
    if hits and "ALL" in returns:
        parts.append(f"ALL {render_uid_set(hits)}")
    if "COUNT" in returns:
        parts.append(f"COUNT {len(hits)}")
    if modseq and hits:
        parts.append(f"MODSEQ {top}")  # RFC 7162 §3.1.5 with ESEARCH
    return " ".join(parts)


def _mentions_modseq(key: imapsearch.SearchKey) -> bool:
    if isinstance(key, imapsearch.ModSeq):
        return True
    if isinstance(key, imapsearch.Not):
        return _mentions_modseq(key.key)
    if isinstance(key, imapsearch.Or):
        return _mentions_modseq(key.left) or _mentions_modseq(key.right)
    if isinstance(key, imapsearch.And):
        return any(_mentions_modseq(k) for k in key.keys)
    return False


def search_need(key: imapsearch.SearchKey) -> fetch.Need:
    """How much of each message a SEARCH key needs loaded."""
    if imapsearch.needs_raw(key) or isinstance(key, _SENT_KEYS):
        return fetch.Need.BODY
    if isinstance(key, _META_KEYS):
        return fetch.Need.META
    if isinstance(key, imapsearch.Not):
        return search_need(key.key)
    if isinstance(key, imapsearch.Or):
        return max(search_need(key.left), search_need(key.right))
    if isinstance(key, imapsearch.And):
        return max((search_need(k) for k in key.keys), default=fetch.Need.FLAGS)
    return fetch.Need.FLAGS


class _Candidate:
    """One message as ``imapsearch.matches`` sees it."""

    def __init__(
        self,
        msn: int,
        uid: int,
        flags: frozenset[str],
        recent: bool,
        data: MessageData | None,
    ) -> None:
        self.seq = msn
        self.uid = uid
        self.flags = flags
        self.recent = recent
        self.modseq = 0
        self._data = data
        self._summary: mime.MessageSummary | None = None

    def _loaded(self) -> MessageData:
        if self._data is None:  # pragma: no cover - search_need prevents it
            raise RuntimeError("SEARCH key needs message data that was not loaded")
        return self._data

    @property
    def internal_date(self) -> datetime:
        return self._loaded().internal_date

    @property
    def size(self) -> int:
        return self._loaded().size

    @property
    def summary(self) -> mime.MessageSummary:
        if self._summary is None:
            data = self._loaded()
            self._summary = data.summary or mime.analyse(data.raw or b"")
        return self._summary

    def raw(self) -> bytes:
        return self._loaded().raw or b""
