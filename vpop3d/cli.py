"""``vpop3d``: the admin command line, on the same tap.conf and database as the server.

It may run while the server runs (SQLite WAL or PostgreSQL), and calls the same
use cases as the web admin (``vpop3d.app.accounts``). Errors are one line on stderr
and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from vpop3d import __version__
from vpop3d.app import accounts
from vpop3d.app.accounts import AdminError
from vpop3d.app.bootstrap import first_run
from vpop3d.config import BootConfig, ConfigError, load
from vpop3d.store import migrate
from vpop3d.store.db import Database
from vpop3d.store.migrate import SchemaError
from vpop3d.tls import TLSConfigError, context_factory, tls_files

DEFAULT_CONFIG = os.environ.get("VPOP3D_CONFIG", "tap.conf")


class CLIError(Exception):
    """Shown as ``vpop3d: <message>`` with exit status 2."""


def _bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("yes", "true", "on", "1"):
        return True
    if lowered in ("no", "false", "off", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected yes or no, got {text!r}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vpop3d", description="Administer a vpop3d mail server.")
    parser.add_argument("-c", "--config", default=DEFAULT_CONFIG, help="tap.conf to use")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("version", help="print the version")
    sub.add_parser("init", help="create the data dir, schema, administrator and certificate")
    sub.add_parser("check-config", help="validate tap.conf and the TLS files")
    sub.add_parser("migrate", help="apply pending database schema migrations")

    user = sub.add_parser("user", help="manage users").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    add = user.add_parser("add", help="add a user")
    add.add_argument("name")
    add.add_argument("--password", required=True)
    add.add_argument("--admin", action="store_true")
    add.add_argument("--real-name", default="")
    add.add_argument("--quota-kb", type=int, default=0)
    delete = user.add_parser("del", help="delete a user and their mail")
    delete.add_argument("name")
    user.add_parser("list", help="list users")
    passwd = user.add_parser("passwd", help="set a user's password")
    passwd.add_argument("name")
    passwd.add_argument("--password", required=True)
    passwd.add_argument("--webmail", action="store_true", help="set the separate webmail password")
    setter = user.add_parser("set", help="change a user's settings")
    setter.add_argument("name")
    setter.add_argument("--real-name")
    setter.add_argument("--enabled", type=_bool)
    setter.add_argument("--admin", type=_bool)
    setter.add_argument("--quota-kb", type=int)

    domain = sub.add_parser("domain", help="manage local domains").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    dadd = domain.add_parser("add", help="add a local domain")
    dadd.add_argument("name")
    dadd.add_argument("--default", action="store_true", help="make it the default domain")
    ddel = domain.add_parser("del", help="remove a local domain")
    ddel.add_argument("name")
    domain.add_parser("list", help="list local domains")

    mapping = sub.add_parser("mapping", help="manage mappings").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    madd = mapping.add_parser("add", help="map PATTERN to one or more targets")
    madd.add_argument("pattern")
    madd.add_argument("targets", nargs="+")
    madd.add_argument("--from", dest="direction", action="store_const", const="from", default="to")
    mdel = mapping.add_parser("del", help="remove mappings by pattern or id")
    mdel.add_argument("pattern")
    mapping.add_parser("list", help="list mappings in evaluation order")

    auth = sub.add_parser("auth", help="authentication settings").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    plain = auth.add_parser(
        "plaintext-equivalent",
        help="allow CRAM-MD5 and APOP (stores a plaintext-equivalent secret at each "
        "password change; 'no' wipes them)",
    )
    plain.add_argument("enabled", type=_bool)
    _folder_parsers(sub)
    _outbound_parsers(sub)
    return parser


def _folder_parsers(sub: Any) -> None:
    """``folder share|unshare|acl``: IMAP folder sharing (RFC 4314 ACL, as SETACL does)."""
    folder = sub.add_parser("folder", help="share IMAP folders").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    share = folder.add_parser("share", help="give GRANTEE (user, group:NAME, anyone) RIGHTS")
    unshare = folder.add_parser("unshare", help="remove GRANTEE's rights")
    show = folder.add_parser("acl", help="list who may use the folder")
    for p in (share, unshare, show):
        p.add_argument("owner")
        p.add_argument("folder")
    for p in (share, unshare):
        p.add_argument("grantee")
    share.add_argument("rights", help="RFC 4314 letters lrswipkxtea, or +letters / -letters")


def _folder(args: argparse.Namespace, db: Database) -> None:
    from vpop3d.app import imapacl
    from vpop3d.proto.imap.mailbox import MailboxError

    try:
        if args.action == "share":
            rights = db.run_sync(imapacl.share, args.owner, args.folder, args.grantee, args.rights)
            print(f"{args.grantee}: {rights or '(none)'}")
        elif args.action == "unshare":
            db.run_sync(imapacl.unshare, args.owner, args.folder, args.grantee)
        else:
            for who, rights in db.read_sync(imapacl.folder_acl, args.owner, args.folder):
                print(f"{who}\t{rights}")
    except MailboxError as exc:
        raise CLIError(exc.text) from None


def _outbound_parsers(sub: Any) -> None:
    """``queue`` (list, show, retry, delete, bounce, hold, unhold) and ``dkim keygen``."""
    queue = sub.add_parser("queue", help="the outgoing mail queue").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    queue.add_parser("list", help="list queued messages and their recipients")
    for verb, text in (
        ("show", "show one entry with each recipient's state and last error"),
        ("retry", "send at the next run, whatever the retry back-off says"),
        ("delete", "drop an entry without a bounce"),
        ("bounce", "fail its open recipients and send the sender a DSN"),
        ("hold", "never send it until unheld"),
        ("unhold", "allow it to be sent again"),
    ):
        queue.add_parser(verb, help=text).add_argument("id", type=int)
    dkim = sub.add_parser("dkim", help="DKIM signing keys").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    keygen = dkim.add_parser("keygen", help="make a key for DOMAIN and print its DNS TXT record")
    keygen.add_argument("domain")
    keygen.add_argument("--selector", default="vpop3d")
    keygen.add_argument("--bits", type=int, default=2048)

    collector = sub.add_parser("collector", help="Mail Collectors (POP3, ETRN)").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    cadd = collector.add_parser("add", help="add a Mail Collector")
    cadd.add_argument("name")
    cadd.add_argument("--type", dest="kind", default="pop3", help="pop3 | smtp-feed | odmr")
    cadd.add_argument("--server", default="")
    cadd.add_argument("--port", type=int, default=None)
    cadd.add_argument("--tls", dest="tls_mode", default="none", help="none|ssl|stls|stls-optional")
    cadd.add_argument("--no-verify", action="store_true", help="accept any TLS certificate")
    cadd.add_argument("--auth", dest="auth_method", default="plain", help="plain|apop|cram-md5")
    cadd.add_argument("--username", default="")
    cadd.add_argument("--password", default="")
    cadd.add_argument("--leave-days", type=int, default=0)
    cadd.add_argument("--max-messages", type=int, default=0)
    cadd.add_argument("--max-size-kb", type=int, default=0)
    cadd.add_argument("--routing", default="headers", help="headers | user | server")
    cadd.add_argument("--accepted-domains", default="")
    cadd.add_argument("--target-user", default="")
    cadd.add_argument("--target-address", default="")
    cadd.add_argument("--target-server", default="")
    cadd.add_argument(
        "--error-action",
        default="admin",
        help="admin|admin-message|address|address-message|bounce|ignore (seed-3 §6)",
    )
    cadd.add_argument("--error-address", default="")
    cadd.add_argument(
        "--error-also-bounce",
        action="store_true",
        help="also bounce unroutable mail to its sender (seed-3 §6; beware backscatter)",
    )
    cadd.add_argument(
        "--error-bounce-spam-score",
        type=int,
        default=None,
        metavar="N",
        help="no bounces for messages whose spam header scores N or more",
    )
    cadd.add_argument("--etrn-server", default="")
    cadd.add_argument("--etrn-argument", default="")
    cadd.add_argument("--priority", type=int, default=0)
    cadd.add_argument("--disabled", action="store_true")
    collector.add_parser("list", help="list collectors and their last results")
    for verb, text in (
        ("run", "ask the running server to collect now"),
        ("uidls", "show the Messages tab (UIDL inventory)"),
        ("reset", "forget the UIDL inventory: everything at the server counts as new"),
    ):
        collector.add_parser(verb, help=text).add_argument("name")


def _open(config: BootConfig) -> Database:
    try:
        database = Database(config.database, threads=1)
        migrate.ensure(database.engine, auto_migrate=config.auto_migrate)
    except SchemaError as exc:
        raise CLIError(str(exc)) from None
    return database


Handler = Callable[[argparse.Namespace, Database], None]


def _user(args: argparse.Namespace, db: Database) -> None:
    if args.action == "add":
        db.run_sync(
            accounts.add_user,
            args.name,
            args.password,
            real_name=args.real_name,
            is_admin=args.admin,
            quota_kb=args.quota_kb,
        )
        print(f"user {args.name.lower()} added")
    elif args.action == "del":
        db.run_sync(accounts.delete_user, args.name)
        print(f"user {args.name.lower()} deleted")
    elif args.action == "list":
        for summary in db.read_sync(accounts.list_users):
            flags = ("admin " if summary.is_admin else "") + ("" if summary.enabled else "disabled")
            quota = f"{summary.quota_kb} kB" if summary.quota_kb else "no quota"
            fields = [summary.name, summary.real_name, f"{summary.messages} messages", quota, flags]
            print("\t".join(fields).rstrip())
    elif args.action == "passwd":
        db.run_sync(accounts.set_password, args.name, args.password, webmail=args.webmail)
        print(f"password of {args.name.lower()} changed")
    elif args.action == "set":
        changes: dict[str, Any] = {}
        if args.real_name is not None:
            changes["real_name"] = args.real_name
        if args.enabled is not None:
            changes["enabled"] = args.enabled
        if args.admin is not None:
            changes["is_admin"] = args.admin
        if args.quota_kb is not None:
            changes["quota_kb"] = args.quota_kb
        if not changes:
            raise CLIError(
                "user set: name at least one of --real-name, --enabled, --admin, --quota-kb"
            )
        db.run_sync(accounts.update_user, args.name, **changes)
        print(f"user {args.name.lower()} updated")


def _domain(args: argparse.Namespace, db: Database) -> None:
    if args.action == "add":
        added = db.run_sync(accounts.add_domain, args.name, make_default=args.default)
        print(f"domain {added.name} added" + (" (default)" if added.is_default else ""))
    elif args.action == "del":
        db.run_sync(accounts.delete_domain, args.name)
        print(f"domain {args.name.lower()} removed")
    else:
        for domain in db.read_sync(accounts.list_domains):
            print(domain.name + ("\t(default)" if domain.is_default else ""))


def _mapping(args: argparse.Namespace, db: Database) -> None:
    if args.action == "add":
        added = db.run_sync(
            accounts.add_mapping, args.pattern, args.targets, direction=args.direction
        )
        print(f"mapping {added.id}: {added.pattern} -> {', '.join(added.targets)}")
    elif args.action == "del":
        count = db.run_sync(accounts.delete_mapping, args.pattern)
        print(f"{count} mapping(s) removed")
    else:
        for m in db.read_sync(accounts.list_mappings):
            arrow = "<-" if m.direction == "from" else "->"
            print(f"{m.id}\t{m.pattern} {arrow} {', '.join(m.targets)}")


def _auth(args: argparse.Namespace, db: Database) -> None:
    db.run_sync(accounts.set_plaintext_equivalent, args.enabled)
    if args.enabled:
        print(
            "CRAM-MD5 and APOP enabled: a plaintext-equivalent secret is stored from each "
            "user's next password change on"
        )
    else:
        print("CRAM-MD5 and APOP disabled; stored plaintext-equivalent secrets were wiped")


def _queue(args: argparse.Namespace, db: Database) -> None:
    import time

    from vpop3d.app import outqueue
    from vpop3d.store.blobs import make_blob_store

    try:
        if args.action == "list":
            for line in db.read_sync(outqueue.list_entries):
                when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(line.created_at))
                held = " held" if line.held else ""
                rcpts = ", ".join(f"{r.address} ({r.state})" for r in line.recipients)
                print(
                    f"{line.id}\t{line.kind}{held}\t{when}\t<{line.sender}>\t{line.size}\t{rcpts}"
                )
        elif args.action == "show":
            entry = db.read_sync(outqueue.show, args.id)
            print(f"id: {entry.id}\nkind: {entry.kind}\nfrom: <{entry.sender}>\nsize: {entry.size}")
            print(f"held: {'yes' if entry.held else 'no'}")
            for r in entry.recipients:
                print(f"to: <{r.address}> {r.state} attempts={r.attempts} {r.last_error}".rstrip())
        elif args.action == "retry":
            count = db.run_sync(outqueue.retry, args.id, time.time())
            print(f"{count} recipient(s) will be retried at the next run")
        elif args.action == "delete":
            db.run_sync(outqueue.delete, args.id)
            print(f"queue entry {args.id} deleted")
        elif args.action in ("hold", "unhold"):
            db.run_sync(outqueue.hold, args.id, args.action == "hold")
            print(f"queue entry {args.id} {args.action}")
        else:
            config = load(args.config)
            blobs = make_blob_store(config.blob_store, config.data_dir)
            count = db.run_sync(
                lambda conn: outqueue.bounce(
                    conn, blobs, args.id, reporting_mta=config.hostname, now=time.time()
                )
            )
            print(f"{count} recipient(s) bounced")
    except outqueue.QueueError as exc:
        raise CLIError(str(exc)) from None


def _dkim(args: argparse.Namespace, db: Database) -> None:
    from vpop3d.app.dkim import keygen

    config = load(args.config)
    record = keygen(config.data_dir / "dkim", args.domain.lower(), args.selector, args.bits)
    print(f"key written to {config.data_dir / 'dkim' / (args.domain.lower() + '.key')}")
    print("publish this DNS record:")
    print(record)


def _collector(args: argparse.Namespace, db: Database) -> None:
    import time

    from vpop3d.app import collectoradmin

    if args.action == "add":
        fields: dict[str, Any] = {
            name: getattr(args, name)
            for name in (
                "kind", "server", "tls_mode", "auth_method", "username", "password",
                "leave_days", "max_messages", "max_size_kb", "routing", "accepted_domains",
                "target_user", "target_address", "target_server", "etrn_server",
                "etrn_argument", "priority", "error_action", "error_address",
                "error_also_bounce", "error_bounce_spam_score",
            )
        }  # fmt: skip
        fields["tls_verify"] = not args.no_verify
        fields["enabled"] = not args.disabled
        fields["port"] = args.port or (995 if args.tls_mode == "ssl" else 110)
        collector_id = db.run_sync(collectoradmin.add_collector, args.name, **fields)
        print(f"collector {collector_id}: {args.name} added")
    elif args.action == "list":
        for c in db.read_sync(collectoradmin.list_collectors):
            state = "enabled" if c.enabled else "disabled"
            print(f"{c.id}\t{c.name}\t{c.kind}\t{state}\t{c.where}\t{c.routing}\t{c.last_result}")
    elif args.action == "run":
        db.run_sync(collectoradmin.request_run, args.name, time.time())
        print(f"collector {args.name}: the server will collect within a few seconds")
    elif args.action == "uidls":
        for row in db.read_sync(collectoradmin.uidl_rows, args.name):
            state = "deleted" if row["deleted"] else ("stored" if row["stored"] else "seen")
            fields_out = [row["uidl"], state, row["disposition"], row["sender"], row["subject"]]
            print("\t".join(str(f) for f in fields_out))
    else:
        count = db.run_sync(collectoradmin.reset_uidls, args.name)
        print(f"collector {args.name}: {count} UIDL(s) forgotten")


HANDLERS: dict[str, Handler] = {
    "collector": _collector,
    "queue": _queue,
    "dkim": _dkim,
    "user": _user,
    "domain": _domain,
    "mapping": _mapping,
    "auth": _auth,
    "folder": _folder,
}


def run(argv: Sequence[str]) -> None:
    args = _parser().parse_args(argv)
    if args.command == "version":
        print(f"vpop3d {__version__}")
        return
    try:
        config = load(args.config)
    except ConfigError as exc:
        raise CLIError(str(exc)) from None
    if args.command == "check-config":
        try:
            context_factory(tls_files(config), config.tls.min_version)
        except TLSConfigError as exc:
            raise CLIError(f"{config.source}: [tls]: {exc}") from None
        listeners = ", ".join(f"{s.name}:{s.port}" for s in config.enabled_listeners())
        print(f"{config.source}: OK (data dir {config.data_dir}; listeners {listeners})")
        return
    config.data_dir.mkdir(parents=True, exist_ok=True)
    if args.command == "migrate":
        database = Database(config.database, threads=1)
        print(migrate.ensure(database.engine, auto_migrate=True))
        return
    database = _open(config)
    try:
        if args.command == "init":
            for line in database.run_sync(first_run, config.hostname) or ["already initialised"]:
                print(line)
            files = tls_files(config)
            print(f"TLS certificate: {files.certificate}")
            return
        HANDLERS[args.command](args, database)
    finally:
        database.engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    try:
        run(sys.argv[1:] if argv is None else argv)
    except (CLIError, AdminError) as exc:
        print(f"vpop3d: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001  a database or disk error: one line, not a traceback
        print(f"vpop3d: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
