"""Folder sharing for the web admin: every share at a glance, add and remove one.

The same RFC 4314 ACL rows that IMAP SETACL and ``vpop3d folder share`` change
(:mod:`vpop3d.app.imapacl`); this module adds what an admin page needs: a list of
every share with names resolved, rights as plain words ("read", "read/write"),
and refusals worded for a person rather than an IMAP client (features-b §4,
seed-2 §3.1: secondary groups are "used for IMAP4 folder-sharing permissions").
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, and_, select

from vpop3d.app import imapacl
from vpop3d.app.accounts import AdminError
from vpop3d.core import imaprights
from vpop3d.proto.imap.mailbox import MailboxError
from vpop3d.store import acl, folders, groups, users
from vpop3d.store.tables import folder_acl
from vpop3d.store.tables import folders as folders_table
from vpop3d.store.tables import groups as groups_table
from vpop3d.store.tables import users as users_table

# Presets an admin picks instead of RFC 4314 letters (§2.1); order is the menu order.
PRESETS: dict[str, tuple[str, str]] = {
    "read": ("read", "lr"),
    "read_seen": ("read + mark seen", "lrs"),
    "read_write": ("read/write", "lrswipte"),
    "full": ("full control", imaprights.ALL),
}
# One short word per right (RFC 4314 §2.1), for rights that match no preset.
WORDS = {
    "l": "see",
    "r": "read",
    "s": "mark seen",
    "w": "set flags",
    "i": "add messages",
    "p": "post",
    "k": "create folders",
    "x": "delete folder",
    "t": "delete messages",
    "e": "expunge",
    "a": "administer",
}
ROOT = "#users/"


@dataclass(frozen=True, slots=True)
class Share:
    """One ACL entry with its owner, folder and grantee named."""

    id: int
    folder_id: int
    owner: str
    folder: str
    kind: str  # acl.USER | acl.GROUP | acl.ANYONE
    grantee: str  # user or group name; "" for anyone
    rights: str  # canonical letters

    @property
    def identifier(self) -> str:
        """The RFC 4314 identifier (``alice``, ``group:sales``, ``anyone``)."""
        return imaprights.Identifier(self.kind, self.grantee).render()

    @property
    def label(self) -> str:
        return describe(self.rights)

    @property
    def shared_name(self) -> str:
        """What grantees see in IMAP (features-b §4 ``#users/<user>/<folder>``)."""
        return ROOT + self.owner + "/" + self.folder


def describe(rights: str) -> str:
    """Rights in plain words: a preset's name, else one word per right."""
    canonical = imaprights.normalise(rights)
    for label, letters in PRESETS.values():
        if canonical == letters:
            return label
    return ", ".join(WORDS[c] for c in canonical) or "nothing"


def rights_from(preset: str, custom: str) -> str:
    """Canonical letters for a preset key or, when ``preset`` is "custom", the letters."""
    if preset in PRESETS:
        return PRESETS[preset][1]
    if preset not in ("", "custom"):
        raise AdminError(f"unknown rights choice {preset!r}; pick one from the list")
    letters = "".join(custom.split())
    if not letters:
        raise AdminError("choose a preset or type at least one rights letter")
    try:
        return imaprights.normalise(letters)
    except imaprights.RightsError:
        bad = "".join(sorted({c for c in letters if c not in imaprights.ALL + "cd"}))
        raise AdminError(
            f"unknown rights letters {bad!r}: use only {' '.join(imaprights.ALL)}"
        ) from None


def all_shares(conn: Connection) -> list[Share]:
    """Every share, by owner, folder, then users before groups before anyone."""
    owner = users_table.alias("owner")
    grantee_user = users_table.alias("grantee_user")
    query = (
        select(
            folder_acl.c.id,
            folder_acl.c.folder_id,
            folder_acl.c.grantee_kind,
            folder_acl.c.rights,
            folders_table.c.name.label("folder"),
            owner.c.name.label("owner"),
            grantee_user.c.name.label("user_name"),
            groups_table.c.name.label("group_name"),
        )
        .select_from(
            folder_acl.join(folders_table, folders_table.c.id == folder_acl.c.folder_id)
            .join(owner, owner.c.id == folders_table.c.user_id)
            .outerjoin(
                grantee_user,
                and_(
                    folder_acl.c.grantee_kind == acl.USER,
                    grantee_user.c.id == folder_acl.c.grantee_id,
                ),
            )
            .outerjoin(
                groups_table,
                and_(
                    folder_acl.c.grantee_kind == acl.GROUP,
                    groups_table.c.id == folder_acl.c.grantee_id,
                ),
            )
        )
        .order_by(owner.c.name, folders_table.c.name, folder_acl.c.id)
    )
    out: list[Share] = []
    for r in conn.execute(query):
        kind = str(r.grantee_kind)
        name = r.user_name if kind == acl.USER else r.group_name if kind == acl.GROUP else ""
        if kind != acl.ANYONE and name is None:
            continue  # the grantee was deleted; the row is inert (as acl.entries)
        out.append(
            Share(
                int(r.id),
                int(r.folder_id),
                str(r.owner),
                str(r.folder),
                kind,
                str(name),
                str(r.rights),
            )
        )
    order = {acl.USER: 0, acl.GROUP: 1, acl.ANYONE: 2}
    return sorted(out, key=lambda s: (s.owner, s.folder, order.get(s.kind, 3), s.grantee))


def share_by_id(conn: Connection, share_id: int) -> Share | None:
    return next((s for s in all_shares(conn) if s.id == share_id), None)


@dataclass(frozen=True, slots=True)
class UserShares:
    """The Edit User page's read-only view: what the user shares, what reaches them."""

    owned: list[Share]
    received: list[tuple[Share, str]]  # with "directly", "group sales" or "everyone"


def for_user(conn: Connection, user_id: int) -> UserShares:
    """Shares of ``user_id``'s folders, and shares reaching them (secondary or primary
    group, as :func:`vpop3d.store.acl.group_ids_of` counts membership)."""
    row = users.by_id(conn, user_id)
    if row is None:
        return UserShares([], [])
    group_ids = set(acl.group_ids_of(conn, user_id))
    group_names = {g.name for g in groups.list_all(conn) if g.id in group_ids}
    owned: list[Share] = []
    received: list[tuple[Share, str]] = []
    for share in all_shares(conn):
        if share.owner == row.name:
            owned.append(share)
        elif share.kind == acl.USER and share.grantee == row.name:
            received.append((share, "directly"))
        elif share.kind == acl.GROUP and share.grantee in group_names:
            received.append((share, f"group {share.grantee}"))
        elif share.kind == acl.ANYONE:
            received.append((share, "everyone"))
    return UserShares(owned, received)


def folder_names(conn: Connection, owner: str) -> list[str]:
    """The owner's folders for the picker; empty for an unknown user."""
    user = users.by_name(conn, owner.lower()) if owner else None
    if user is None:
        return []
    return sorted((f.name for f in folders.list_for_user(conn, user.id)), key=str.lower)


def add_share(conn: Connection, owner: str, folder: str, grantee: str, rights: str) -> Share:
    """Give ``grantee`` exactly ``rights`` (canonical letters) on the owner's folder.

    Replaces the grantee's earlier rights on that folder (SETACL without +/-).
    """
    owner_row = users.by_name(conn, owner.strip().lower()) if owner.strip() else None
    if owner_row is None:
        raise AdminError(f"there is no user {owner!r}; pick the folder's owner from the list")
    found = folders.by_name(conn, owner_row.id, folder) if folder else None
    if found is None:
        raise AdminError(
            f"user {owner_row.name} has no folder {folder!r}; "
            "pick one of their folders from the list"
        )
    if not grantee:
        raise AdminError("choose who to share the folder with")
    try:
        who = imaprights.parse_identifier(grantee)
    except imaprights.IdentifierError as err:
        raise AdminError(f"cannot share with {grantee!r}: {err}") from None
    if who.kind == imaprights.GROUP and groups.by_name(conn, who.name) is None:
        raise AdminError(f"there is no group {who.name!r}")
    if who.kind == imaprights.USER:
        if users.by_name(conn, who.name) is None:
            raise AdminError(f"there is no user {who.name!r} to share with")
        if who.name == owner_row.name:
            raise AdminError(
                f"user {owner_row.name} owns this folder and always has full control; "
                "choose another user or a group"
            )
    if not rights:
        raise AdminError("choose at least one right")
    try:
        _, _, identifier = imapacl.grantee(conn, who.render())
        imapacl.change_acl(conn, found, identifier, imaprights.normalise(rights))
    except (MailboxError, imaprights.RightsError) as err:
        raise AdminError(str(err)) from None
    return next(
        s for s in all_shares(conn) if s.folder_id == found.id and s.identifier == identifier
    )


def remove_share(conn: Connection, share_id: int) -> Share:
    """Drop one share (DELETEACL); AdminError when it is already gone."""
    share = share_by_id(conn, share_id)
    if share is None:
        raise AdminError("that share no longer exists (someone removed it already)")
    grantee_id = conn.execute(
        select(folder_acl.c.grantee_id).where(folder_acl.c.id == share_id)
    ).scalar()
    acl.remove(conn, share.folder_id, share.kind, None if grantee_id is None else int(grantee_id))
    return share
