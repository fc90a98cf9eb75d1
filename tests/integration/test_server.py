"""The server as an admin runs it: twistd plugins, tap.conf, locks, restarts, kill -9."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from base64 import b64encode
from pathlib import Path

import pytest
from twisted.application.service import IServiceMaker
from twisted.plugin import getPlugins

from tests.support.server import REPO, TWISTD, ServerProcess, env, start_server, write_config
from tests.support.stack import add_user_fast
from vpop3d.app.mailstore import FolderTarget, store_message
from vpop3d.store import blobs, folders, messages, users
from vpop3d.store.blobs import FileBlobStore

pytestmark = pytest.mark.network


def _twistd(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TWISTD, "-n", "--pidfile=", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env(),
        timeout=60,
    )


def test_plugins_are_discoverable() -> None:
    """twistd sees vpop3d and one plugin per protocol."""
    sys.path.insert(0, str(REPO))
    try:
        import twisted.plugins

        names = {p.tapname for p in getPlugins(IServiceMaker, twisted.plugins)}
    finally:
        sys.path.remove(str(REPO))
    assert {"vpop3d", "vpop3d-smtp", "vpop3d-pop3", "vpop3d-imap", "vpop3d-web"} <= names


def test_server_listens_and_serves_health(server: ServerProcess) -> None:
    """All configured listeners accept connections; the web port answers /health."""
    url = f"http://127.0.0.1:{server.ports['http']}/health"
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.load(response)
    assert body["status"] == "ok"


def test_status_service_requires_an_administrator(server: ServerProcess) -> None:
    """GET /status answers JSON to postmaster and 401 to a wrong password."""
    url = f"http://127.0.0.1:{server.ports['status']}/status"

    def get(user: str, password: str) -> tuple[int, bytes]:
        token = b64encode(f"{user}:{password}".encode()).decode()
        request = urllib.request.Request(url, headers={"Authorization": f"Basic {token}"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    status, body = get("postmaster", "admin")
    assert status == 200
    assert json.loads(body)["hostname"] == "mail.example.test"
    assert get("postmaster", "wrong")[0] == 401


def test_first_run_creates_admin_domain_and_certificate(server: ServerProcess) -> None:
    """A fresh data dir gets postmaster (must change password), the local domain and a cert."""
    admin = server.db.read_sync(users.by_name, "postmaster")
    assert admin is not None
    assert admin.is_admin
    assert admin.must_change_password
    assert (server.data_dir / "tls" / "selfsigned.crt").exists()
    listing = server.cli("domain", "list").stdout
    assert "example.test\t(default)" in listing


def test_second_instance_on_same_data_dir_is_refused(server: ServerProcess) -> None:
    """A second server on the same data dir exits non-zero with one clear line."""
    result = _twistd("vpop3d", "-c", str(server.config_path), cwd=server.config_path.parent)
    assert result.returncode != 0
    assert "already running" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[server]\nbogus = 1\n", "[server] bogus: unknown key"),
        ("[smtpx]\nport = 25\n", "[smtpx]: unknown section"),
        ("[pop3]\nport = seventy\n", "[pop3] port: expected a whole number"),
        ("[imap]\nport = 70000\n", "[imap] port: 70000 is out of range 0-65535"),
        ("[smtp]\nstarttls = maybe\n", "[smtp] starttls: expected one of off, optional, required"),
        ("[server]\ndatabase = mysql://x\n", "[server] database: expected an sqlite:///"),
    ],
)
def test_bad_config_is_one_error_line(tmp_path: Path, text: str, expected: str) -> None:
    """A bad tap.conf names file, section and key on one line and starts nothing."""
    conf = tmp_path / "bad.conf"
    conf.write_text(text)
    result = _twistd("vpop3d", "-c", str(conf), cwd=tmp_path)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "bad.conf" in lines[0]
    assert expected in lines[0]
    assert not (tmp_path / "data").exists()


def test_split_processes_share_one_data_dir(tmp_path: Path, database_url: str) -> None:
    """vpop3d-web and vpop3d-pop3 may run side by side on one data dir and database."""
    config, ports = write_config(tmp_path, database_url, listeners=("http",))
    first = subprocess.Popen(
        [*TWISTD, "-n", "--pidfile=", "vpop3d-web", "-c", str(config)],
        cwd=tmp_path,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        from tests.support.server import wait_for_port

        wait_for_port(ports["http"])
        other = _twistd("vpop3d-pop3", "-c", str(config), "--help", cwd=tmp_path)
        assert other.returncode == 0
        refused = _twistd("vpop3d", "-c", str(config), cwd=tmp_path)
        assert refused.returncode != 0
        assert "already running" in refused.stderr
    finally:
        first.terminate()
        first.wait(15)


def test_committed_mail_survives_sigkill(server: ServerProcess) -> None:
    """Mail committed before a SIGKILL is all there after the restart, bodies intact."""
    server.db.run_sync(add_user_fast, "fred")
    user = server.db.read_sync(users.by_name, "fred")
    assert user is not None
    store = FileBlobStore(server.data_dir)
    bodies = [f"Subject: {i}\r\n\r\nmessage {i}\r\n".encode() for i in range(20)]
    for body in bodies:
        spool = store.new_spool()
        spool.write(body)
        server.db.run_sync(store_message, store, spool, [FolderTarget(user.id)])
    server.kill()
    server.start()
    server.db.engine.dispose()
    inbox = server.db.read_sync(folders.inbox, user.id)
    stored = server.db.read_sync(messages.in_folder, inbox.id)
    assert len(stored) == 20
    found = {server.db.read_sync(blobs.read_bytes, store, m.blob_id) for m in stored}
    assert found == set(bodies)


def test_cli_changes_reach_running_server(server: ServerProcess) -> None:
    """The CLI works against the live server's database (users, domains, mappings)."""
    server.cli("user", "add", "kate", "--password", "pw1", "--real-name", "Kate K")
    server.cli("domain", "add", "b.test")
    server.cli("mapping", "add", "sales", "kate")
    assert "kate\tKate K" in server.cli("user", "list").stdout
    assert "sales -> kate" in server.cli("mapping", "list").stdout
    failed = server.cli("user", "add", "kate", "--password", "x", check=False)
    assert failed.returncode == 2
    assert failed.stderr.strip() == "vpop3d: user 'kate' already exists"


