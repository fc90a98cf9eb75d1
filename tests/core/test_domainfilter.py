"""Domain Filtering scripts (seed-3 §16): parsing, first-match, defaults, errors."""

from __future__ import annotations

import pytest

from vpop3d.core.domainfilter import Facts, FilterError, parse_script


def test_empty_script_attempts_all() -> None:
    """An empty script (or only comments) means Attempt: All."""
    assert parse_script("").attempt(Facts())
    assert parse_script("# nothing\n\n").attempt(Facts())


def test_default_after_no_match_depends_on_attempt_lines() -> None:
    """No match: Skip if any attempt: line exists, else Attempt."""
    assert not parse_script('attempt: authsender = "bob"').attempt(Facts(authsender="carol"))
    assert parse_script('attempt: authsender = "bob"').attempt(Facts(authsender="Bob"))
    assert parse_script("skip: size > 50kB").attempt(Facts(size=1000))
    assert not parse_script("skip: size > 50kB").attempt(Facts(size=51 * 1024 + 1))


def test_first_matching_line_decides() -> None:
    """Check 44: skip x@example.com, attempt the rest."""
    script = parse_script('skip: to matches "*@example.com"\nattempt: all')
    assert script.uses_recipient
    assert not script.attempt(Facts(recipient="x@example.com"))
    assert script.attempt(Facts(recipient="y@other.org"))


def test_numeric_and_age_conditions() -> None:
    """retries/age comparisons, with units and optional spaces, all conditions ANDed."""
    script = parse_script("Skip: age<10 minutes\nattempt: retries >= 5 and size < 1MB")
    assert not script.attempt(Facts(age_seconds=60))
    assert script.attempt(Facts(age_seconds=3600, retries=5, size=10))
    assert not script.attempt(Facts(age_seconds=3600, retries=4, size=10))


def test_text_operators() -> None:
    """contains / not contains / regexp with the i flag / matches without wildcards."""
    assert parse_script('Attempt: from not contains "joe"').attempt(Facts(sender="ann@x"))
    assert not parse_script('Attempt: from not contains "joe"').attempt(Facts(sender="joe@x"))
    script = parse_script(r"attempt: to regexp /[abc]@company\.(org|com)$/i")
    assert script.attempt(Facts(recipient="A@Company.com"))
    assert not script.attempt(Facts(recipient="d@company.com"))
    case = parse_script(r"attempt: to regexp /^a@x$/")
    assert not case.attempt(Facts(recipient="A@x"))
    assert not parse_script('skip: to matches "@example.com"').attempt(
        Facts(recipient="x@example.com")
    )


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ("send: all", "line 1"),
        ("attempt:", "no condition"),
        ('attempt: colour = "red"', "unknown field"),
        ("attempt: size > lots", "needs a number"),
        ("attempt: to regexp /(/", "bad regular expression"),
        ('attempt: to regexp "@example\\.(org|com)$/i', "unexpected"),
        ("attempt: age > 5 fortnights", "age unit"),
    ],
)
def test_bad_scripts_give_clear_errors(script: str, message: str) -> None:
    """A broken script is refused with the line and the problem."""
    with pytest.raises(FilterError, match=message):
        parse_script(script)
