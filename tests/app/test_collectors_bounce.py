"""Routing Errors bounce modifiers over the real store (seed-3 §6): the collector's
columns and checks, and where DownloadRouter sends the bounce."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
import pytest_twisted
from twisted.internet.task import Clock

from tests.support.server import write_config
from tests.support.stack import Stack
from vpop3d.app import collectoradmin
from vpop3d.app.accounts import AdminError
from vpop3d.app.collectorconfig import CollectorConfig, config_from_row
from vpop3d.app.collectorrouting import DownloadRouter
from vpop3d.app.downloadrules import Verdict
from vpop3d.app.routing import Router
from vpop3d.cli import main
from vpop3d.core.message import scan_headers
from vpop3d.store import collectors as repo

_F = TypeVar("_F", bound=Callable[..., Any])
ensure_deferred = cast(Callable[[_F], _F], pytest_twisted.ensureDeferred)

UNROUTABLE = b"Return-Path: <victim@remote.test>\r\nFrom: x@remote.test\r\nTo: nobody@a.test\r\n"


def _row(stack: Stack, collector_id: int) -> dict[str, Any]:
    row = stack.db.read_sync(repo.by_id, collector_id)
    assert row is not None
    return row


def _router(stack: Stack) -> DownloadRouter:
    return DownloadRouter(Router(stack.db, Clock(), settings=stack.settings, ttl=0.0), {})


def _config(**fields: Any) -> CollectorConfig:
    return CollectorConfig(id=1, name="isp", accepted_domains="a.test", **fields)


def _headers(extra: bytes = b"") -> list[tuple[str, str]]:
    return scan_headers(extra + UNROUTABLE + b"\r\n")


def test_new_columns_default_off_and_round_trip(stack: Stack) -> None:
    """A new collector has the modifier off and no spam limit; both are stored."""
    made = stack.db.run_sync(collectoradmin.add_collector, "c", server="s", accepted_domains="a")
    config = config_from_row(_row(stack, made))
    assert (config.error_also_bounce, config.error_bounce_spam_score) == (False, None)
    stack.db.run_sync(
        collectoradmin.update_collector, made, error_also_bounce=True, error_bounce_spam_score=5
    )
    config = config_from_row(_row(stack, made))
    assert (config.error_also_bounce, config.error_bounce_spam_score) == (True, 5)


@pytest.mark.parametrize("bad", [-1, 1001, "5", 2.5, True])
def test_spam_limit_must_be_whole_number_0_to_1000(stack: Stack, bad: Any) -> None:
    """The spam score limit is refused unless a whole number 0..1000 (or None)."""
    made = stack.db.run_sync(collectoradmin.add_collector, "c", server="s", accepted_domains="a")
    with pytest.raises(AdminError, match="spam score"):
        stack.db.run_sync(collectoradmin.update_collector, made, error_bounce_spam_score=bad)
    row = stack.db.read_sync(repo.by_id, made)
    assert row is not None
    assert row["error_bounce_spam_score"] is None
    stack.db.run_sync(collectoradmin.update_collector, made, error_bounce_spam_score=1000)


@ensure_deferred
async def test_modifier_adds_bounce_to_admin_option(stack: Stack) -> None:
    """Error Message to the admin plus the modifier: an admin decision and a bounce."""
    routed = await _router(stack).route(_config(error_also_bounce=True), _headers())
    assert routed.decisions
    assert routed.wrap
    assert routed.bounce_to == "victim@remote.test"


@ensure_deferred
async def test_modifier_off_no_bounce_and_ignore_with_modifier_bounces(stack: Stack) -> None:
    """Without the modifier there is no bounce; Ignore plus modifier bounces only."""
    plain = await _router(stack).route(_config(), _headers())
    assert plain.bounce_to == ""
    ignored = await _router(stack).route(
        _config(error_action="ignore", error_also_bounce=True), _headers()
    )
    assert (ignored.decisions, ignored.bounce_to) == ([], "victim@remote.test")


@ensure_deferred
async def test_spam_score_at_limit_suppresses_both_bounces(stack: Stack) -> None:
    """A score equal to the limit stops the modifier's and the Bounce option's bounce."""
    spam = _headers(b"X-Spam-Score: 5\r\n")
    also = await _router(stack).route(
        _config(error_also_bounce=True, error_bounce_spam_score=5), spam
    )
    assert also.bounce_to == ""
    assert also.decisions
    assert "spam score 5 >= 5" in also.error
    bounce = await _router(stack).route(
        _config(error_action="bounce", error_bounce_spam_score=5), spam
    )
    assert (bounce.bounce_to, bounce.decisions) == ("", [])


@ensure_deferred
async def test_below_limit_or_no_score_still_bounces(stack: Stack) -> None:
    """A lower score, or no score header at all, does not suppress the bounce."""
    config = _config(error_action="bounce", error_bounce_spam_score=5)
    low = await _router(stack).route(config, _headers(b"X-Spam-Status: No, score=4.9\r\n"))
    assert low.bounce_to == "victim@remote.test"
    none = await _router(stack).route(config, _headers())
    assert none.bounce_to == "victim@remote.test"


@ensure_deferred
async def test_never_bounce_to_null_path(stack: Stack) -> None:
    """A message with Return-Path <> and no From address gets no bounce."""
    headers = scan_headers(b"Return-Path: <>\r\nTo: nobody@a.test\r\n\r\n")
    routed = await _router(stack).route(_config(error_also_bounce=True), headers)
    assert routed.bounce_to == ""


@ensure_deferred
async def test_redirect_rule_cancels_the_bounce(stack: Stack) -> None:
    """A Download Rule that routes the message after all leaves nothing to bounce."""
    stack.add_user("fred")
    router = _router(stack)
    config = _config(error_action="bounce")
    routed = await router.route(config, _headers())
    verdict = Verdict(rule="r1", action="redirect", targets="fred")
    await router.apply_verdict(config, routed, verdict)
    assert routed.bounce_to == ""
    assert routed.decisions


def test_cli_add_sets_both_modifiers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], stack: Stack
) -> None:
    """`vpop3d collector add --error-also-bounce --error-bounce-spam-score 5` stores both."""
    config, _ports = write_config(tmp_path, stack.db.engine.url.render_as_string(False))
    argv = ["-c", str(config), "collector", "add", "isp", "--server", "pop.isp.test"]
    argv += ["--accepted-domains", "a.test", "--error-also-bounce"]
    assert main([*argv, "--error-bounce-spam-score", "5"]) == 0
    assert "added" in capsys.readouterr().out
    row = stack.db.read_sync(repo.by_name, "isp")
    assert row is not None
    assert (row["error_also_bounce"], row["error_bounce_spam_score"]) == (True, 5)
    assert main(["-c", str(config), "collector", "add", "two", "--server", "s",
                 "--accepted-domains", "a.test"]) == 0  # fmt: skip
    two = stack.db.read_sync(repo.by_name, "two")
    assert two is not None
    assert (two["error_also_bounce"], two["error_bounce_spam_score"]) == (False, None)


@ensure_deferred
async def test_copy_rule_to_nobody_keeps_the_routing_error(stack: Stack) -> None:
    """A Copy rule whose targets are all unknown leaves the Routing Errors handling
    (admin notice and modifier bounce) in place instead of dropping the message."""
    router = _router(stack)
    config = _config(error_also_bounce=True)
    routed = await router.route(config, _headers())
    await router.apply_verdict(config, routed, Verdict(rule="r", action="copy", targets="ghost"))
    assert routed.decisions
    assert routed.wrap
    assert routed.bounce_to == "victim@remote.test"


@ensure_deferred
async def test_copy_rule_with_target_ends_the_error_notice(stack: Stack) -> None:
    """A Copy rule that names a real user: that user gets the message itself, not
    an error notice, and no bounce is sent."""
    stack.add_user("fred")
    router = _router(stack)
    config = _config(error_also_bounce=True)
    routed = await router.route(config, _headers())
    await router.apply_verdict(config, routed, Verdict(rule="r", action="copy", targets="fred"))
    assert [address for address, _p, _d in routed.decisions] == ["fred"]
    assert not routed.wrap
    assert routed.bounce_to == ""
    assert routed.error == ""
