"""tap.conf: the bootstrap settings, read once at start into frozen dataclasses.

tap.conf holds only what is needed before the database is reachable (data dir,
database URL, listeners, TLS files, logging); everything an admin edits at run time
lives in the database. Section and key names are case-insensitive (manual INI
semantics, seed-7 §16). Any unknown section or key, or a bad value, raises
:class:`ConfigError` whose message is one line naming file, section and key.
"""

from __future__ import annotations

import configparser
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

TLSMode = Literal["off", "optional", "required"]


class ConfigError(Exception):
    """A bad tap.conf; ``str()`` is the single line shown to the admin."""


@dataclass(frozen=True, slots=True)
class ListenerSpec:
    """One TCP listener: which protocol, where, and how TLS applies."""

    name: str  # section name: "smtp", "submission", "smtps", "smtp.extra", ...
    protocol: str  # smtp, pop3, imap, http, ldap, finger, password, status
    role: str  # smtp | submission | smtps | pop3 | pop3s | imap | imaps | http | ...
    port: int
    interface: str
    implicit_tls: bool
    starttls: TLSMode
    require_auth: bool

    @property
    def enabled(self) -> bool:
        return self.port != 0

    def endpoint(self) -> str:
        """A Twisted server endpoint description for this listener."""
        desc = f"tcp:{self.port}"
        if self.interface:
            desc += ":interface=" + self.interface.replace(":", r"\:")
        return desc


@dataclass(frozen=True, slots=True)
class TLSSpec:
    certificate: Path | None  # PEM chain (leaf first); None: self-signed in data_dir
    key: Path | None
    min_version: str  # "1.2" or "1.3"


@dataclass(frozen=True, slots=True)
class LoggingSpec:
    session_logs: frozenset[str]  # protocols whose session transcripts are written
    log_dir: Path


@dataclass(frozen=True, slots=True)
class BootConfig:
    """Everything tap.conf says, validated."""

    source: str
    hostname: str
    data_dir: Path
    database: str
    auto_migrate: bool
    db_threads: int
    blob_store: Literal["file", "database"]
    tls: TLSSpec
    logging: LoggingSpec
    listeners: tuple[ListenerSpec, ...] = field(default_factory=tuple)

    def listener(self, name: str) -> ListenerSpec:
        for spec in self.listeners:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def enabled_listeners(self, protocols: frozenset[str] | None = None) -> list[ListenerSpec]:
        return [
            s
            for s in self.listeners
            if s.enabled and (protocols is None or s.protocol in protocols)
        ]

    @property
    def tls_dir(self) -> Path:
        return self.data_dir / "tls"


@dataclass(frozen=True, slots=True)
class _Role:
    protocol: str
    port: int
    implicit_tls: bool = False
    starttls: TLSMode = "off"
    require_auth: bool = False
    tls_capable: bool = False  # accepts a "starttls" key


# Standard ports (issue #3, seed-1 §0, seed-4 §1). finger and password are off by default.
ROLES: Final[Mapping[str, _Role]] = {
    "smtp": _Role("smtp", 25, starttls="optional", tls_capable=True),
    "submission": _Role("smtp", 587, starttls="optional", require_auth=True, tls_capable=True),
    "smtps": _Role("smtp", 465, implicit_tls=True, require_auth=True),
    "pop3": _Role("pop3", 110, starttls="optional", tls_capable=True),
    "pop3s": _Role("pop3", 995, implicit_tls=True),
    "imap": _Role("imap", 143, starttls="optional", tls_capable=True),
    "imaps": _Role("imap", 993, implicit_tls=True),
    "http": _Role("http", 5108),
    "ldap": _Role("ldap", 389),
    "finger": _Role("finger", 0),
    "password": _Role("password", 0),
    "status": _Role("status", 5109),
}

_SERVER_KEYS = {
    "hostname",
    "data_dir",
    "database",
    "auto_migrate",
    "db_threads",
    "blob_store",
}
_LISTENER_KEYS = {"port", "interface", "starttls", "require_auth"}
_TLS_KEYS = {"certificate", "key", "min_version"}
_LOGGING_KEYS = {"session_logs", "log_dir"}
_TRUE = {"1", "yes", "true", "on"}
_FALSE = {"0", "no", "false", "off"}
_MACRO = re.compile(r"%(base|appdata|temp)%", re.IGNORECASE)


