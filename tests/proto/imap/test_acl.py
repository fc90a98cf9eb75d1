"""RFC 4314 ACL commands, NAMESPACE and rights in the selected state, as transcripts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from twisted.internet.defer import Deferred, fail, succeed

from tests.proto.imap.fakes import Client, FakeSelected, FakeStore, message, with_messages
from vpop3d.core import imaprights
from vpop3d.ports import Principal
from vpop3d.proto.imap.mailbox import (
    FolderInfo,
    MailboxError,
    MessageMeta,
    RightsInfo,
    SelectedFolder,
)

SHARED = "#users/alice/Shared"


class RightsSelected(FakeSelected):
    """A fake selected folder that refuses flag changes the rights do not allow."""

    def store(
        self,
        uids: Sequence[int],
        mode: str,
        flags: frozenset[str],
        unchanged_since: int | None = None,
    ) -> Deferred[Sequence[MessageMeta]]:
        rights = self.snapshot.rights
        if rights is not None and flags and not imaprights.storable(flags, rights):
            return fail(MailboxError("You may not change these flags here", "NOPERM"))
        return super().store(uids, mode, flags, unchanged_since)


class AclStore(FakeStore):
    """FakeStore plus ``FolderAccess``: fred owns his folders; SHARED is alice's."""

    def __init__(self, shared_rights: str = "lr", fake_nodes: bool = True) -> None:
        super().__init__()
        self.shared_rights = shared_rights
        self.fake_nodes = fake_nodes
        self.acl: dict[str, dict[str, str]] = {"INBOX": {}}

    def _rights(self, name: str) -> str:
        return self.shared_rights if name == SHARED else imaprights.ALL

    def list_folders(self, user: Principal) -> Deferred[Sequence[FolderInfo]]:
        own = list(self.folders)
        extra = ["#users", "#users/alice"] if self.fake_nodes else []
        names = sorted(own + [SHARED] * ("l" in self.shared_rights) + extra)
        return succeed([FolderInfo(n) for n in names])

    def select(self, user: Principal, name: str, read_only: bool) -> Deferred[SelectedFolder]:
        folder = self.folders.get(name)
        if folder is None:
            return fail(MailboxError("No such mailbox", "NONEXISTENT"))
        rights = self._rights(name)
        if "r" not in rights:
            return fail(MailboxError("You may not read this mailbox", "NOPERM"))
        shared = name == SHARED
        selected = RightsSelected(folder, name, read_only or imaprights.read_only(rights))
        selected.snapshot = replace(selected.snapshot, rights=rights if shared else None)
        selected.store_ = self
        return succeed(selected)

    def get_acl(self, user: Principal, name: str) -> Deferred[Sequence[tuple[str, str]]]:
        if "a" not in self._rights(name):
            return fail(MailboxError("You may not administer this mailbox", "NOPERM"))
        entries = [("fred", imaprights.display(imaprights.ALL))]
        entries += [(k, imaprights.display(v)) for k, v in self.acl.get(name, {}).items()]
        return succeed(entries)

    def set_acl(self, user: Principal, name: str, identifier: str, rights: str) -> Deferred[None]:
        try:
            who = imaprights.parse_identifier(identifier).render()
        except imaprights.IdentifierError as err:
            return fail(MailboxError(str(err), "CANNOT"))
        table = self.acl.setdefault(name, {})
        table[who] = imaprights.parse_change(rights).apply(table.get(who, ""))
        return succeed(None)

    def delete_acl(self, user: Principal, name: str, identifier: str) -> Deferred[None]:
        self.acl.get(name, {}).pop(identifier, None)
        return succeed(None)

    def list_rights(self, user: Principal, name: str, identifier: str) -> Deferred[RightsInfo]:
        if identifier == "fred":
            return succeed(RightsInfo(imaprights.ALL, ()))
        return succeed(RightsInfo("", imaprights.OPTIONAL_GROUPS))

    def my_rights(self, user: Principal, name: str) -> Deferred[str]:
        return succeed(imaprights.display(self._rights(name)))


