"""mbsync (isync) configuration for the IMAP sync tests."""

from __future__ import annotations

from pathlib import Path


def write_mbsync_config(path: Path, port: int, maildir: Path) -> None:
    """An mbsync channel syncing INBOX both ways between ``maildir`` and fred on
    127.0.0.1:``port`` (plain LOGIN, password ``secret``)."""
    path.write_text(
        f"""IMAPAccount test
Host 127.0.0.1
Port {port}
User fred
Pass secret
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account test

MaildirStore local
Path {maildir}/
Inbox {maildir}/INBOX
SubFolders Verbatim

Channel sync
Far :remote:
Near :local:
Patterns INBOX
Create Both
Expunge Both
SyncState *
"""
    )