class _Reader:
    """Typed, case-insensitive access to one parsed file, with errors that name the key."""

    def __init__(self, source: str, parser: configparser.ConfigParser) -> None:
        self.source = source
        self.parser = parser
        self.sections = {name.lower(): name for name in parser.sections()}

    def fail(self, section: str, key: str | None, message: str) -> ConfigError:
        where = f"[{section}]" + (f" {key}" if key else "")
        return ConfigError(f"{self.source}: {where}: {message}")

    def raw(self, section: str, key: str) -> str | None:
        real = self.sections.get(section)
        if real is None or not self.parser.has_option(real, key):
            return None
        return self.parser.get(real, key).strip()

    def text(self, section: str, key: str, default: str) -> str:
        value = self.raw(section, key)
        return default if value is None else value

    def boolean(self, section: str, key: str, default: bool) -> bool:
        value = self.raw(section, key)
        if value is None or value == "":
            return default
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise self.fail(section, key, f"expected yes or no, got {value!r}")

    def integer(self, section: str, key: str, default: int, low: int, high: int) -> int:
        value = self.raw(section, key)
        if value is None or value == "":
            return default
        try:
            number = int(value)
        except ValueError:
            raise self.fail(section, key, f"expected a whole number, got {value!r}") from None
        if not low <= number <= high:
            raise self.fail(section, key, f"{number} is out of range {low}-{high}")
        return number

    def choice(self, section: str, key: str, default: str, allowed: tuple[str, ...]) -> str:
        value = self.text(section, key, default).lower() or default
        if value not in allowed:
            raise self.fail(section, key, f"expected one of {', '.join(allowed)}, got {value!r}")
        return value


def expand_path(value: str, base: Path) -> Path:
    """Expand the manual's path macros (seed-7 §7) and resolve relative paths on ``base``."""

    def macro(match: re.Match[str]) -> str:
        name = match.group(1).lower()
        if name == "temp":
            return str(base / "temp") + "/"
        return str(base) + "/"

    expanded = _MACRO.sub(macro, value).replace("\\", "/")
    expanded = re.sub("/{2,}", "/", expanded)
    path = Path(os.path.expanduser(expanded))
    return path if path.is_absolute() else base / path


def load(path: str | Path, overrides: Mapping[str, str] | None = None) -> BootConfig:
    """Read and validate ``path``; ``overrides`` maps ``section.key`` to a value."""
    source = str(path)
    parser = configparser.ConfigParser(interpolation=None, empty_lines_in_values=False)
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle, source=source)
    except FileNotFoundError:
        raise ConfigError(f"{source}: file not found") from None
    except (configparser.Error, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0]
        raise ConfigError(f"{source}: not a valid INI file: {first}") from None
    return parse(parser, source, Path(path).resolve().parent, overrides)


def loads(text: str, base_dir: Path, source: str = "<string>") -> BootConfig:
    """Like :func:`load` for text already in memory (tests, the CLI's --set)."""
    parser = configparser.ConfigParser(interpolation=None, empty_lines_in_values=False)
    try:
        parser.read_string(text, source=source)
    except configparser.Error as exc:
        raise ConfigError(f"{source}: not a valid INI file: {str(exc).splitlines()[0]}") from None
    return parse(parser, source, base_dir, None)


