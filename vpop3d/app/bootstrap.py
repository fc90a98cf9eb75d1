"""First run: the administrator, the local domain and the default settings (issue #3).

Idempotent: it only creates what is missing, so it runs at every start.
"""

from __future__ import annotations

from sqlalchemy import Connection

from vpop3d.app import accounts
from vpop3d.store import domains, settings, users

DEFAULT_ADMIN = "postmaster"
DEFAULT_ADMIN_PASSWORD = "admin"  # noqa: S105  manual L453-455; the web UI forces a change


def domain_from_hostname(hostname: str) -> str:
    """``mail.example.com`` -> ``example.com``; a short name is used as it is."""
    labels = hostname.lower().strip(".").split(".")
    return ".".join(labels[1:]) if len(labels) > 2 else ".".join(labels)


def first_run(conn: Connection, hostname: str) -> list[str]:
    """Create what a fresh install needs; return one line per thing created."""
    done: list[str] = []
    if not domains.list_all(conn):
        domain = accounts.add_domain(conn, domain_from_hostname(hostname), make_default=True)
        done.append(f"created local domain {domain.name}")
    if not users.list_all(conn):
        accounts.add_user(
            conn,
            DEFAULT_ADMIN,
            DEFAULT_ADMIN_PASSWORD,
            real_name="Administrator",
            is_admin=True,
            must_change_password=True,
        )
        done.append(f"created administrator {DEFAULT_ADMIN} with password 'admin' (change it)")
    if settings.get(conn, "server.installed_at") is None:
        settings.put(conn, "admin.main_administrator", DEFAULT_ADMIN)
        # Spec check 7: nothing is collected or sent until the admin enables scheduling.
        settings.put(conn, "schedule.enabled", False)
        settings.put(conn, "server.installed_at", hostname)
    return done
