"""tap.conf parsing: defaults, case-insensitivity, macros, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from vpop3d.config import ConfigError, expand_path, load, loads


def test_empty_file_gives_standard_ports(tmp_path: Path) -> None:
    """Every listener gets its standard port; finger and password are off."""
    config = loads("", tmp_path)
    ports = {spec.name: spec.port for spec in config.listeners}
    assert ports == {
        "smtp": 25,
        "submission": 587,
        "smtps": 465,
        "pop3": 110,
        "pop3s": 995,
        "imap": 143,
        "imaps": 993,
        "http": 5108,
        "ldap": 389,
        "finger": 0,
        "password": 0,
        "status": 5109,
    }
    assert config.database == f"sqlite:///{tmp_path / 'data' / 'vpop3d.sqlite3'}"
    assert config.listener("submission").require_auth
    assert not config.listener("smtp").require_auth
    assert config.listener("imaps").implicit_tls


def test_names_are_case_insensitive(tmp_path: Path) -> None:
    """[SMTP] Port= works like [smtp] port= (manual INI semantics)."""
    config = loads("[SMTP]\nPort = 2525\n[Server]\nHostName = Mail.Example.Test\n", tmp_path)
    assert config.listener("smtp").port == 2525
    assert config.hostname == "mail.example.test"


def test_extra_instance_section(tmp_path: Path) -> None:
    """[smtp.lan] is a second SMTP listener with its own port and settings."""
    config = loads("[smtp.lan]\nport = 5025\nrequire_auth = yes\n", tmp_path)
    extra = config.listener("smtp.lan")
    assert (extra.protocol, extra.role, extra.port, extra.require_auth) == (
        "smtp",
        "smtp",
        5025,
        True,
    )


def test_percent_in_password_needs_no_escaping(tmp_path: Path) -> None:
    """A % in the database URL is taken literally (no INI interpolation)."""
    url = "postgresql+psycopg2://u:p%40ss@db/vpop3d"
    assert loads(f"[server]\ndatabase = {url}\n", tmp_path).database == url


def test_path_macros_expand_with_separator(tmp_path: Path) -> None:
    """%base%_logs and %base%/_logs both mean <base>/_logs (seed-7 §7)."""
    assert expand_path("%base%_logs", tmp_path) == tmp_path / "_logs"
    assert expand_path("%BASE%/_logs", tmp_path) == tmp_path / "_logs"
    assert expand_path("logs", tmp_path) == tmp_path / "logs"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[server]\nfoo = 1\n", "test.conf: [server] foo: unknown key"),
        ("[nntp]\nport = 119\n", "test.conf: [nntp]: unknown section"),
        ("[smtp]\nport = -1\n", "test.conf: [smtp] port: -1 is out of range 0-65535"),
        ("[smtp]\nrequire_auth = perhaps\n", "test.conf: [smtp] require_auth: expected yes or no"),
        ("[smtps]\nstarttls = required\n", "test.conf: [smtps] starttls: unknown key"),
        ("[tls]\ncertificate = a.pem\n", "test.conf: [tls] key: certificate and key go together"),
        ("[logging]\nsession_logs = smtp, nntp\n", "test.conf: [logging] session_logs: unknown"),
        ("[server]\nhostname = bad host\n", "test.conf: [server] hostname: 'bad host' is not"),
        ("[imap]\ninterface = eth0\n", "test.conf: [imap] interface: 'eth0' is not an IP address"),
        ("no section\n", "test.conf: not a valid INI file"),
    ],
)
def test_errors_name_file_section_and_key(tmp_path: Path, text: str, message: str) -> None:
    """Each mistake is one line that starts with the file and names section and key."""
    path = tmp_path / "test.conf"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert str(caught.value).startswith(f"{tmp_path}/{message}")
    assert "\n" not in str(caught.value)


def test_overrides_apply_before_validation(tmp_path: Path) -> None:
    """--set smtp.port=2525 replaces the file's value; a bad override is refused."""
    path = tmp_path / "tap.conf"
    path.write_text("[smtp]\nport = 25\n")
    assert load(path, {"smtp.port": "2525"}).listener("smtp").port == 2525
    with pytest.raises(ConfigError, match=r"\[smtp\] port"):
        load(path, {"smtp.port": "x"})


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    """A missing tap.conf is reported, not a traceback."""
    with pytest.raises(ConfigError, match="file not found"):
        load(tmp_path / "nope.conf")


def test_shipped_tap_conf_is_valid_and_documented() -> None:
    """The sample tap.conf parses, and every key it may hold is mentioned in it."""
    sample = Path(__file__).resolve().parents[1] / "tap.conf"
    config = load(sample)
    assert config.listener("http").port == 5108
    text = sample.read_text()
    for key in (
        "hostname",
        "data_dir",
        "database",
        "auto_migrate",
        "db_threads",
        "blob_store",
        "certificate",
        "key",
        "min_version",
        "session_logs",
        "log_dir",
        "port",
        "interface",
        "starttls",
        "require_auth",
    ):
        assert key in text, key
