"""Import users from a CSV file (seed-2 §6 [L3679-3769]): all rows or none.

The file is RFC 4180 CSV whose columns carry the export titles (``User Id``,
``Admin``, ``Password`` ...). Every row is checked and applied inside one
transaction; if any row is refused, :class:`ImportRefused` lists every problem with
its line number and the caller's transaction rolls back, so nothing is
half-imported. New users go through :func:`accounts.add_user`, so they get the
same rules as users added by hand.
"""

from __future__ import annotations

import csv
import io
import secrets
import string
from dataclasses import dataclass, field
from enum import Enum

from sqlalchemy import Connection

from vpop3d.app import accounts
from vpop3d.app.passwords import StoredSecrets, secrets_for
from vpop3d.store import users

# Import titles in the export's order (seed-2 §8); the first three are the default
# columns of a file without a header row (the manual's preview, L3730-3753).
USER_ID = "User Id"
ADMIN = "Admin"
PASSWORD = "Password"  # noqa: S105 - a column title
WEBMAIL_PASSWORD = "Webmail Password"  # noqa: S105 - a column title
COMMENTS = "Comments"
SEND = "Allow send Internet"
RECEIVE = "Allow receive Internet"
ENABLED = "Enabled"
IGNORE = "Ignore"
STORED = (USER_ID, ADMIN, PASSWORD, WEBMAIL_PASSWORD, COMMENTS, SEND, RECEIVE, ENABLED)
# Titles the spec lists that the store cannot hold yet: accepted and skipped.
NOT_STORED = (
    "Forward To",
    "Use Forwarding",
    "Assistant",
    "Send only to assistant",
    "Internet reply address",
    "In Everyone list",
    "Monitor",
    "Max outgoing size",
    "Template user",
    "Other options",
)
ATTRIBUTES = (*STORED, *NOT_STORED, IGNORE)
DEFAULT_COLUMNS = (USER_ID, ADMIN, PASSWORD)
MAX_ERRORS = 50
_BOOL = {"1": True, "0": False, "yes": True, "no": False, "true": True, "false": False}
_RANDOM_ALPHABET = string.ascii_letters + string.digits


class PasswordMode(Enum):
    """ "How are passwords to be created?" [L3745-3767]."""

    FROM_FILE = "file"
    RANDOM = "random"
    USERNAME = "username"
    TEXT = "text"  # the text "password" (seed-2 §6 proposal: lower case)


@dataclass(frozen=True, slots=True)
class ImportOptions:
    ignore_first_line: bool = True
    update_existing: bool = False
    remove_missing: bool = False
    passwords: PasswordMode = PasswordMode.FROM_FILE
    columns: tuple[str, ...] = ()  # attribute per column; () = from titles or default


@dataclass(slots=True)
class ImportResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # existing users left untouched
    random_passwords: list[tuple[str, str]] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)