def parse(
    parser: configparser.ConfigParser,
    source: str,
    base_dir: Path,
    overrides: Mapping[str, str] | None,
) -> BootConfig:
    for dotted, value in (overrides or {}).items():
        section, _, key = dotted.rpartition(".")
        if not section or not key:
            raise ConfigError(f"--set {dotted}: expected section.key=value")
        real = next((s for s in parser.sections() if s.lower() == section.lower()), None)
        if real is None:
            parser.add_section(section)
            real = section
        parser.set(real, key, value)
    reader = _Reader(source, parser)
    _check_names(reader)

    data_dir = expand_path(reader.text("server", "data_dir", "data"), base_dir)
    hostname = reader.text("server", "hostname", "") or socket.getfqdn()
    if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?", hostname):
        raise reader.fail("server", "hostname", f"{hostname!r} is not a host name")
    database = reader.text("server", "database", "")
    if not database:
        database = f"sqlite:///{data_dir / 'vpop3d.sqlite3'}"
    elif not re.match(r"^(sqlite|postgresql)(\+\w+)?://", database):
        raise reader.fail(
            "server",
            "database",
            "expected an sqlite:/// or postgresql:// SQLAlchemy URL",
        )
    blob_store = reader.choice("server", "blob_store", "file", ("file", "database"))

    cert = reader.text("tls", "certificate", "")
    key = reader.text("tls", "key", "")
    if bool(cert) != bool(key):
        raise reader.fail(
            "tls", "key" if cert else "certificate", "certificate and key go together"
        )
    tls = TLSSpec(
        certificate=expand_path(cert, data_dir) if cert else None,
        key=expand_path(key, data_dir) if key else None,
        min_version=reader.choice("tls", "min_version", "1.2", ("1.2", "1.3")),
    )
    sessions = {
        word.strip().lower()
        for word in re.split(r"[\s,]+", reader.text("logging", "session_logs", ""))
        if word.strip()
    }
    unknown_logs = sessions - {"smtp", "pop3", "imap", "http", "ldap"}
    if unknown_logs:
        raise reader.fail(
            "logging", "session_logs", f"unknown protocol {sorted(unknown_logs)[0]!r}"
        )
    logging = LoggingSpec(
        session_logs=frozenset(sessions),
        log_dir=expand_path(reader.text("logging", "log_dir", "logs"), data_dir),
    )
    return BootConfig(
        source=source,
        hostname=hostname.lower(),
        data_dir=data_dir,
        database=database,
        auto_migrate=reader.boolean("server", "auto_migrate", True),
        db_threads=reader.integer("server", "db_threads", 8, 1, 256),
        blob_store=blob_store,  # type: ignore[arg-type]  # checked by choice()
        tls=tls,
        logging=logging,
        listeners=tuple(_listeners(reader)),
    )


def _check_names(reader: _Reader) -> None:
    known: dict[str, set[str]] = {
        "server": _SERVER_KEYS,
        "tls": _TLS_KEYS,
        "logging": _LOGGING_KEYS,
    }
    for lower, real in reader.sections.items():
        role = _role_of(lower)
        allowed = known.get(lower)
        if allowed is None and role is None:
            raise reader.fail(real, None, "unknown section")
        if allowed is None and role is not None:
            allowed = _LISTENER_KEYS if ROLES[role].tls_capable else {"port", "interface"}
            if role in ("smtp", "submission", "smtps"):
                allowed = allowed | {"require_auth"}
        for key in reader.parser.options(real):
            if allowed is not None and key not in allowed:
                raise reader.fail(real, key, "unknown key")


def _role_of(section: str) -> str | None:
    """``smtp`` and ``smtp.extra`` (a second instance) both have role ``smtp``."""
    base = section.split(".", 1)[0]
    if base not in ROLES:
        return None
    if "." in section and not re.fullmatch(r"[a-z][a-z0-9_-]*\.[a-z0-9_-]+", section):
        return None
    return base


def _listeners(reader: _Reader) -> list[ListenerSpec]:
    names = list(ROLES) + sorted(s for s in reader.sections if "." in s and _role_of(s))
    specs: list[ListenerSpec] = []
    for name in names:
        role_name = _role_of(name)
        assert role_name is not None
        role = ROLES[role_name]
        interface = reader.text(name, "interface", "")
        if interface and not re.fullmatch(r"[0-9A-Fa-f:.]+", interface):
            raise reader.fail(name, "interface", f"{interface!r} is not an IP address")
        starttls: TLSMode = role.starttls
        if role.tls_capable:
            starttls = reader.choice(
                name, "starttls", role.starttls, ("off", "optional", "required")
            )  # type: ignore[assignment]  # checked by choice()
        default_port = role.port if "." not in name else 0
        specs.append(
            ListenerSpec(
                name=name,
                protocol=role.protocol,
                role=role_name,
                port=reader.integer(name, "port", default_port, 0, 65535),
                interface=interface,
                implicit_tls=role.implicit_tls,
                starttls=starttls,
                require_auth=reader.boolean(name, "require_auth", role.require_auth),
            )
        )
    return specs


def defaults(data_dir: Path, hostname: str | None = None) -> BootConfig:
    """An empty tap.conf with ``data_dir`` (and ``hostname``): tests and benchmarks."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.add_section("server")
    parser.set("server", "data_dir", str(data_dir))
    if hostname:
        parser.set("server", "hostname", hostname)
    return parse(parser, "<defaults>", data_dir, None)
