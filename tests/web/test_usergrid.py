"""The Users grid query: the manual's numeric filter syntax, sorting and paging."""

from __future__ import annotations

import pytest

from vpop3d.app.mailstore import FolderTarget, store_message
from vpop3d.app.usergrid import (
    FilterError,
    NumericFilter,
    UserQuery,
    parse_numeric_filter,
    query_users,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5", NumericFilter(5, 5)),
        (">5", NumericFilter(6, None)),
        (">=5", NumericFilter(5, None)),
        ("<5", NumericFilter(None, 4)),
        ("<=5", NumericFilter(None, 5)),
        (" 2..9 ", NumericFilter(2, 9)),
    ],
)
def test_numeric_filter_syntax(text, expected):
    """n, >n, <n, >=n, <=n and x..y (inclusive) as in the manual [L2376]."""
    assert parse_numeric_filter(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "5kB", "1..", "=>5", "--1"])
def test_numeric_filter_rejects_other_text(text):
    """Anything else is refused with the syntax in the message."""
    with pytest.raises(FilterError, match=r"x\.\.y"):
        parse_numeric_filter(text)


def _deliver(stack, user_id, size):
    spool = stack.spool(b"x" * size)
    stack.db.run_sync(
        lambda conn: store_message(conn, stack.blobs, spool, [FolderTarget(user_id, "INBOX", 0)])
    )


def test_query_counts_inbox_and_filters_by_size(stack):
    """Inbox message counts and mailbox sizes are computed and filterable."""
    fred = stack.add_user("fred")
    stack.add_user("kate")
    _deliver(stack, fred, 1000)
    _deliver(stack, fred, 500)
    page = stack.db.read_sync(query_users, UserQuery(size=">1000"))
    assert [(r.name, r.messages) for r in page.rows] == [("fred", 2)]
    assert page.rows[0].size >= 1500
    page = stack.db.read_sync(query_users, UserQuery(messages="0", sort="name"))
    assert [r.name for r in page.rows] == ["kate", "postmaster"]


def test_query_sorts_and_pages(stack):
    """Sorting by a column and paging give stable slices with the total count."""
    for i in range(7):
        stack.add_user(f"user{i}", real_name=f"c{6 - i}")
    page = stack.db.read_sync(
        query_users, UserQuery(sort="comments", name="user", offset=2, limit=3)
    )
    assert page.total == 7
    assert [r.name for r in page.rows] == ["user4", "user3", "user2"]


def test_query_filters_by_group(stack):
    """Group '-' means no primary group; a name means that group."""
    from vpop3d.store import groups, users

    gid = stack.db.run_sync(groups.add, "office").id
    fred = stack.add_user("fred")
    stack.db.run_sync(users.update_fields, fred, primary_group_id=gid)
    assert [r.name for r in stack.db.read_sync(query_users, UserQuery(group="office")).rows] == [
        "fred"
    ]
    assert "fred" not in [
        r.name for r in stack.db.read_sync(query_users, UserQuery(group="-")).rows
    ]
