"""The spam score read from a downloaded message's own header (seed-3 §6)."""

from __future__ import annotations

import pytest

from vpop3d.core.message import scan_headers
from vpop3d.core.spamscore import spam_score


def test_x_spam_score_field() -> None:
    """X-Spam-Score: 7.3 gives 7.3."""
    assert spam_score([("X-Spam-Score", "7.3")]) == 7.3


def test_spamassassin_status_field() -> None:
    """SpamAssassin's X-Spam-Status gives its score= value, not required=."""
    value = "Yes, score=7.3 required=5.0 tests=BAYES_99,HTML_MESSAGE autolearn=no"
    assert spam_score([("X-Spam-Status", value)]) == 7.3


def test_status_no_and_negative_score() -> None:
    """A negative score on a No verdict is still a score."""
    assert spam_score([("x-spam-status", "No, score=-1.9 required=5.0")]) == -1.9


def test_older_hits_keyword() -> None:
    """Older SpamAssassin wrote hits= instead of score=."""
    assert spam_score([("X-Spam-Status", "Yes, hits=12 required=5")]) == 12.0


def test_score_field_wins_over_status() -> None:
    """X-Spam-Score is read before X-Spam-Status."""
    headers = [("X-Spam-Status", "Yes, score=9.0"), ("X-Spam-Score", "3")]
    assert spam_score(headers) == 3.0


def test_folded_status_from_scan_headers() -> None:
    """A folded X-Spam-Status parsed from the wire still yields its score."""
    raw = b"From: a@b.test\r\nX-Spam-Status: Yes,\r\n\tscore=15.5\r\n required=5.0\r\n\r\nbody\r\n"
    assert spam_score(scan_headers(raw)) == 15.5


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [("Subject", "score=9")],
        [("X-Spam-Score", "high")],
        [("X-Spam-Score", "nan")],
        [("X-Spam-Score", "inf")],
        [("X-Spam-Status", "Yes, tests=BAYES_99")],
        [("X-Spam-Status", "Yes, myscore=9.0")],
    ],
)
def test_no_usable_score_is_none(headers: list[tuple[str, str]]) -> None:
    """Without a readable finite score there is no score (never zero)."""
    assert spam_score(headers) is None


def test_score_with_trailing_text() -> None:
    """X-Spam-Score followed by a comment still parses; a run-on word does not."""
    assert spam_score([("X-Spam-Score", "5.0 (+++++)")]) == 5.0
    assert spam_score([("X-Spam-Score", "5.0x")]) is None