def _client(shared_rights: str = "lr", fake_nodes: bool = True) -> Client:
    store = with_messages(2, AclStore(shared_rights, fake_nodes))
    store._make(SHARED)
    store.folders[SHARED].add(message("shared"))
    client = Client(store)
    client.login()
    return client


def test_capability_and_namespace() -> None:
    """ACL and RIGHTS=texk are advertised; NAMESPACE names the #users/ namespace."""
    client = _client()
    caps = client.lines("c1 CAPABILITY")[0].split()
    assert {"ACL", "RIGHTS=texk"} <= set(caps)
    assert client.lines("n1 NAMESPACE") == [
        '* NAMESPACE (("" "/")) (("#users/" "/")) NIL',
        "n1 OK NAMESPACE completed",
    ]


def test_store_without_acl_has_no_acl_commands() -> None:
    """A mail store without FolderAccess: no ACL capability, no other-users namespace."""
    client = Client(with_messages(0))
    client.login()
    assert "ACL" not in client.lines("c1 CAPABILITY")[0].split()
    assert client.lines("n1 NAMESPACE")[0] == '* NAMESPACE (("" "/")) NIL NIL'
    assert client.lines("a1 GETACL INBOX") == ["a1 BAD ACL is not supported here"]


def test_setacl_getacl_deleteacl() -> None:
    """RFC 4314 §3: SETACL adds, replaces and removes rights; GETACL lists them."""
    client = _client()
    assert client.lines("a1 SETACL INBOX bob lrswida") == ["a1 OK SETACL completed"]
    assert client.lines('a2 SETACL INBOX group:sales "+lr"') == ["a2 OK SETACL completed"]
    assert client.lines("a3 SETACL INBOX bob -wd") == ["a3 OK SETACL completed"]
    assert client.lines("a4 GETACL INBOX") == [
        '* ACL "INBOX" fred lrswipkxteacd bob lrsia group:sales lr',
        "a4 OK GETACL completed",
    ]
    assert client.lines("a5 DELETEACL INBOX bob") == ["a5 OK DELETEACL completed"]
    assert client.lines("a6 GETACL INBOX")[0] == ('* ACL "INBOX" fred lrswipkxteacd group:sales lr')


def test_setacl_unknown_right_is_bad_and_changes_nothing() -> None:
    """RFC 4314 §3.1: an unknown right fails the command with BAD."""
    client = _client()
    out = client.lines("a1 SETACL INBOX bob lrq")
    assert out[0].startswith("a1 BAD Unknown right 'q'")
    assert client.lines("a2 GETACL INBOX")[0] == '* ACL "INBOX" fred lrswipkxteacd'


def test_setacl_negative_identifier_is_no() -> None:
    """Negative-rights identifiers ("-bob") are refused with NO [CANNOT]."""
    client = _client()
    assert client.lines("a1 SETACL INBOX -bob r") == [
        "a1 NO [CANNOT] Negative rights are not supported"
    ]


def test_acl_command_syntax_errors() -> None:
    """Missing arguments are BAD; ACL commands need authentication."""
    client = _client()
    assert client.lines("a1 SETACL INBOX bob")[0].startswith("a1 BAD")
    assert client.lines("a2 GETACL")[0].startswith("a2 BAD")
    fresh = Client(AclStore())
    assert fresh.lines("a3 MYRIGHTS INBOX")[0].startswith("a3 BAD")


def test_myrights_and_listrights() -> None:
    """MYRIGHTS shows the caller's rights; LISTRIGHTS the owner's and the optional ones."""
    client = _client("lrs")
    assert client.lines(f'a1 MYRIGHTS "{SHARED}"') == [
        f'* MYRIGHTS "{SHARED}" lrs',
        "a1 OK MYRIGHTS completed",
    ]
    assert client.lines("a2 LISTRIGHTS INBOX bob") == [
        '* LISTRIGHTS "INBOX" bob "" l r s w i p k x t e a',
        "a2 OK LISTRIGHTS completed",
    ]
    assert client.lines("a3 LISTRIGHTS INBOX fred")[0] == ('* LISTRIGHTS "INBOX" fred lrswipkxtea')


