"""The Global Address Book directory view over the store, and the LDAP wiring."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import pytest_twisted

from tests.support.stack import Stack
from vpop3d.app.addressbook import (
    EXTERNAL_BRANCH,
    ROOT,
    USERS_BRANCH,
    AddressBookView,
    Entry,
    directory_entries,
)
from vpop3d.config import ListenerSpec
from vpop3d.proto.directory import normalise_dn
from vpop3d.store import addressbook, domains, users
from vpop3d.wiring_ldap import listener_config

_F = TypeVar("_F", bound=Callable[..., Any])
ensure_deferred = cast(Callable[[_F], _F], pytest_twisted.ensureDeferred)


def _by_dn(entries: list[Entry]) -> dict[str, Entry]:
    return {entry.dn: entry for entry in entries}


def _default_domain(stack: Stack) -> str:
    default = stack.db.read_sync(domains.default)
    assert default is not None
    return default.name


def test_repo_add_list_remove(stack: Stack) -> None:
    """External entries are added, listed by name and removed by id."""
    zed = stack.db.run_sync(addressbook.add, " Zed Zulu ", "zed@other.test")
    amy = stack.db.run_sync(addressbook.add, "Amy Adams", "amy@other.test")
    listed = stack.db.read_sync(addressbook.list_all)
    assert [e.name for e in listed] == ["Amy Adams", "Zed Zulu"]
    assert stack.db.read_sync(addressbook.by_id, zed.id) == zed
    assert stack.db.run_sync(addressbook.remove, amy.id) is True
    assert stack.db.run_sync(addressbook.remove, amy.id) is False
    assert [e.id for e in stack.db.read_sync(addressbook.list_all)] == [zed.id]


def test_tree_has_the_containers(stack: Stack) -> None:
    """O=VPOP3 with the Users and External branches is always there."""
    entries = _by_dn(stack.db.read_sync(directory_entries))
    assert entries[ROOT].attributes["o"] == ("VPOP3",)
    assert entries[USERS_BRANCH].attributes["ou"] == ("Users",)
    assert entries[EXTERNAL_BRANCH].attributes["ou"] == ("External",)


def test_local_users_are_listed_with_name_and_addresses(stack: Stack) -> None:
    """A user's entry has cn (real name), uid, and mail at every local domain,
    the default domain first."""
    domain = _default_domain(stack)
    stack.add_domain("second.test")
    stack.add_user("fred", real_name="Fred Bloggs")
    entries = _by_dn(stack.db.read_sync(directory_entries))
    fred = entries["uid=fred," + USERS_BRANCH]
    assert fred.login == "fred"
    assert fred.attributes["cn"] == ("Fred Bloggs",)
    assert fred.attributes["sn"] == ("Bloggs",)
    assert fred.attributes["givenName"] == ("Fred",)
    assert fred.attributes["uid"] == ("fred",)
    assert fred.attributes["mail"] == (f"fred@{domain}", "fred@second.test")
    assert "inetOrgPerson" in fred.attributes["objectClass"]


def test_user_without_real_name_uses_the_user_name(stack: Stack) -> None:
    """cn falls back to the user name."""
    stack.add_user("bob")
    bob = _by_dn(stack.db.read_sync(directory_entries))["uid=bob," + USERS_BRANCH]
    assert bob.attributes["cn"] == ("bob",)
    assert "givenName" not in bob.attributes


def test_disabled_users_are_not_listed(stack: Stack) -> None:
    """A disabled account is not in the address book."""
    user_id = stack.add_user("gone")
    stack.db.run_sync(users.update_fields, user_id, enabled=False)
    assert "uid=gone," + USERS_BRANCH not in _by_dn(stack.db.read_sync(directory_entries))


def test_external_entries_are_under_ou_external(stack: Stack) -> None:
    """Externally added contacts get their own branch and cannot be bound to."""
    contact = stack.db.run_sync(addressbook.add, "Zed Zulu", "zed@other.test")
    nameless = stack.db.run_sync(addressbook.add, "", "anon@other.test")
    entries = _by_dn(stack.db.read_sync(directory_entries))
    zed = entries[f"uid=ext-{contact.id},{EXTERNAL_BRANCH}"]
    assert zed.login is None
    assert zed.attributes["mail"] == ("zed@other.test",)
    assert zed.attributes["cn"] == ("Zed Zulu",)
    anon = entries[f"uid=ext-{nameless.id},{EXTERNAL_BRANCH}"]
    assert anon.attributes["cn"] == ("anon@other.test",)


@ensure_deferred
async def test_view_reads_in_the_pool(stack: Stack) -> None:
    """AddressBookView.entries fires with the current tree without blocking."""
    stack.add_user("fred")
    entries = await AddressBookView(stack.db).entries()
    assert "uid=fred," + USERS_BRANCH in _by_dn(entries)
    assert AddressBookView.naming_context == ROOT


def _spec(require_auth: bool = False) -> ListenerSpec:
    return ListenerSpec("ldap", "ldap", "ldap", 389, "", False, "off", require_auth)


def test_listener_config_reads_settings() -> None:
    """ldap.* settings and the tap.conf require_auth key shape the listener config."""
    settings = {"ldap.max_results": 50, "ldap.idle_timeout": 30}
    config = listener_config(_Settings(settings), _spec())
    assert config.max_results == 50
    assert config.idle_timeout == 30.0
    assert config.require_auth is False
    assert listener_config(_Settings({"ldap.require_auth": True}), _spec()).require_auth
    assert listener_config(_Settings({}), _spec(require_auth=True)).require_auth


class _Settings:
    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values

    def get(self, key: str, default: Any = None) -> Any:
        return self._values.get(key, default)


def test_user_names_are_escaped_in_dns(stack: Stack) -> None:
    """A DN-special character in a user name is escaped (RFC 4514 §2.4)."""
    stack.add_user("a+b,c")
    dns = [e.dn for e in stack.db.read_sync(directory_entries) if e.login == "a+b,c"]
    assert dns == [r"uid=a\+b\,c," + USERS_BRANCH]
    assert normalise_dn(dns[0])[0] == (("uid", "a+b,c"),)
