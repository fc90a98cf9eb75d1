"""Routing of downloaded messages (seed-3 §5, §6): Parse Message Headers with
Accepted Domains, ``*REMOTE`` ignores and FROM-mappings; all to one user or list;
all to one address on another server (LAN forward); Download Rule targets (§4.3);
and the Routing Errors fallback, so unroutable mail is never dropped.

Produces routing decisions in the form :meth:`Delivery.plan` takes, so downloaded
mail is filed exactly like SMTP mail (one copy per user, lists expanded).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from email.utils import getaddresses
from typing import Any

from twisted.logger import Logger

from vpop3d.app.collectorconfig import CollectorConfig
from vpop3d.app.collectorroute import (
    Slot,
    received_for,
    special_addresses,
    standard_addresses,
)
from vpop3d.app.downloadrules import Verdict
from vpop3d.app.routing import Router
from vpop3d.core.address import AddressError, Mailbox, parse_mailbox
from vpop3d.core.mapping import (
    ListTarget,
    LocalDomains,
    NameKind,
    Outcome,
    Source,
    TargetError,
    UserTarget,
    parse_lan_forward,
)
from vpop3d.core.mapping import Target as RouteTarget
from vpop3d.core.message import header_values
from vpop3d.core.policy import Disposition, RecipientDecision
from vpop3d.core.spamscore import spam_score
from vpop3d.ports import RecipientParams

__all__ = ["MAIN_ADMIN", "DownloadRouter", "Routed"]

MAIN_ADMIN = "admin.main_administrator"
Decision = tuple[str, RecipientParams, RecipientDecision]


@dataclass(slots=True)
class Routed:
    """Targets for one downloaded message, plus what the Messages tab shows."""

    sender: str
    decisions: list[tuple[str, RecipientParams, RecipientDecision]]
    recipients: list[str]
    error: str = ""  # why it went to the Routing Errors target
    invalid: list[str] = field(default_factory=list)  # accepted but unresolvable
    extra_headers: bytes = b""  # X-VPOP3Rules and Set Header lines
    wrap: bool = False  # deliver an error notice with the message attached (seed-3 §6)
    bounce_to: str = ""  # also send a delivery-failure notice to this sender


class DownloadRouter:
    """Where one downloaded message goes, from its headers and the collector's settings."""

    _log = Logger()

    def __init__(self, router: Router, settings: Any) -> None:
        self._router = router
        self._settings = settings

    async def route(self, config: CollectorConfig, headers: list[tuple[str, str]]) -> Routed:
        sender = sender_of(headers)
        decisions: list[tuple[str, RecipientParams, RecipientDecision]] = []
        recipients: list[str] = []
        invalid: list[str] = []
        if config.routing == "user":
            target = await self.name_target(config.target_user)
            if target is not None:
                decisions.append(_decision(config.target_user, (target,)))
                recipients.append(config.target_user)
        elif config.routing == "server":
            try:
                lan = parse_lan_forward(f"SMTP:{config.target_address}@{config.target_server}")
            except TargetError as exc:
                return Routed(sender, [], [], f"bad target server: {exc}")
            decisions.append(_decision(config.target_address, (lan,)))
            recipients.append(config.target_address)
        else:
            recipients = await self._parse_headers(config, headers, decisions, invalid)
        if sender:
            try:
                sender_box: Mailbox | None = parse_mailbox(sender, smtputf8=True)
            except AddressError:
                sender_box = None
            if sender_box is not None and config.routing == "headers":
                extra = await self._router.resolve_from(sender_box, config.id)
                if extra:  # FROM-mappings (manual L1903-1907)
                    decisions.append(_decision(sender, extra))
        if decisions:
            return Routed(sender, decisions, recipients, invalid=invalid)
        routed = await self._routing_error(config, sender, recipients, headers)
        routed.invalid = invalid
        return routed

    async def _parse_headers(
        self,
        config: CollectorConfig,
        headers: list[tuple[str, str]],
        decisions: list[tuple[str, RecipientParams, RecipientDecision]],
        invalid: list[str],
    ) -> list[str]:
        """seed-3 §5.5: walk the Header Processing Order, keep Accepted Domains,
        resolve through the mappings; ``*REMOTE`` and foreign addresses are ignored."""
        opts = config.options
        accepted = LocalDomains.parse(config.accepted_domains)
        implied = False if opts.disable_implied else None
        seen: set[str] = set()
        found: list[str] = []

        async def take(addresses: Sequence[str]) -> bool:
            """Route the accepted ones; True if any was accepted (a "matching" field)."""
            matched = False
            for text in addresses:
                try:
                    mailbox = parse_mailbox(text, smtputf8=True)
                except AddressError:
                    continue
                if not accepted.contains(mailbox):
                    continue
                matched = True
                folded = str(mailbox).casefold()
                if folded in seen:
                    continue  # one message naming a user twice: one copy
                seen.add(folded)
                resolution = await self._router.resolve(
                    mailbox, Source.POP3, config.id, local_domains=accepted, implied=implied
                )
                if resolution.outcome is Outcome.DELIVER:
                    decisions.append(_decision(str(mailbox), resolution.targets))
                    found.append(str(mailbox))
                elif resolution.outcome is not Outcome.REMOTE:
                    invalid.append(str(mailbox))
            return matched

        async def take_groups(groups: list[list[str]], mode: str) -> None:
            for group in groups:
                if await take(group) and mode != "all":
                    return

        for slot in opts.order:
            if slot is Slot.STOP:
                break
            if slot is Slot.STOP_IF_FOUND:
                if decisions:
                    break
                continue
            if slot is Slot.STANDARD:
                await take(standard_addresses(headers, opts))
            elif slot is Slot.RECEIVED:
                await take_groups(received_for(headers, opts), opts.read_received)
            elif slot is Slot.SPECIAL:
                await take_groups(special_addresses(headers, opts), opts.read_special)
        return found

    async def apply_verdict(
        self, config: CollectorConfig, routed: Routed, verdict: Verdict
    ) -> None:
        """Redirect/Copy targets and the X-VPOP3Rules / Set Header lines (seed-3 §4.3, §4.7)."""
        lines = [line.strip() for line in verdict.header_lines if line.strip()]
        if verdict.rule:
            lines.insert(0, f"X-VPOP3Rules: {verdict.rule} {verdict.action}")
        routed.extra_headers = b"".join(line.encode() + b"\r\n" for line in lines)
        if not verdict.action.startswith(("redirect", "copy")):
            return
        extra: list[tuple[str, RecipientParams, RecipientDecision]] = []
        for entry in verdict.targets.split(","):
            words = entry.split()
            if not words:
                continue
            target = await self.name_target(words[0])
            if target is None:
                self._log.warn("download rule target {t!r} is unknown", t=words[0])
                continue
            extra.append(_decision(words[0], (target,)))
        if verdict.action.startswith("redirect"):
            if extra:  # nothing valid: keep the original routing rather than lose it
                routed.decisions = extra
                _routed_after_all(routed)
        else:
            if routed.error and extra:
                routed.decisions = []
                _routed_after_all(routed)
            routed.decisions += extra

    async def name_target(self, name: str) -> RouteTarget | None:
        """A local user or list by name, or an address routed like a recipient."""
        snapshot = await self._router.snapshot()
        text = name.strip()
        if "@" not in text:
            kind = snapshot.directory.kind_of(text)
            if kind is NameKind.USER:
                return UserTarget(text.casefold())
            if kind is NameKind.LIST:
                return ListTarget(text.casefold())
            return None
        try:
            mailbox = parse_mailbox(text, smtputf8=True)
        except AddressError:
            return None
        resolution = await self._router.resolve(mailbox)
        if resolution.outcome is Outcome.DELIVER and resolution.targets:
            return resolution.targets[0]
        return None

    async def _routing_error(
        self,
        config: CollectorConfig,
        sender: str,
        recipients: list[str],
        headers: list[tuple[str, str]],
    ) -> Routed:
        """seed-3 §6, the six-way choice plus its two bounce modifiers."""
        routed = await self._error_choice(config, sender, recipients)
        if config.error_also_bounce:  # "Send a bounce message to the sender" as well
            routed.bounce_to = sender
        if routed.bounce_to in ("", "<>"):  # never bounce to a null path
            routed.bounce_to = ""
            return routed
        limit = config.error_bounce_spam_score
        score = spam_score(headers)
        if limit is not None and score is not None and score >= limit:
            routed.bounce_to = ""
            routed.error = routed.error.replace(" (bounced)", " (discarded)")
            routed.error += f" (no bounce: spam score {score:g} >= {limit})"
        return routed

    async def _error_choice(
        self, config: CollectorConfig, sender: str, recipients: list[str]
    ) -> Routed:
        """The six-way choice. ``admin``/``address``: an error notice with the
        message attached; ``*-message``: the message itself; ``bounce``: a notice to the
        sender and no local copy; ``ignore``: discard. An unusable fallback address falls
        back to the Main Administrator, so only Ignore and Bounce keep no copy here."""
        why = "no valid recipient found in the message headers"
        action = config.error_action
        if action == "ignore":
            return Routed(sender, [], recipients, why + " (ignored)")
        if action == "bounce":
            return Routed(sender, [], recipients, why + " (bounced)", bounce_to=sender)
        fallback = config.error_address if action.startswith("address") else ""
        target = await self.name_target(fallback) if fallback else None
        if target is None:
            admin = str(self._settings.get(MAIN_ADMIN, "postmaster"))
            target = await self.name_target(admin) or UserTarget(admin.casefold())
        decisions = [_decision("(routing error)", (target,))]
        wrap = not action.endswith("-message")
        return Routed(sender, decisions, recipients, why, wrap=wrap)


def _routed_after_all(routed: Routed) -> None:
    """A rule found targets: no Routing Errors notice, wrapper or bounce (seed-3 §6)."""
    routed.error, routed.wrap, routed.bounce_to = "", False, ""


def _decision(
    address: str, targets: Sequence[RouteTarget]
) -> tuple[str, RecipientParams, RecipientDecision]:
    return (address, RecipientParams(), RecipientDecision(None, Disposition.LOCAL, tuple(targets)))


def sender_of(headers: list[tuple[str, str]]) -> str:
    """Return-Path, else the From address (seed-3 §6 bounce destination)."""
    for name in ("return-path", "from"):
        values = header_values(headers, name)
        if values:
            found = getaddresses(values[:1])
            if found and found[0][1] and found[0][1] != "<>":
                return found[0][1]
    return ""
