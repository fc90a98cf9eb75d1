"""The Setup Wizard (seed-1 §4): its answers, checks per page, and the one Finish.

Nothing is written until :func:`finish`, which creates in one transaction the
Connection, its Mail Sender, the initial Mail Collector, the Local Domains and one
schedule item [L775, L783]. Running it again updates the default Connection rather
than adding a second one ("may overwrite some of your settings" [L475]).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from sqlalchemy import Connection

from vpop3d.app import accounts
from vpop3d.app.connectors import ConfigError, parse_relay_servers
from vpop3d.store import connectors, domains, settings, users

DONE_KEY = "wizard.done"
DONT_ASK_KEY = "wizard.dont_ask"
COLLECTORS_KEY = "collectors.wizard"  # the initial collector until a collectors store exists
SCHEDULE_NAME = "Setup Wizard"
PAGES = 7

TIMES = {"never": None, "working": (9 * 60, 17 * 60 + 30), "24h": (0, 24 * 60 - 1)}
DAYS = {"weekdays": 0b0111110, "weekends": 0b1000001, "all": 0b1111111}  # bit 0 = Sunday
INTERVALS = {"10": 10, "60": 60, "120": 120}
COLLECT_KINDS = ("pop3", "smtp", "odmr")
POP3_AUTH = ("plain", "apop", "cram-md5")
ROUTING = ("parse", "single", "other_server")
_HOST = re.compile(r"[A-Za-z0-9.-]+(:\d{1,5})?")


class WizardError(ValueError):
    """An answer the wizard cannot use; ``str()`` names the field and the fix."""


@dataclass(frozen=True, slots=True)
class Answers:
    connection: str = "lan"  # page 1
    isp_name: str = ""  # page 2
    send_method: str = "relay"  # page 3: relay | direct
    relay_servers: str = ""
    relay_auth: bool = False
    relay_username: str = ""
    relay_password: str = ""
    dns_servers: str = ""
    collect: str = "pop3"  # page 4
    pop3_server: str = ""
    pop3_auth: str = "plain"
    pop3_username: str = ""
    pop3_password: str = ""
    routing: str = "parse"
    accepted_domains: str = ""
    target_user: str = ""
    target_address: str = ""
    target_server: str = ""
    smtp_domains: str = ""
    smtp_wait: str = "1"
    use_etrn: bool = False
    etrn_server: str = ""
    etrn_parameters: str = ""
    local_domains: str = ""  # page 5
    times: str = "24h"  # page 6
    days: str = "all"
    interval: str = "10"

    def updated(self, values: dict[str, Any]) -> Answers:
        known = {f.name: f for f in fields(self)}
        changes: dict[str, Any] = {}
        for key, value in values.items():
            if key in known:
                changes[key] = bool(value) if isinstance(getattr(self, key), bool) else str(value)
        return replace(self, **changes)


def split_list(text: str) -> list[str]:
    return [part.strip() for part in re.split(r"[;,\s]+", text) if part.strip()]


def check_page(page: int, a: Answers) -> None:
    """Refuse page ``page``'s answers with a sentence saying what to fix."""
    if page == 1 and a.connection != "lan":
        raise WizardError("Only LAN connections (router, proxy or firewall) are supported.")
    if page == 2 and not a.isp_name.strip():
        raise WizardError("Enter the name of your ISP; it labels the Connection.")
    if page == 3:
        if a.send_method not in ("relay", "direct"):
            raise WizardError("Choose how VPOP3 sends outgoing mail.")
        if a.send_method == "relay":
            try:
                parse_relay_servers("\n".join(split_list(a.relay_servers)))
            except ConfigError as exc:
                raise WizardError(f"SMTP Relay Servers: {exc}.") from None
            if a.relay_auth and not a.relay_username.strip():
                raise WizardError("Enter the SMTP Username, or untick SMTP authentication.")
    if page == 4:
        _check_collector(a)
    if page == 5:
        names = split_list(a.local_domains)
        if not names:
            raise WizardError("Enter at least one local domain, e.g. example.com.")
        for name in names:
            try:
                accounts.normalise_domain(name)
            except accounts.AdminError as exc:
                raise WizardError(f"Local Domains: {exc}.") from None
    if page == 6 and (a.times not in TIMES or a.days not in DAYS or a.interval not in INTERVALS):
        raise WizardError("Choose the times, the days and how often to collect and send.")


