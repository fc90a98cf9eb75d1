"""The LDAP address book on a real ``twistd vpop3d`` process, driven by OpenLDAP's
``ldapsearch``/``ldapadd``/``ldapmodify``/``ldapwhoami`` (acceptance check 39)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import ServerProcess, add_user, start_server
from vpop3d.store import addressbook

pytestmark = [
    pytest.mark.network,
    pytest.mark.skipif(shutil.which("ldapsearch") is None, reason="ldap-utils not installed"),
]


@pytest.fixture
def ldap_server(tmp_path: Path, database_url: str) -> Iterator[ServerProcess]:
    """A server with only the LDAP listener, two users and two external contacts."""
    process = start_server(tmp_path, database_url, listeners=("ldap",))
    add_user(process, "fred", "pw-fred", real_name="Fred Bloggs")
    add_user(process, "alice", "pw-alice", real_name="Alice Smith")
    process.db.run_sync(addressbook.add, "Fred External", "fe@other.test")
    process.db.run_sync(addressbook.add, "Zed Zulu", "zed@other.test")
    yield process
    process.stop()


def _run(
    command: list[str], stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=30, env=env)


def _search(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    url = f"ldap://127.0.0.1:{server.ports['ldap']}"
    return _run(["ldapsearch", "-x", "-LLL", "-H", url, *args])


def _dns(output: str) -> list[str]:
    return [line[4:] for line in output.splitlines() if line.startswith("dn: ")]


def test_search_by_cn_prefix_under_o_vpop3_and_blank_base(ldap_server: ServerProcess) -> None:
    """``-b O=VPOP3 (cn=Fred*)`` finds the user and the external contact; so does ``-b ""``."""
    result = _search(ldap_server, "-b", "O=VPOP3", "(cn=Fred*)")
    assert result.returncode == 0, result.stderr
    assert _dns(result.stdout) == ["uid=fred,OU=Users,O=VPOP3", "uid=ext-1,OU=External,O=VPOP3"]
    assert "mail: fred@example.test" in result.stdout
    assert "cn: Fred Bloggs" in result.stdout
    blank = _search(ldap_server, "-b", "", "(mail=alice*)", "cn", "mail")
    assert blank.returncode == 0, blank.stderr
    assert _dns(blank.stdout) == ["uid=alice,OU=Users,O=VPOP3"]
    assert "cn: Alice Smith" in blank.stdout


def test_external_base_returns_only_external_entries(ldap_server: ServerProcess) -> None:
    """``-b OU=External,O=VPOP3`` lists only the externally added contacts."""
    result = _search(ldap_server, "-b", "OU=External,O=VPOP3", "(objectClass=person)", "mail")
    assert result.returncode == 0, result.stderr
    assert _dns(result.stdout) == [
        "uid=ext-1,OU=External,O=VPOP3",
        "uid=ext-2,OU=External,O=VPOP3",
    ]


def test_paged_and_sorted_search(ldap_server: ServerProcess) -> None:
    """``-E pr=2/noprompt -E sss=cn`` returns 5 people in 3 pages, sorted by cn."""
    result = _search(
        ldap_server,
        "-E",
        "pr=2/noprompt",
        "-E",
        "sss=cn",
        "-b",
        "O=VPOP3",
        "(objectClass=inetOrgPerson)",
        "cn",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("# pagedresults:") == 3
    names = [line[4:] for line in result.stdout.splitlines() if line.startswith("cn: ")]
    # postmaster is the first-run administrator ("Administrator").
    assert names == sorted(names, key=str.casefold)
    assert len(names) == 5


def test_writes_are_refused_and_data_unchanged(ldap_server: ServerProcess) -> None:
    """ldapadd and ldapmodify fail with 53 (unwillingToPerform), even when bound."""
    url = f"ldap://127.0.0.1:{ldap_server.ports['ldap']}"
    bind = ["-D", "uid=fred,OU=Users,O=VPOP3", "-w", "pw-fred"]
    added = _run(
        ["ldapadd", "-x", "-H", url, *bind],
        "dn: uid=new,OU=External,O=VPOP3\nobjectClass: person\ncn: New\nsn: New\n",
    )
    assert added.returncode == 53, added.stderr
    assert "unwilling to perform" in added.stderr.lower()
    modified = _run(
        ["ldapmodify", "-x", "-H", url],
        "dn: uid=fred,OU=Users,O=VPOP3\nchangetype: modify\nreplace: cn\ncn: Evil\n",
    )
    assert modified.returncode == 53, modified.stderr
    assert len(ldap_server.db.read_sync(addressbook.list_all)) == 2
    check = _search(ldap_server, "-b", "O=VPOP3", "(uid=fred)", "cn")
    assert "cn: Fred Bloggs" in check.stdout


def test_simple_bind_with_local_credentials(ldap_server: ServerProcess) -> None:
    """A user's DN and password bind; a wrong password is invalidCredentials (49)."""
    url = f"ldap://127.0.0.1:{ldap_server.ports['ldap']}"
    ok = _run(["ldapwhoami", "-x", "-H", url, "-D", "uid=fred,OU=Users,O=VPOP3", "-w", "pw-fred"])
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "u:fred"
    bad = _run(["ldapwhoami", "-x", "-H", url, "-D", "fred@example.test", "-w", "nope"])
    assert bad.returncode == 49


def test_start_tls_then_bind(ldap_server: ServerProcess) -> None:
    """``-ZZ`` upgrades the connection with StartTLS before the password is sent."""
    url = f"ldap://127.0.0.1:{ldap_server.ports['ldap']}"
    # The server's self-signed certificate names 127.0.0.1; trust exactly that one.
    certificate = ldap_server.data_dir / "tls" / "selfsigned.crt"
    env = dict(os.environ, LDAPTLS_CACERT=str(certificate), LDAPTLS_REQCERT="demand")
    bind = ["-D", "uid=fred,OU=Users,O=VPOP3", "-w", "pw-fred"]
    result = _run(["ldapwhoami", "-ZZ", "-x", "-H", url, *bind], env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "u:fred"


def test_full_server_serves_the_address_book(server: ServerProcess) -> None:
    """The standard test server (every listener) answers LDAP on its ldap port."""
    add_user(server, "fred", "pw-fred", real_name="Fred Bloggs")
    server.db.run_sync(addressbook.add, "Fred External", "fe@other.test")
    result = _search(server, "-b", "O=VPOP3", "(cn=Fred*)", "mail")
    assert result.returncode == 0, result.stderr
    assert _dns(result.stdout) == ["uid=fred,OU=Users,O=VPOP3", "uid=ext-1,OU=External,O=VPOP3"]
    external = _search(server, "-b", "OU=External,O=VPOP3", "(mail=*)", "mail")
    assert _dns(external.stdout) == ["uid=ext-1,OU=External,O=VPOP3"]
