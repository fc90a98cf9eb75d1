"""The Routing Errors tab's bounce modifiers on the collector editor (seed-3 §6):
"Send a bounce message to the sender" and "Don't generate bounce messages if spam
score >= N", saved, shown again, and refused when N is not 0..1000 or blank."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.web.test_collectors_page import POP3_FORM, _add, _row
from tests.web.test_collectors_page import connection_id as connection_id
from vpop3d.store import collectors as repo


def test_new_form_offers_both_modifiers_off(admin: Any, connection_id: int) -> None:
    """The new-collector form shows the checkbox unticked and the score blank."""
    page = admin.get("/admin/collectors/new.html?kind=pop3")
    assert page.code == 200
    box = re.search(r'<input type="checkbox" name="error_also_bounce"[^>]*>', page.text)
    assert box is not None
    assert "checked" not in box.group(0)
    score = re.search(r'<input id="error_bounce_spam_score"[^>]*>', page.text)
    assert score is not None
    assert 'value=""' in score.group(0)
    assert "Send a bounce message to the sender" in page.text


def test_add_saves_modifiers_and_edit_shows_them(
    admin: Any, stack: Any, connection_id: int
) -> None:
    """Ticked box and N=5 are stored and shown on the edit page."""
    reply = _add(
        admin, connection=str(connection_id), error_also_bounce="on", error_bounce_spam_score="5"
    )
    assert reply.code == 303, reply.text
    row = _row(stack)
    assert (row["error_also_bounce"], row["error_bounce_spam_score"]) == (True, 5)
    page = admin.get(reply.location)
    assert re.search(r'name="error_also_bounce" checked', page.text)
    assert re.search(
        r'id="error_bounce_spam_score" name="error_bounce_spam_score" value="5"', page.text
    )


def test_edit_blank_score_and_unticked_turn_both_off(
    admin: Any, stack: Any, connection_id: int
) -> None:
    """Saving with the box unticked and the score blank turns both modifiers off."""
    _add(admin, connection=str(connection_id), error_also_bounce="on", error_bounce_spam_score="0")
    row = _row(stack)
    assert row["error_bounce_spam_score"] == 0
    form = {"csrf": admin.csrf(), **POP3_FORM, "connection": str(connection_id)}
    form["error_bounce_spam_score"] = " "
    reply = admin.post(f"/admin/collectors/{row['id']}/edit.html", form)
    assert reply.code == 303, reply.text
    after = _row(stack)
    assert (after["error_also_bounce"], after["error_bounce_spam_score"]) == (False, None)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", "must be a whole number"),
        ("7.5", "must be a whole number"),
        ("-1", "from 0 to 1000"),
        ("1001", "from 0 to 1000"),
    ],
)
def test_bad_score_is_refused_and_kept(
    admin: Any, stack: Any, connection_id: int, value: str, message: str
) -> None:
    """A score that is not a whole number 0..1000 is explained; nothing is saved and
    the typed text is shown again."""
    reply = _add(admin, connection=str(connection_id), error_bounce_spam_score=value)
    assert reply.code == 400
    assert message in reply.text.lower()
    assert f'value="{value}"' in reply.text
    assert stack.db.read_sync(repo.list_all) == []
