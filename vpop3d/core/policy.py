"""Pure SMTP relay and recipient verdicts, and group/user sending permissions.

Inputs are facts the app gathers (who the client is, what the IP table said, how
the recipient resolved); the outputs are a reply to refuse with, or an accepted
decision. The rules are the manual's (seed-1 §13, §20.2; seed-4 §7.1, §7.2, §7.5):

* mail to local recipients is accepted from anyone unless "Require SMTP
  Authentication" is on and "Do not require SMTP authentication for
  internal/incoming mail" is off;
* relaying (any recipient that is not handled here, including ``*REMOTE``)
  depends on the anti-relay mode; in the recommended Check Client IP mode the
  first matching access row must allow it, with AUTH (or POP3-before-SMTP) unless
  the row has Allow Unauth, and the user must be in the row's Users list;
* source routes are ignored, and ``%`` and ``!`` are never interpreted as routes,
  quoted local parts are just names, and address literals are local only when the
  admin listed them: so none of these tricks can reach a remote host.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from vpop3d.core.address import Mailbox
from vpop3d.core.mapping import (
    GroupTarget,
    Outcome,
    RemoteTarget,
    Resolution,
    Target,
    UserTarget,
)
from vpop3d.core.netrule import Verdict
from vpop3d.core.reply import (
    SMTP_RECIPIENT_UNKNOWN,
    SMTP_RELAY_DENIED,
    Reply,
)

__all__ = [
    "AUTH_REQUIRED",
    "BAD_RECIPIENT_SYNTAX",
    "MAPPING_LOOP",
    "SENDING_INTERNET_DENIED",
    "AntiRelayMode",
    "Client",
    "Disposition",
    "GroupSettings",
    "RecipientDecision",
    "RelaySettings",
    "UserSettings",
    "check_recipient_syntax",
    "decide_recipient",
    "effective_settings",
    "may_relay",
    "outgoing_size_reply",
    "rewrite_sender",
]

# RFC 4954 §6: authentication required.
AUTH_REQUIRED = Reply(530, "5.7.0", "Authentication required")
# RFC 3463 X.1.3: bad destination mailbox address syntax (seed-4 §7.9 '%' / '!').
BAD_RECIPIENT_SYNTAX = Reply(550, "5.1.3", "Addresses with '%' or '!' are not accepted")
# RFC 3463 X.4.6: routing loop detected.
MAPPING_LOOP = Reply(554, "5.4.6", "Mapping loop detected")
SENDING_INTERNET_DENIED = Reply(550, "5.7.1", "You are not allowed to send Internet mail")


class AntiRelayMode(Enum):
    """SMTP Anti-Relay Protection (seed-4 §7.2)."""

    NO_CHECKS = "no-checks"
    CHECK_LAN = "check-lan"  # portable: "client IP is in a detected local network"
    CHECK_FROM_ADDRESS = "check-from-address"
    CHECK_CLIENT_IP = "check-client-ip"  # recommended, default


@dataclass(frozen=True, slots=True)
class RelaySettings:
    """Per-listener SMTP settings that decide who may send where."""

    mode: AntiRelayMode = AntiRelayMode.CHECK_CLIENT_IP
    # Off by default so Allow - Local Nets relays without AUTH (seed-1 check 16).
    require_auth: bool = False
    require_pop_before_smtp: bool = False
    no_auth_for_incoming: bool = True  # must stay on for an inbound MX (L6381)
    reject_unrecognised: bool = True  # L6398
    reject_percent: bool = True  # L6905
    reject_bang: bool = True  # L6913
    unrecognised_local_as_outgoing: bool = False  # seed-6 §1.1, L9955

    @property
    def auth_needed_for_relay(self) -> bool:
        return self.require_auth or self.require_pop_before_smtp


@dataclass(frozen=True, slots=True)
class Client:
    """Who is talking to us, as far as policy cares."""

    access: Verdict  # the SMTP IP access table's verdict for the peer
    username: str | None = None  # SMTP AUTH identity
    pop_user: str | None = None  # recent POP3 login from this IP, inside the window
    on_lan: bool = False  # peer is in a detected local network

    @property
    def authenticated(self) -> bool:
        return self.username is not None

    @property
    def is_local_session(self) -> bool:
        """Local for limits and "Internet mail" (seed-4 §7.5, L6592-6594)."""
        return self.authenticated or self.access.allow_unauth


def check_recipient_syntax(recipient: Mailbox, settings: RelaySettings) -> Reply | None:
    """Refuse ``%`` and ``!`` in local parts when the options say so (L6905-6919).

    When the options are off the characters are just part of a name: they are
    never taken as a route, so ``x%y@local`` is looked up as the user ``x%y``.
    """
    if settings.reject_percent and "%" in recipient.local:
        return BAD_RECIPIENT_SYNTAX
    if settings.reject_bang and "!" in recipient.local:
        return BAD_RECIPIENT_SYNTAX
    return None


def may_relay(
    settings: RelaySettings, client: Client, *, sender_is_local: bool = False
) -> Reply | None:
    """None when this client may send to non-local recipients, else the refusal."""
    if client.access.allow_unauth:
        return None
    mode = settings.mode
    if mode is AntiRelayMode.CHECK_CLIENT_IP:
        return _check_client_ip(settings, client)
    identity = _identity(settings, client)
    if settings.auth_needed_for_relay and identity is None:
        return SMTP_RELAY_DENIED
    if mode is AntiRelayMode.NO_CHECKS:
        return None
    if mode is AntiRelayMode.CHECK_LAN:
        return None if client.on_lan or client.authenticated else SMTP_RELAY_DENIED
    # CHECK_FROM_ADDRESS: "easy to forge" (L6389), so AUTH also suffices.
    return None if sender_is_local or client.authenticated else SMTP_RELAY_DENIED


def _identity(settings: RelaySettings, client: Client) -> str | None:
    if client.username is not None:
        return client.username
    if settings.require_pop_before_smtp and client.pop_user is not None:
        return client.pop_user
    return None


def _check_client_ip(settings: RelaySettings, client: Client) -> Reply | None:
    verdict = client.access
    if not verdict.allowed:
        return SMTP_RELAY_DENIED
    if verdict.allow_unauth:
        return None
    if not settings.auth_needed_for_relay:
        return None
    identity = _identity(settings, client)
    if identity is None or not verdict.permits_user(identity):
        return SMTP_RELAY_DENIED
    return None


# ------------------------------------------------------------------ users and groups


@dataclass(frozen=True, slots=True)
class UserSettings:
    """The per-user values a primary group may override."""

    enabled: bool = True
    allow_send_internet: bool = True
    allow_receive_internet: bool = True
    max_outgoing_kb: int = 0  # 0: no limit
    reply_address: str = ""  # "Change outgoing mail sender address"


@dataclass(frozen=True, slots=True)
class GroupSettings:
    """A group row (seed-1 §13); ``None`` is the greyed "do not override" state."""

    name: str
    enabled: bool = True
    allow_send_internet: bool | None = None
    allow_receive_internet: bool | None = None
    max_outgoing_kb: int = 0  # 0: no group limit (L1721)
    reply_address: str = ""


def effective_settings(user: UserSettings, group: GroupSettings | None) -> UserSettings:
    """The user's settings after the primary group's overrides (manual L1698)."""
    if group is None:
        return user
    return UserSettings(
        enabled=user.enabled and group.enabled,
        allow_send_internet=(
            user.allow_send_internet
            if group.allow_send_internet is None
            else group.allow_send_internet
        ),
        allow_receive_internet=(
            user.allow_receive_internet
            if group.allow_receive_internet is None
            else group.allow_receive_internet
        ),
        max_outgoing_kb=group.max_outgoing_kb or user.max_outgoing_kb,
        reply_address=group.reply_address or user.reply_address,
    )


def outgoing_size_reply(size: int, max_kb: int, *, has_remote: bool) -> Reply | None:
    """Max Outgoing Size applies only to non-local recipients (manual L1721)."""
    if not has_remote or max_kb <= 0 or size <= max_kb * 1024:
        return None
    return Reply(552, "5.3.4", f"Message exceeds your outgoing size limit of {max_kb} kB")


def rewrite_sender(reply_address: str, username: str) -> str | None:
    """The Reply Address rule: ``*@dom`` → ``<username>@dom``; blank → no change."""
    value = reply_address.strip()
    if not value:
        return None
    if value.startswith("*"):
        return username + value[1:]
    return value


# ------------------------------------------------------------------ recipient verdict


class Disposition(Enum):
    LOCAL = "local"  # deliver to the decision's targets
    OUTBOUND = "outbound"  # relay to the recipient itself
    UNRECOGNISED = "unrecognised"  # accepted (reject option off): app decides


@dataclass(frozen=True, slots=True)
class RecipientDecision:
    """Accept (``reply is None``) with what to do, or refuse with ``reply``."""

    reply: Reply | None
    disposition: Disposition = Disposition.LOCAL
    targets: tuple[Target, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def accepted(self) -> bool:
        return self.reply is None


def _refuse(reply: Reply, note: str) -> RecipientDecision:
    return RecipientDecision(reply, notes=(note,))


def decide_recipient(
    settings: RelaySettings,
    client: Client,
    resolution: Resolution,
    *,
    sender_is_local: bool = False,
    sender_may_send_internet: bool = True,
    no_internet_receivers: frozenset[str] = frozenset(),
) -> RecipientDecision:
    """The RCPT verdict for one resolved recipient.

    ``no_internet_receivers`` are the user names whose effective "Allow Receiving
    Internet Mail" is off; for a non-local session they are dropped, and a
    recipient left with no targets is unrecognised (manual L1718).
    """
    outcome = resolution.outcome
    if outcome is Outcome.LOOP:
        return _refuse(MAPPING_LOOP, "mapping loop")
    if outcome is Outcome.REMOTE:
        return _outbound(settings, client, sender_is_local, sender_may_send_internet)
    if outcome is Outcome.UNRECOGNISED:
        if settings.unrecognised_local_as_outgoing and client.is_local_session:
            return _outbound(settings, client, sender_is_local, sender_may_send_internet)
        if settings.reject_unrecognised:
            return _refuse(SMTP_RECIPIENT_UNKNOWN, "unrecognised local recipient")
        return RecipientDecision(None, Disposition.UNRECOGNISED)
    # Outcome.DELIVER
    if (
        settings.require_auth
        and not settings.no_auth_for_incoming
        and not client.is_local_session
        and _identity(settings, client) is None
    ):
        return _refuse(AUTH_REQUIRED, "auth required for local delivery")
    targets = list(resolution.targets)
    if not client.is_local_session:
        # Groups take mail from local users only (manual L1696, L1708).
        targets = [
            t
            for t in targets
            if not isinstance(t, GroupTarget)
            and not (isinstance(t, UserTarget) and t.name in no_internet_receivers)
        ]
        if not targets:
            return _refuse(SMTP_RECIPIENT_UNKNOWN, "not receivable from the Internet")
    if any(isinstance(t, RemoteTarget) and t.hosted_elsewhere for t in targets):
        refusal = may_relay(settings, client, sender_is_local=sender_is_local)
        if refusal is not None:
            return _refuse(refusal, "relay denied (*REMOTE)")
    return RecipientDecision(None, Disposition.LOCAL, tuple(targets))


def _outbound(
    settings: RelaySettings,
    client: Client,
    sender_is_local: bool,
    sender_may_send_internet: bool,
) -> RecipientDecision:
    refusal = may_relay(settings, client, sender_is_local=sender_is_local)
    if refusal is not None:
        return _refuse(refusal, "relay denied")
    if not sender_may_send_internet:
        return _refuse(SENDING_INTERNET_DENIED, "group/user may not send Internet mail")
    return RecipientDecision(None, Disposition.OUTBOUND)
