"""BATV prvs tags (seed-6 §4.2): sign, verify, expiry, tampering."""

from __future__ import annotations

from vpop3d.core import batv

NOW = 2_000_000_000.0
DAY = 86400.0


def test_sign_and_verify_round_trip() -> None:
    """A signed return path verifies back to the original address for a week."""
    tagged = batv.sign("Alice@example.test", "s3cret", NOW)
    assert tagged.startswith("prvs=0")
    assert tagged.endswith("=Alice@example.test")
    assert batv.verify(tagged, "s3cret", NOW) == "Alice@example.test"
    assert batv.verify(tagged, "s3cret", NOW + 6 * DAY) == "Alice@example.test"
    assert batv.strip(tagged) == "Alice@example.test"


def test_expired_forged_or_untagged_fail() -> None:
    """After the expiry day, with another secret, a changed address or no tag: None."""
    tagged = batv.sign("alice@example.test", "s3cret", NOW)
    assert batv.verify(tagged, "s3cret", NOW + 9 * DAY) is None
    assert batv.verify(tagged, "other", NOW) is None
    assert batv.verify(tagged.replace("alice", "mallory"), "s3cret", NOW) is None
    assert batv.verify("alice@example.test", "s3cret", NOW) is None


def test_null_and_tagged_addresses_are_left_alone() -> None:
    """<> stays <>, and an already tagged address is not tagged twice."""
    assert batv.sign("", "s3cret", NOW) == ""
    tagged = batv.sign("a@b.test", "s3cret", NOW)
    assert batv.sign(tagged, "s3cret", NOW) == tagged