class ImportRefused(Exception):
    """Rows were refused; ``problems`` are "line N: why" sentences. Nothing applied."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def read_rows(text: str) -> list[tuple[int, list[str]]]:
    """(line number, cells) for each non-blank CSV record; line numbers start at 1."""
    reader = csv.reader(io.StringIO(text))
    rows: list[tuple[int, list[str]]] = []
    start = 1
    try:
        for cells in reader:
            if any(c.strip() for c in cells):
                rows.append((start, cells))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise ImportRefused([f"line {reader.line_num}: {exc}"]) from None
    return rows


def auto_columns(header: list[str]) -> tuple[str, ...]:
    """Map header titles to attributes by name (case and spacing ignored)."""
    known = {a.casefold().replace(" ", ""): a for a in ATTRIBUTES}
    return tuple(known.get(h.strip().casefold().replace(" ", ""), IGNORE) for h in header)


def preview(text: str, ignore_first_line: bool) -> tuple[list[list[str]], tuple[str, ...]]:
    """The first five lines and the column attributes the import would use."""
    rows = read_rows(text)
    first = rows[0][1] if rows else []
    if ignore_first_line and first:
        columns = auto_columns(first)
    else:
        width = max((len(cells) for _, cells in rows[:5]), default=0)
        columns = tuple(DEFAULT_COLUMNS[i] if i < 3 else IGNORE for i in range(width))
    return [cells for _, cells in rows[:5]], columns


def _flag(value: str) -> bool | None:
    return _BOOL.get(value.strip().lower())


def _random_password() -> str:
    return "".join(secrets.choice(_RANDOM_ALPHABET) for _ in range(12))


def _password_for(
    name: str,
    cells: dict[str, str],
    mode: PasswordMode,
    result: ImportResult,
    random: dict[str, str],
) -> str | None:
    if mode is PasswordMode.FROM_FILE:
        return cells.get(PASSWORD) or None
    if mode is PasswordMode.USERNAME:
        return name
    if mode is PasswordMode.TEXT:
        return "password"
    generated = random.get(name) or _random_password()
    result.random_passwords.append((name, generated))
    return generated


def _flags(cells: dict[str, str]) -> tuple[dict[str, bool], list[str]]:
    fields = {ADMIN: "is_admin", SEND: "send", RECEIVE: "receive", ENABLED: "enabled"}
    found: dict[str, bool] = {}
    problems: list[str] = []
    for title, key in fields.items():
        if title in cells and cells[title].strip():
            value = _flag(cells[title])
            if value is None:
                problems.append(f"{title} must be 1 or 0, not {cells[title].strip()!r}")
            else:
                found[key] = value
    return found, problems


def _apply_row(
    conn: Connection,
    cells: dict[str, str],
    options: ImportOptions,
    acting_user: str,
    result: ImportResult,
    hashed: dict[str, StoredSecrets] | None,
    random: dict[str, str],
) -> str:
    """Create or update one user; returns the user name. AdminError when refused."""
    name = cells.get(USER_ID, "").strip().lower()
    if not name:
        raise accounts.AdminError("the User Id is empty")
    flags, problems = _flags(cells)
    comments = cells.get(COMMENTS)
    if comments is not None and len(comments) > 80:
        problems.append("Comments can be at most 80 characters")
    if problems:
        raise accounts.AdminError("; ".join(problems))
    existing = users.by_name(conn, name)
    if existing is not None and not options.update_existing:
        result.skipped.append(existing.name)
        return existing.name
    password = _password_for(name, cells, options.passwords, result, random)
    if existing is None:
        if password is None:
            raise accounts.AdminError("the Password is empty (choose another password option)")
        accounts.add_user(
            conn,
            name,
            password,
            real_name=comments or "",
            is_admin=flags.get("is_admin", False),
            hashed=hashed,
        )
        result.created.append(name)
    else:
        if existing.name == acting_user and flags.get("is_admin") is False:
            raise accounts.AdminError("you cannot clear your own Administrator flag")
        changes: dict[str, object] = {
            k: v for k, v in flags.items() if k in ("is_admin", "enabled")
        }
        if comments is not None:
            changes["real_name"] = comments
        accounts.update_user(conn, name, **changes)
        # seed-2 §6: passwords of updated users change only when given.
        if password is not None:
            accounts.set_password(conn, name, password, hashed=hashed)
        result.updated.append(name)
    if "send" in flags or "receive" in flags:
        current = users.by_name(conn, name)
        assert current is not None
        accounts.set_internet_mail(
            conn,
            name,
            send=flags.get("send", current.allow_send_internet),
            receive=flags.get("receive", current.allow_receive_internet),
        )
    webmail = cells.get(WEBMAIL_PASSWORD, "")
    if webmail and options.passwords is PasswordMode.FROM_FILE:
        accounts.set_password(conn, name, webmail, webmail=True, hashed=hashed)
    return name


def _layout(
    text: str, options: ImportOptions
) -> tuple[tuple[str, ...], list[tuple[int, dict[str, str]]]]:
    """The column attributes and the data rows as {attribute: cell}."""
    rows = read_rows(text)
    if not rows:
        raise ImportRefused(["the file has no rows"])
    columns = options.columns
    if options.ignore_first_line:
        header = rows.pop(0)[1]
        columns = columns or auto_columns(header)
    columns = columns or DEFAULT_COLUMNS
    if USER_ID not in columns:
        raise ImportRefused(["no column is the User Id; choose which column holds it"])
    return columns, [
        (line, {c: v for c, v in zip(columns, raw, strict=False) if c in STORED})
        for line, raw in rows
    ]


@dataclass(frozen=True, slots=True)
class PasswordPlan:
    """Passwords to hash before the import's transaction (hashing is slow: it must not
    hold the database write lock), and the generated ones of "Randomly"."""

    to_hash: tuple[str, ...]
    random: dict[str, str]


def plan_passwords(text: str, options: ImportOptions, skip: frozenset[str]) -> PasswordPlan:
    """Which passwords the import will set; ``skip`` = users it will leave untouched."""
    _, rows = _layout(text, options)
    wanted: dict[str, None] = {}
    random: dict[str, str] = {}
    for _, cells in rows:
        name = cells.get(USER_ID, "").strip().lower()
        if not name or name in skip:
            continue
        if options.passwords is PasswordMode.RANDOM:
            random[name] = random.get(name) or _random_password()
            wanted[random[name]] = None
            continue
        if options.passwords is PasswordMode.FROM_FILE:
            for column in (PASSWORD, WEBMAIL_PASSWORD):
                if cells.get(column):
                    wanted[cells[column]] = None
        else:
            wanted[name if options.passwords is PasswordMode.USERNAME else "password"] = None
    return PasswordPlan(tuple(wanted), random)


def user_ids(text: str, options: ImportOptions) -> list[str]:
    """The (lower-case) user names the file names."""
    _, rows = _layout(text, options)
    return [n for _, c in rows if (n := c.get(USER_ID, "").strip().lower())]


def import_users(
    conn: Connection,
    text: str,
    options: ImportOptions,
    *,
    acting_user: str,
    hashed: dict[str, StoredSecrets] | None = None,
    random: dict[str, str] | None = None,
) -> ImportResult:
    """Apply the whole file or raise :class:`ImportRefused` (caller's txn rolls back).

    ``hashed`` maps passwords to secrets computed beforehand (:func:`plan_passwords`);
    ``random`` holds the generated passwords of "Randomly".
    """
    columns, rows = _layout(text, options)
    result = ImportResult(ignored_columns=[c for c in dict.fromkeys(columns) if c in NOT_STORED])
    problems: list[str] = []
    seen: dict[str, int] = {}
    for line, cells in rows:
        name = cells.get(USER_ID, "").strip().lower()
        if name in seen:
            problems.append(f"line {line}: user {name!r} is also on line {seen[name]}")
            continue
        if name:
            seen[name] = line
        try:
            _apply_row(conn, cells, options, acting_user.lower(), result, hashed, random or {})
        except accounts.AdminError as exc:
            problems.append(f"line {line}: {exc}")
        if len(problems) >= MAX_ERRORS:
            problems.append("stopped after too many errors")
            break
    if problems:
        raise ImportRefused(problems)
    if options.remove_missing:
        for user in users.list_all(conn):
            # Never the logged-in admin (seed-2 §6 proposal, as the directory import).
            if user.name not in seen and user.name != acting_user.lower():
                try:
                    accounts.delete_user(conn, user.name, acting_user=acting_user)
                except accounts.AdminError as exc:
                    raise ImportRefused([f"cannot remove {user.name!r}: {exc}"]) from None
                result.deleted.append(user.name)
    return result


def hash_all(passwords: tuple[str, ...], keep_plain: bool) -> dict[str, StoredSecrets]:
    """Secrets for each password (run it in the CPU pool, outside any transaction)."""
    return {p: secrets_for(p, keep_plain=keep_plain) for p in passwords if p}
