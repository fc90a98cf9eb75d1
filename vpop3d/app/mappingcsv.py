"""Mappings import/export as CSV (seed-2 §24 [L4717-4729]).

Five columns: ``Email Address,Target mailbox/list,Comment,Type,Mail Collector ID``;
only the first two are required. Type ``Normal`` (= Always) and ``FROM`` are
supported; ``POP3``/``SMTP`` types are refused per row until mappings carry a type.
Import appends and skips exact duplicates; a header row is skipped.
"""

from __future__ import annotations

import csv
import io

from sqlalchemy import Connection

from vpop3d.app import accounts

HEADER = ("Email Address", "Target mailbox/list", "Comment", "Type", "Mail Collector ID")


def export_csv(conn: Connection, *, titles: bool = False) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if titles:
        writer.writerow(HEADER)
    for mapping in accounts.list_mappings(conn):
        kind = "FROM" if mapping.direction == "from" else "Normal"
        for target in mapping.targets:
            writer.writerow([mapping.pattern, target, "", kind, "ALL"])
    return out.getvalue()


def import_csv(conn: Connection, text: str) -> tuple[int, list[str]]:
    """Add the file's mappings; return (added, one problem sentence per refused line)."""
    existing = {
        (m.pattern.lower(), t.lower(), m.direction)
        for m in accounts.list_mappings(conn)
        for t in m.targets
    }
    added = 0
    problems: list[str] = []
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not any(cell.strip() for cell in row):
            continue
        if number == 1 and row[0].strip().lower() == HEADER[0].lower():
            continue
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            problems.append(f"line {number}: the address and the target are required")
            continue
        kind = (row[3].strip().upper() if len(row) > 3 else "") or "NORMAL"
        if kind not in ("NORMAL", "FROM"):
            problems.append(f"line {number}: type {row[3].strip()!r} is not supported yet")
            continue
        direction = "from" if kind == "FROM" else "to"
        key = (row[0].strip().lower(), row[1].strip().lower(), direction)
        if key in existing:
            continue
        try:
            accounts.add_mapping(conn, row[0], [row[1]], direction=direction)
        except accounts.AdminError as exc:
            problems.append(f"line {number}: {exc}")
            continue
        existing.add(key)
        added += 1
    return added, problems
