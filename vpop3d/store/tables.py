"""The schema: every table vpop3d keeps, as SQLAlchemy Core ``Table`` objects.

This module is the single source of truth; Alembic migrations in ``schema/`` are
generated against ``metadata``. Times are UNIX seconds (float, UTC) so SQLite and
PostgreSQL behave the same; IMAP internal dates are whole seconds.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

# Run-time settings an admin edits (web admin / CLI). Value is JSON text.
settings = Table(
    "settings",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
)

domains = Table(
    "domains",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(253), nullable=False, unique=True),  # lower case, IDNA A-label
    Column("is_default", Boolean, nullable=False, default=False),
    sqlite_autoincrement=True,
)

# Groups (seed-1 §13): nullable booleans are the manual's tri-state "do not override".
groups = Table(
    "groups",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("force", Boolean, nullable=False, default=False),
    Column("in_everyone", Boolean, nullable=True),
    Column("allow_send_internet", Boolean, nullable=True),
    Column("allow_receive_internet", Boolean, nullable=True),
    Column("monitor", Boolean, nullable=True),
    Column("admin", Boolean, nullable=True),
    Column("max_outgoing_kb", Integer, nullable=False, default=0),
    Column("reply_address", String(320), nullable=False, default=""),
    sqlite_autoincrement=True,
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),  # login name, lower case
    Column("real_name", String(200), nullable=False, default=""),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("password_hash", String(255), nullable=False),  # argon2id
    Column("scram_sha256", String(255), nullable=True),  # ScramKeys.encode()
    # Plaintext-equivalent secret for CRAM-MD5/APOP; only kept while the admin enables it.
    Column("plain_secret", String(255), nullable=True),
    Column("webmail_password_hash", String(255), nullable=True),
    Column("must_change_password", Boolean, nullable=False, default=False),
    Column("quota_kb", BigInteger, nullable=False, default=0),  # 0 = unlimited
    Column("allow_send_internet", Boolean, nullable=False, default=True),
    Column("allow_receive_internet", Boolean, nullable=False, default=True),
    Column("primary_group_id", Integer, ForeignKey("groups.id", ondelete="SET NULL")),
    Column("created_at", Float, nullable=False),
    sqlite_autoincrement=True,
)

user_groups = Table(  # secondary group membership
    "user_groups",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "group_id",
        Integer,
        ForeignKey("groups.id", ondelete="CASCADE"),
        primary_key=True,
    ),
)

# Mappings (seed-1 §17): ``targets`` is a JSON list; ``direction`` "to" or "from".
mappings = Table(
    "mappings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("position", Integer, nullable=False, default=0),
    Column("pattern", String(320), nullable=False),
    Column("targets", Text, nullable=False),
    Column("direction", String(8), nullable=False, default="to"),
    Column("kind", String(8), nullable=False, default="always"),  # always | smtp | pop3
    Column("collector_id", Integer, nullable=True),  # only for mail downloaded by it
    Column("enabled", Boolean, nullable=False, default=True),
    sqlite_autoincrement=True,
)

folders = Table(
    "folders",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(1000), nullable=False),  # "INBOX", "Sent", "Projects/2026" ('/' delim)
    Column("uidvalidity", BigInteger, nullable=False),
    Column("uidnext", BigInteger, nullable=False, default=1),
    Column("highest_modseq", BigInteger, nullable=False, default=1),
    Column("recent_uid", BigInteger, nullable=False, default=0),  # \Recent given up to here
    Column("special_use", String(32), nullable=True),  # \Sent, \Drafts, \Trash, \Junk, ...
    Column("created_at", Float, nullable=False),
    UniqueConstraint("user_id", "name"),
    sqlite_autoincrement=True,
)

# IMAP subscriptions are kept apart from folder existence (RFC 3501 §6.3.6).
subscriptions = Table(
    "subscriptions",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(1000), primary_key=True),
)

# Message bodies, single-instance and reference-counted. ``location`` says which
# blob store holds the bytes: "file" (data_dir/blobs/<key>) or "db" (blob_chunks).
blobs = Table(
    "blobs",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("key", String(64), nullable=False, unique=True),
    Column("size", BigInteger, nullable=False),
    Column("refs", Integer, nullable=False, default=0),
    Column("location", String(8), nullable=False),
    Column("created_at", Float, nullable=False),
    Index("ix_blobs_refs_zero", "refs"),
    sqlite_autoincrement=True,
)

blob_chunks = Table(
    "blob_chunks",
    metadata,
    Column(
        "blob_id",
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("blobs.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("seq", Integer, primary_key=True),
    Column("data", LargeBinary, nullable=False),
)

SYSTEM_FLAGS = {
    "\\Seen": 1,
    "\\Answered": 2,
    "\\Flagged": 4,
    "\\Deleted": 8,
    "\\Draft": 16,
}

messages = Table(
    "messages",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column(
        "folder_id",
        Integer,
        ForeignKey("folders.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("uid", BigInteger, nullable=False),
    Column("modseq", BigInteger, nullable=False),
    Column("flags", Integer, nullable=False, default=0),  # SYSTEM_FLAGS bits
    Column("keywords", Text, nullable=False, default=""),  # space-separated IMAP keywords
    Column("internal_date", BigInteger, nullable=False),  # UNIX seconds
    Column("size", BigInteger, nullable=False),
    Column("uidl", String(70), nullable=False, unique=True),  # POP3 UIDL, never reused
    Column(
        "blob_id",
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("blobs.id"),
        nullable=False,
    ),
    Column("envelope_from", String(320), nullable=False, default=""),
    Column("envelope_to", Text, nullable=False, default=""),
    Column("summary", Text, nullable=True),  # cached core.mime summary (JSON)
    Column("held", Boolean, nullable=False, default=False),  # POP3 "hold instead of delete"
    Column("created_at", Float, nullable=False),
    UniqueConstraint("folder_id", "uid"),
    Index("ix_messages_folder_modseq", "folder_id", "modseq"),
    sqlite_autoincrement=True,
)

# Expunged UIDs with the MODSEQ of their removal (RFC 7162 QRESYNC VANISHED).
expunged = Table(
    "expunged",
    metadata,
    Column(
        "folder_id",
        Integer,
        ForeignKey("folders.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("uid", BigInteger, primary_key=True),
    Column("modseq", BigInteger, nullable=False),
)

# Named leases shared by every process on one database: POP3 maildrop locks, the
# singleton schedulers. ``owner`` identifies the holder; an expired lease is free.
leases = Table(
    "leases",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("owner", String(200), nullable=False),
    Column("expires_at", Float, nullable=False),
)

# Outbound queue: one row per message, one per recipient with its own state.
queue = Table(
    "queue",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("kind", String(16), nullable=False, default="internet"),  # internet | lan
    Column(
        "blob_id",
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("blobs.id"),
        nullable=False,
    ),
    Column("sender", String(320), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("envid", String(100), nullable=True),
    Column("ret", String(8), nullable=True),
    Column("body_type", String(16), nullable=True),
    Column("smtputf8", Boolean, nullable=False, default=False),
    Column("source", String(64), nullable=False, default=""),
    Column("created_at", Float, nullable=False),
    Column("warned_at", Float, nullable=True),  # delay DSN sent (RFC 3464 "delayed")
    Column("held", Boolean, nullable=False, default=False),  # seed-2 §5: never sent while held
    Column("auth_user", String(320), nullable=True),  # SMTP AUTH submitter (Domain Filtering)
    sqlite_autoincrement=True,
)

queue_recipients = Table(
    "queue_recipients",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column(
        "queue_id",
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("queue.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("address", String(320), nullable=False),
    Column("route", Text, nullable=False, default=""),  # JSON LAN-forward target, "" = MX
    Column("state", String(16), nullable=False, default="pending"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Float, nullable=False),
    Column("last_error", Text, nullable=False, default=""),
    Column("notify", String(64), nullable=False, default=""),
    Column("orcpt", String(500), nullable=True),
    Column("updated_at", Float, nullable=False),
    Index("ix_queue_recipients_due", "state", "next_attempt_at"),
    sqlite_autoincrement=True,
)

events = Table(
    "events",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("at", Float, nullable=False),
    Column("level", String(8), nullable=False),
    Column("source", String(64), nullable=False),
    Column("text", Text, nullable=False),
    sqlite_autoincrement=True,
)

# Global Address Book entries added from WebMail/Admin (seed-1 §12); served read-only
# over LDAP under OU=External,O=VPOP3. Local users are listed automatically.
address_book = Table(
    "address_book",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, default=""),
    Column("email", String(320), nullable=False),
    Column("created_at", Float, nullable=False),
    sqlite_autoincrement=True,
)


# Mail connectors (seed-3 §0, §21): a Connection says how to get online, its Mail
# Sender (1:1) how outgoing mail leaves, schedule items when connections run.
connections = Table(
    "connections",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(16), nullable=False, default="lan"),  # lan | command
    Column("is_default", Boolean, nullable=False, default=True),
    Column("up_command", Text, nullable=False, default=""),
    Column("down_command", Text, nullable=False, default=""),
    Column("check_command", Text, nullable=False, default=""),
    Column("fallback_id", Integer, nullable=True),  # "try another Connection on total failure"
    Column("last_result", Text, nullable=False, default=""),
    Column("last_run_at", Float, nullable=True),
    sqlite_autoincrement=True,
)

mail_senders = Table(
    "mail_senders",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "connection_id",
        Integer,
        ForeignKey("connections.id", ondelete="CASCADE"),
        nullable=False,
        unique=True,
    ),
    Column("method", String(16), nullable=False, default="direct"),  # relay | direct
    Column("relay_servers", Text, nullable=False, default=""),  # host[:port] per line
    Column("encryption", String(16), nullable=False, default="starttls_opt"),
    Column("tls_verify", Boolean, nullable=False, default=False),
    Column("auth_required", Boolean, nullable=False, default=False),
    Column("username", String(320), nullable=False, default=""),
    Column("password", String(320), nullable=False, default=""),
    Column("auth_method", String(16), nullable=False, default="auto"),
    Column("max_rcpt_msg", Integer, nullable=False, default=0),
    Column("max_rcpt_session", Integer, nullable=False, default=0),
    Column("max_msgs_session", Integer, nullable=False, default=0),
    Column("rate_msgs", Integer, nullable=False, default=0),  # X messages per Y minutes
    Column("rate_msgs_minutes", Integer, nullable=False, default=0),
    Column("rate_rcpts", Integer, nullable=False, default=0),
    Column("rate_rcpts_minutes", Integer, nullable=False, default=0),
    Column("dns_servers", Text, nullable=False, default=""),
    Column("dns_overrides", Text, nullable=False, default=""),
    Column("mx_threads", Integer, nullable=False, default=10),
    Column("rp_mode", String(16), nullable=False, default="default"),  # default|always|if_not_local
    Column("rp_address", String(320), nullable=False, default=""),
    Column("null_rp_address", String(320), nullable=False, default=""),
    Column("domain_filter", Text, nullable=False, default=""),
    Column("ehlo_name", String(255), nullable=False, default=""),
    Column("smaller_first", Boolean, nullable=False, default=False),
    Column("reverse_order", Boolean, nullable=False, default=False),
    Column("retry_list", String(200), nullable=False, default="5,10,30,60,120,240"),
    Column("max_retry_hours", Float, nullable=False, default=120.0),
    Column("warn_after_hours", Float, nullable=False, default=4.0),
    Column("last_result", Text, nullable=False, default=""),
    sqlite_autoincrement=True,
)

schedule_items = Table(
    "schedule_items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("position", Integer, nullable=False, default=0),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("name", String(200), nullable=False, default=""),
    Column("deny", Boolean, nullable=False, default=False),
    Column("use_default", Boolean, nullable=False, default=True),
    Column("connection_ids", Text, nullable=False, default=""),  # comma-separated ids
    Column("mode", String(8), nullable=False, default="every"),  # every | once
    Column("interval_min", Integer, nullable=False, default=10),
    Column("start_min", Integer, nullable=False, default=0),
    Column("end_min", Integer, nullable=False, default=1439),
    Column("min_queued", Integer, nullable=False, default=0),
    Column("days_mask", Integer, nullable=False, default=127),  # bit 0 = Sunday
    sqlite_autoincrement=True,
)

# Mail Collectors (seed-3 §2-§8): POP3 download, incoming SMTP feed (ETRN), ODMR (ATRN).
collectors = Table(
    "collectors",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("kind", String(16), nullable=False, default="pop3"),  # pop3 | smtp-feed | odmr
    Column("enabled", Boolean, nullable=False, default=True),
    Column("priority", Integer, nullable=False, default=0),  # lower runs first
    Column("connection_ids", Text, nullable=False, default=""),  # comma-separated ids
    Column("server", String(255), nullable=False, default=""),
    Column("port", Integer, nullable=False, default=110),
    Column("tls_mode", String(16), nullable=False, default="none"),  # none|ssl|stls|stls-optional
    Column("tls_verify", Boolean, nullable=False, default=True),
    Column("auth_method", String(16), nullable=False, default="plain"),  # plain|apop|cram-md5
    Column("username", String(320), nullable=False, default=""),
    Column("password", Text, nullable=False, default=""),
    Column("leave_days", Integer, nullable=False, default=0),  # 0 = delete after download
    Column("delete_when_deleted_locally", Boolean, nullable=False, default=False),
    Column("max_messages", Integer, nullable=False, default=0),  # per session, 0 = no limit
    Column("max_size_kb", Integer, nullable=False, default=0),  # 0 = no limit
    Column("use_rules", Boolean, nullable=False, default=False),
    Column("remove_duplicates", Boolean, nullable=False, default=False),
    Column("routing", String(16), nullable=False, default="headers"),  # headers|user|server
    Column("accepted_domains", Text, nullable=False, default=""),  # ';'-separated
    Column("target_user", String(320), nullable=False, default=""),
    Column("target_address", String(320), nullable=False, default=""),
    Column("target_server", String(400), nullable=False, default=""),  # [u:p@]host[:port]
    Column("routing_options", Text, nullable=False, default="{}"),  # JSON (seed-3 §5.4)
    Column("error_action", String(16), nullable=False, default="admin"),  # admin|address|ignore
    Column("error_address", String(320), nullable=False, default=""),
    # seed-3 §6 modifiers: also bounce to the sender; no bounce at spam score >= N (NULL = off)
    Column("error_also_bounce", Boolean, nullable=False, default=False),
    Column("error_bounce_spam_score", Integer, nullable=True),
    Column("etrn_server", String(255), nullable=False, default=""),  # host[:port]
    Column("etrn_argument", String(255), nullable=False, default=""),
    Column("wait_seconds", Integer, nullable=False, default=20),
    Column("odmr_domains", Text, nullable=False, default=""),  # comma-separated
    Column("last_result", Text, nullable=False, default=""),
    Column("last_run_at", Float, nullable=True),
    sqlite_autoincrement=True,
)

# The Messages tab (seed-3 §7): what a collector has seen at its server, by UIDL.
collector_uidls = Table(
    "collector_uidls",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("collector_id", Integer, ForeignKey("collectors.id"), nullable=False),
    Column("uidl", String(255), nullable=False),
    Column("first_seen", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
    Column("stored", Boolean, nullable=False, default=False),
    Column("retrieved_at", Float, nullable=True),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("size", BigInteger, nullable=False, default=0),
    Column("subject", Text, nullable=False, default=""),
    Column("sender", Text, nullable=False, default=""),
    Column("recipients", Text, nullable=False, default=""),
    Column("message_date", Text, nullable=False, default=""),
    Column("get_flag", Boolean, nullable=False, default=False),
    Column("del_flag", Boolean, nullable=False, default=False),
    Column("disposition", String(16), nullable=False, default="seen"),
    Column("message_ids", Text, nullable=False, default=""),  # local message ids (delete-local)
    UniqueConstraint("collector_id", "uidl"),
    sqlite_autoincrement=True,
)

# Download Rules (seed-3 §4): one global ordered list; conditions as JSON.
download_rules = Table(
    "download_rules",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("position", Integer, nullable=False, default=0),
    Column("name", String(200), nullable=False, default=""),
    Column("action", String(40), nullable=False, default="download"),
    Column("targets", Text, nullable=False, default=""),
    Column("header_line", Text, nullable=False, default=""),
    Column("match_all", Boolean, nullable=False, default=True),
    Column("conditions", Text, nullable=False, default="[]"),
    sqlite_autoincrement=True,
)

# IMAP folder sharing (RFC 4314 ACL): rights on one folder for a user, a group or anyone.
# grantee_id is a users.id or groups.id; NULL for "anyone" (one row per folder, kept by code).
folder_acl = Table(
    "folder_acl",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("folder_id", Integer, ForeignKey("folders.id", ondelete="CASCADE"), nullable=False),
    Column("grantee_kind", String(8), nullable=False),  # "user" | "group" | "anyone"
    Column("grantee_id", Integer, nullable=True),
    Column("rights", String(32), nullable=False, default=""),
    UniqueConstraint("folder_id", "grantee_kind", "grantee_id"),
    Index("ix_folder_acl_grantee", "grantee_kind", "grantee_id"),
    sqlite_autoincrement=True,
)