def _check_collector(a: Answers) -> None:
    if a.collect not in COLLECT_KINDS:
        raise WizardError("Choose how VPOP3 collects incoming mail.")
    if a.collect == "pop3":
        if not _HOST.fullmatch(a.pop3_server.strip()):
            raise WizardError("Enter the POP3 Server Address, e.g. pop.example.net.")
        if a.pop3_auth not in POP3_AUTH:
            raise WizardError("Choose the POP3 Authentication Method.")
        if not a.pop3_username.strip():
            raise WizardError("Enter the POP3 Account Username.")
        if a.routing not in ROUTING:
            raise WizardError("Choose the Routing Method.")
        if a.routing == "parse" and not split_list(a.accepted_domains):
            raise WizardError("Enter the Accepted Domains, separated by ';'.")
        if a.routing == "single" and not a.target_user.strip():
            raise WizardError("Choose the Target User.")
        if a.routing == "other_server" and not (
            "@" in a.target_address and a.target_server.strip()
        ):
            raise WizardError("Enter the Target email address and the Target email server.")
    if a.collect == "smtp" and not a.smtp_wait.strip().isdigit():
        raise WizardError("The wait for an incoming SMTP connection is a number of seconds.")


def check_all(a: Answers) -> None:
    for page in range(1, PAGES):
        check_page(page, a)


def collector_spec(a: Answers, connection_id: int) -> dict[str, Any]:
    """The initial Mail Collector (seed-1 §4.6) as plain values."""
    spec: dict[str, Any] = {"kind": a.collect, "connection_id": connection_id, "enabled": True}
    if a.collect == "pop3":
        spec.update(
            server=a.pop3_server.strip(),
            auth=a.pop3_auth,
            username=a.pop3_username.strip(),
            password=a.pop3_password,
            routing=a.routing,
            accepted_domains=split_list(a.accepted_domains),
            target_user=a.target_user.strip().lower(),
            target_address=a.target_address.strip(),
            target_server=a.target_server.strip(),
        )
    elif a.collect == "smtp":
        spec.update(
            domains=split_list(a.smtp_domains),
            wait_seconds=int(a.smtp_wait),
            use_etrn=a.use_etrn,
            etrn_server=a.etrn_server.strip(),
            etrn_parameters=a.etrn_parameters.strip(),
        )
    return spec


def _set_domains(conn: Connection, wanted: list[str]) -> None:
    names = [accounts.normalise_domain(n) for n in wanted]
    for existing in domains.list_all(conn):
        if existing.name not in names:
            domains.remove(conn, existing.name)
    for name in names:
        if domains.by_name(conn, name) is None:
            domains.add(conn, name)
    if domains.default(conn) is None:
        domains.set_default(conn, names[0])


def finish(conn: Connection, a: Answers) -> int:
    """Create everything the wizard describes in one transaction; return the Connection id."""
    try:
        check_all(a)
    except WizardError as exc:
        raise accounts.AdminError(str(exc)) from None
    sender = {
        "method": a.send_method,
        "relay_servers": "\n".join(split_list(a.relay_servers)) if a.send_method == "relay" else "",
        "auth_required": a.send_method == "relay" and a.relay_auth,
        "username": a.relay_username.strip() if a.relay_auth else "",
        "password": a.relay_password if a.relay_auth else "",
        "dns_servers": ", ".join(split_list(a.dns_servers)) if a.send_method == "direct" else "",
    }
    existing = [c for c in connectors.list_connections(conn) if c["is_default"]]
    if existing:
        connection_id = int(existing[0]["id"])
        connectors.update_connection(conn, connection_id, name=a.isp_name.strip(), kind="lan")
        connectors.update_sender(conn, connection_id, **sender)
    else:
        connection_id = connectors.add_connection(
            conn,
            a.isp_name.strip(),
            kind="lan",
            is_default=True,
            **{f"sender_{k}": v for k, v in sender.items()},
        )
    settings.put(conn, COLLECTORS_KEY, [collector_spec(a, connection_id)])
    _set_domains(conn, split_list(a.local_domains))
    for item in connectors.list_schedule(conn):
        if item["name"] == SCHEDULE_NAME:
            connectors.remove_schedule_item(conn, int(item["id"]))
    window = TIMES[a.times]
    connectors.add_schedule_item(
        conn,
        name=SCHEDULE_NAME,
        enabled=window is not None,
        use_default=False,
        connection_ids=str(connection_id),
        mode="every",
        interval_min=INTERVALS[a.interval],
        start_min=window[0] if window else 0,
        end_min=window[1] if window else 24 * 60 - 1,
        days_mask=DAYS[a.days],
    )
    settings.put(conn, DONE_KEY, True)
    return connection_id


def prefill(conn: Connection) -> Answers:
    """Start from what exists: local domains and the first user as the target."""
    names = [d.name for d in domains.list_all(conn)]
    first = users.list_all(conn)
    return Answers(
        local_domains="; ".join(names),
        accepted_domains="; ".join(names),
        target_user=first[0].name if first else "",
    )


def as_dict(a: Answers) -> dict[str, Any]:
    return asdict(a)
