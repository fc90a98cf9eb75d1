"""Download on reply end to end (seed-3 §4.6): a Query rule leaves a message at a
vpop3d "ISP" on loopback and mails fred a notice; fred's authenticated reply to the
notice's Reply-To goes through SMTP delivery into no mailbox, and the next run
downloads the message once."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar, cast

import pytest
import pytest_twisted
from twisted.internet import reactor

from tests.integration import test_collectors_loopback as loopback
from tests.integration.test_collectors_loopback import World, add_rule, mail
from vpop3d.app.access import AccessControl
from vpop3d.app.delivery import Delivery, DeliverySpool
from vpop3d.app.routing import Router
from vpop3d.core.netrule import NetworkFacts
from vpop3d.core.reply import ReplyError
from vpop3d.ports import Envelope, EnvelopeParams, Principal, RecipientParams, SMTPContext
from vpop3d.store import collectors as repo

pytestmark = pytest.mark.network
world = loopback.world  # the fixture: our stack, a vpop3d "ISP" on loopback, a runner

_F = TypeVar("_F", bound=Callable[..., Any])
ensure_deferred = cast(Callable[[_F], _F], pytest_twisted.ensureDeferred)


def _smtp(world: World) -> Delivery:
    """The SMTP service's delivery agent over the same store."""
    router = Router(world.local.db, reactor, settings=world.local.settings, ttl=0.0)
    facts = NetworkFacts.of(["127.0.0.1"], ["127.0.0.0/8"])
    return Delivery(
        world.local.db,
        world.local.blobs,
        router,
        AccessControl(world.local.settings, reactor, facts=facts),
        world.local.bus,
        world.local.settings,
        clock=reactor,
        hostname="mail.example.test",
    )


async def _reply(delivery: Delivery, context: SMTPContext, rcpt: str) -> None:
    """MAIL FROM fred, RCPT the reply address, DATA, as the SMTP adapter drives it."""
    env = Envelope("fred@a.test", EnvelopeParams(), [])
    await delivery.check_sender(context, env)
    await delivery.check_recipient(context, env, rcpt)
    env.recipients.append((rcpt, RecipientParams()))
    spool = delivery.open_spool()
    assert isinstance(spool, DeliverySpool)
    spool.write(b"From: fred@a.test\r\nSubject: Re: query\r\n\r\nplease fetch it\r\n")
    await delivery.accept(context, env, spool)


@ensure_deferred
async def test_reply_to_query_notice_downloads_the_message(world: World) -> None:
    """Notice -> authenticated reply -> Get flag -> next run delivers it once; a
    stranger's RCPT to the same address is refused and changes nothing."""
    world.local.add_domain("a.test")
    fred = world.local.add_user("fred")
    add_rule(world, "ask", "query", [{"field": "Subject", "op": "contains", "data": "big"}])
    world.put_at_isp(mail("fred@a.test", n=1).replace(b"message 1", b"big deal"))
    collector = world.add_collector(use_rules=True)
    assert (await world.run(collector)).ok
    [notice] = world.inbox(fred)
    found = re.search(rb"\r\nReply-To: <(query-[^>]+)>\r\n", notice)
    assert found is not None, notice
    address = found.group(1).decode()
    delivery = _smtp(world)

    stranger = SMTPContext("smtp", "203.0.113.9", "evil.example", False, None)
    with pytest.raises(ReplyError) as refused:
        await _reply(delivery, stranger, address)
    assert refused.value.reply.enhanced == "5.7.1"
    [row] = world.local.db.read_sync(repo.uidls, collector).values()
    assert not row["get_flag"]

    principal = Principal(fred, "fred", False, "fred@a.test")
    await _reply(delivery, SMTPContext("submission", "127.0.0.1", "pc", True, principal), address)
    [row] = world.local.db.read_sync(repo.uidls, collector).values()
    assert row["get_flag"]
    assert row["disposition"] == "queried"
    assert len(world.inbox(fred)) == 1  # the reply went into no mailbox

    result = await world.run(collector)
    assert result.ok, result.text
    assert result.downloaded == 1
    delivered = [m for m in world.inbox(fred) if b"Subject: big deal\r\n" in m and b"Body" in m]
    assert len(delivered) == 1
    assert world.isp_count() == 0