def test_getacl_without_administer_is_noperm() -> None:
    """GETACL on a folder without "a" is NO [NOPERM]."""
    client = _client("lr")
    assert client.lines(f'a1 GETACL "{SHARED}"') == [
        "a1 NO [NOPERM] You may not administer this mailbox"
    ]


def test_list_shared_with_fake_nodes() -> None:
    """Fake access: #users/alice is listed as an existing folder with children."""
    client = _client()
    assert client.lines('l1 LIST "" "#users/*"') == [
        '* LIST (\\HasChildren) "/" "#users/alice"',
        '* LIST (\\HasNoChildren) "/" "#users/alice/Shared"',
        "l1 OK LIST completed",
    ]


def test_list_shared_without_fake_nodes() -> None:
    """No fake access: the upper levels are \\Noselect."""
    client = _client(fake_nodes=False)
    assert client.lines('l1 LIST "" "#users/%"') == [
        '* LIST (\\Noselect \\HasChildren) "/" "#users/alice"',
        "l1 OK LIST completed",
    ]


def test_select_read_only_without_write_rights() -> None:
    """ "lr": SELECT answers READ-ONLY with no permanent flags; STORE is refused."""
    client = _client("lr")
    out = client.send(f's1 SELECT "{SHARED}"')
    assert "* OK [PERMANENTFLAGS ()] Flags permitted" in out
    assert out.endswith("s1 OK [READ-ONLY] SELECT completed\r\n")
    assert client.lines("s2 STORE 1 +FLAGS (\\Seen)") == ["s2 NO [READ-ONLY] Mailbox is read-only"]


def test_select_lists_only_permitted_flags() -> None:
    """ "lrs": READ-WRITE, PERMANENTFLAGS (\\Seen); \\Flagged alone is NOPERM."""
    client = _client("lrs")
    out = client.send(f's1 SELECT "{SHARED}"')
    assert "* OK [PERMANENTFLAGS (\\Seen)] Flags permitted" in out
    assert out.endswith("s1 OK [READ-WRITE] SELECT completed\r\n")
    assert client.lines("s2 STORE 1 +FLAGS (\\Flagged)") == [
        "s2 NO [NOPERM] You may not change these flags here"
    ]
    assert client.lines("s3 STORE 1 +FLAGS (\\Seen)") == [
        "* 1 FETCH (FLAGS (\\Seen \\Recent))",
        "s3 OK STORE completed",
    ]


def test_fetch_does_not_set_seen_without_s() -> None:
    """RFC 4314 §4: FETCH BODY[] leaves \\Seen alone without the "s" right."""
    client = _client("lrwt")
    client.select(f'"{SHARED}"')
    out = client.send("f1 FETCH 1 (BODY[] FLAGS)")
    assert "\\Seen" not in out
    assert client.store.folders[SHARED].messages[1].flags == frozenset()


def test_expunge_needs_e_and_close_skips_it() -> None:
    """Without "e": EXPUNGE is NOPERM and CLOSE closes without expunging."""
    client = _client("lrwt")
    client.select(f'"{SHARED}"')
    client.send("s1 STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert client.lines("e1 EXPUNGE") == ["e1 NO [NOPERM] You may not expunge this mailbox"]
    assert client.lines("c1 CLOSE") == ["c1 OK CLOSE completed"]
    assert 1 in client.store.folders[SHARED].messages


def test_select_without_read_is_noperm() -> None:
    """ "l" only: SELECT fails with NOPERM and leaves no folder selected."""
    client = _client("l")
    assert client.lines(f's1 SELECT "{SHARED}"') == ["s1 NO [NOPERM] You may not read this mailbox"]
    assert client.lines("f1 FETCH 1 FLAGS") == ["f1 BAD No mailbox selected"]
