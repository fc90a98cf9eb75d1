"""The spam score a message already carries in its header, for the Routing Errors
"Don't generate bounce messages if spam score >= N" setting (seed-3 §6).

vpop3d has no spam filter of its own yet, so the score comes from the filter that
saw the message before us: ``X-Spam-Score: 7.3`` or SpamAssassin's
``X-Spam-Status: Yes, score=7.3 required=5.0 ...``. Pure and stdlib only.
"""

from __future__ import annotations

import math
import re

__all__ = ["spam_score"]

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)"
_SCORE_FIELD = re.compile(rf"\s*({_NUMBER})(?:\s|$|;|\()")
_STATUS_SCORE = re.compile(rf"(?:^|[\s,;])(?:score|hits)\s*=\s*({_NUMBER})(?=[\s,;]|$)", re.I)


def spam_score(headers: list[tuple[str, str]]) -> float | None:
    """The score the first ``X-Spam-Score`` field gives, else the first
    ``X-Spam-Status`` field's ``score=`` (or older ``hits=``); None when neither
    names a finite number, which means "no score", never "zero"."""
    for name, value in headers:
        if name.casefold() == "x-spam-score":
            found = _SCORE_FIELD.match(_unfold(value) + " ")
            if found:
                return _finite(found.group(1))
    for name, value in headers:
        if name.casefold() == "x-spam-status":
            found = _STATUS_SCORE.search(_unfold(value))
            if found:
                return _finite(found.group(1))
    return None


def _unfold(value: str) -> str:
    # RFC 5322 §2.2.3: a folded field is one logical line.
    return re.sub(r"\r?\n[ \t]", " ", value)


def _finite(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None