def test_refuses_old_schema_without_auto_migrate(tmp_path: Path) -> None:
    """With auto_migrate = no an empty database is refused with a clear instruction."""
    config, _ = write_config(
        tmp_path, f"sqlite:///{tmp_path / 'fresh.sqlite3'}", listeners=("http",)
    )
    text = config.read_text().replace("[server]\n", "[server]\nauto_migrate = no\n", 1)
    config.write_text(text)
    result = _twistd("vpop3d", "-c", str(config), cwd=tmp_path)
    assert result.returncode != 0
    assert "run 'vpop3d migrate'" in result.stderr


def test_starts_on_separate_postgres_like_config(tmp_path: Path, database_url: str) -> None:
    """The same tree starts from another tap.conf with high ports (the CI PostgreSQL run
    passes a postgresql:// URL here)."""
    process = start_server(tmp_path, database_url, listeners=("http", "status"))
    try:
        assert process.process is not None
        assert process.process.poll() is None
    finally:
        process.stop()


def test_session_log_records_smtp_and_hides_credentials(tmp_path: Path, database_url: str) -> None:
    """With session_logs = smtp, SMTPSVR.LOG holds the transcript; AUTH secrets are redacted."""
    import smtplib

    from tests.support.server import add_user

    process = start_server(
        tmp_path, database_url, listeners=("smtp",), extra="[logging]\nsession_logs = smtp\n"
    )
    try:
        add_user(process, "fred", "Sw0rdfish!")
        with smtplib.SMTP("127.0.0.1", process.ports["smtp"], timeout=30) as client:
            client.ehlo("client.example.test")
            client.starttls()
            client.ehlo("client.example.test")
            client.login("fred", "Sw0rdfish!")
            client.sendmail("fred@example.test", ["fred@example.test"], b"Subject: t\r\n\r\nhi\r\n")
        log = (process.data_dir / "logs" / "SMTPSVR.LOG").read_bytes()
    finally:
        process.stop()
    assert b"< ehlo client.example.test" in log.lower()
    assert b"> 220 " in log
    assert b"Sw0rdfish" not in log
    from base64 import b64encode as enc

    assert enc(b"\0fred\0Sw0rdfish!") not in log
