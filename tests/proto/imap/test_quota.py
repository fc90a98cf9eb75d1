"""QUOTA (RFC 9208): GETQUOTAROOT, GETQUOTA, SETQUOTA and APPEND over quota."""

from __future__ import annotations

from tests.proto.imap.fakes import Client, FakeAuthenticator, message, with_messages


def _client(quota_kb: int, user: str = "fred") -> Client:
    store = with_messages(0)
    store.quota_kb = quota_kb
    store.folders["INBOX"].add(b"x" * 3000)  # 3 kB used
    client = Client(store, auth=FakeAuthenticator({user: "secret"}))
    client.login(user)
    return client


def test_quota_capabilities() -> None:
    """QUOTA and RES-STORAGE are advertised after login; QUOTASET only to admins."""
    caps = _client(10).lines("c1 CAPABILITY")[0].split()
    assert {"QUOTA", "QUOTA=RES-STORAGE", "STATUS=SIZE"} <= set(caps)
    assert "QUOTASET" not in caps
    assert "QUOTASET" in _client(10, "admin").lines("c1 CAPABILITY")[0].split()


def test_getquotaroot_reports_storage() -> None:
    """GETQUOTAROOT names root "" and its STORAGE usage and limit in kB."""
    out = _client(10).lines("a1 GETQUOTAROOT INBOX")
    assert out == [
        '* QUOTAROOT "INBOX" ""',
        '* QUOTA "" (STORAGE 3 10)',
        "a1 OK GETQUOTAROOT completed",
    ]


def test_getquota_and_unlimited_user() -> None:
    """GETQUOTA "" answers with the limit; a user without a limit has no quota root."""
    assert _client(10).lines('a1 GETQUOTA ""')[0] == '* QUOTA "" (STORAGE 3 10)'
    client = _client(0)
    assert client.lines("a2 GETQUOTAROOT Sent")[0] == '* QUOTAROOT "Sent"'
    assert client.lines('a3 GETQUOTA ""') == ["a3 NO [NONEXISTENT] No such quota root"]


def test_getquota_failures() -> None:
    """Unknown roots and mailboxes are NO; quota commands need authentication."""
    client = _client(10)
    assert client.lines("a1 GETQUOTA other")[0].startswith("a1 NO [NONEXISTENT]")
    assert client.lines("a2 GETQUOTAROOT Nowhere")[0].startswith("a2 NO [NONEXISTENT]")
    fresh = Client(with_messages(0))
    assert fresh.lines('a3 GETQUOTA ""')[0].startswith("a3 BAD")


def test_setquota_refused_for_users() -> None:
    """SETQUOTA by an ordinary user is NO [NOPERM] and changes nothing."""
    client = _client(10)
    assert client.lines('a1 SETQUOTA "" (STORAGE 99)')[0].startswith("a1 NO [NOPERM]")
    assert client.store.quota_kb == 10


def test_setquota_by_admin() -> None:
    """An administrator sets the STORAGE limit; unknown resources are refused."""
    client = _client(10, "admin")
    out = client.lines('a1 SETQUOTA "" (STORAGE 512)')
    assert out == ['* QUOTA "" (STORAGE 3 512)', "a1 OK SETQUOTA completed"]
    assert client.store.quota_kb == 512
    assert client.lines('a2 SETQUOTA "" (MESSAGE 5)')[0].startswith("a2 NO [CANNOT]")
    assert client.lines('a3 SETQUOTA "" (STORAGE x)')[0].startswith("a3 BAD")


def test_append_over_quota() -> None:
    """APPEND that would pass the limit is NO [OVERQUOTA]; under the limit it works."""
    client = _client(4)
    small = message("small")
    out = client.raw(b"a1 APPEND INBOX {%d+}\r\n%s\r\n" % (len(small), small))
    assert "a1 OK [APPENDUID" in out
    big = b"y" * 2048
    out = client.raw(b"a2 APPEND INBOX {%d+}\r\n%s\r\n" % (len(big), big))
    assert out == "a2 NO [OVERQUOTA] Over quota\r\n"
    assert len(client.store.folders["INBOX"].messages) == 2


def test_status_size() -> None:
    """STATUS SIZE (RFC 8438) reports the octets in the mailbox."""
    client = _client(0)
    assert client.lines("a1 STATUS INBOX (SIZE MESSAGES)")[0] == (
        '* STATUS "INBOX" (SIZE 3000 MESSAGES 1)'
    )


def test_status_deleted_items() -> None:
    """STATUS DELETED and DELETED-STORAGE (RFC 9208) count \\Deleted messages, in kB."""
    client = _client(0)
    client.select()
    client.send("s1 STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert client.lines("a1 STATUS INBOX (DELETED DELETED-STORAGE)")[0] == (
        '* STATUS "INBOX" (DELETED 1 DELETED-STORAGE 3)'
    )
