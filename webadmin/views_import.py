"""Import users from file (seed-2 §6): choose a file, preview and map columns, import.

The file travels back with the preview form (a hidden field), so nothing is kept on
the server between the two steps and nothing is imported before "Import File".
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from klein import Klein
from sqlalchemy import Connection
from twisted.web.server import Request

from vpop3d.app import userimport
from vpop3d.app.auth import PLAINTEXT_EQUIVALENT
from vpop3d.store import users
from webadmin.forms import arg, flag
from webadmin.guard import Viewer, Web

LOG_NAME = "importusers.log"
MAX_FILE = 5 * 1024 * 1024


def write_password_log(data_dir: Path, pairs: list[tuple[str, str]]) -> Path:
    """Random passwords go to ``<data_dir>/importusers.log``, readable by the owner only."""
    path = data_dir / LOG_NAME
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as handle:
        handle.writelines(f"{name},{password}\n" for name, password in pairs)
    os.chmod(path, 0o600)
    return path


def _existing(conn: Connection, names: list[str]) -> frozenset[str]:
    return frozenset(n for n in names if users.by_name(conn, n) is not None)


async def run_import(
    web: Web, text: str, options: userimport.ImportOptions, acting_user: str
) -> userimport.ImportResult:
    """Hash the file's passwords in the CPU pool first, then apply every row in one
    write transaction (so hashing never holds the database write lock)."""
    names = userimport.user_ids(text, options)
    skip = frozenset() if options.update_existing else await web.db.read(_existing, names)
    plan = userimport.plan_passwords(text, options, skip)
    keep_plain = web.settings.get_bool(PLAINTEXT_EQUIVALENT, False)
    hashed = await web.db.call_cpu(userimport.hash_all, plan.to_hash, keep_plain)
    result: userimport.ImportResult = await web.db.write(
        userimport.import_users,
        text,
        options,
        acting_user=acting_user,
        hashed=hashed,
        random=plan.random,
    )
    return result


def _file_text(request: Request) -> tuple[str, str]:
    """The CSV text (uploaded file, or the preview's hidden copy) and a problem."""
    raw = request.args.get(b"file", [b""])[0] or arg(request, "content").encode("utf-8")
    if not raw.strip():
        return "", "Choose a CSV file to import."
    if len(raw) > MAX_FILE:
        return "", "The file is larger than 5 MB; split it into smaller files."
    try:
        return raw.decode("utf-8-sig"), ""
    except UnicodeDecodeError:
        return "", "The file is not UTF-8 text; save it from your spreadsheet as CSV (UTF-8)."


def _options(request: Request, width: int) -> userimport.ImportOptions:
    try:
        mode = userimport.PasswordMode(arg(request, "passwords", "file"))
    except ValueError:
        mode = userimport.PasswordMode.FROM_FILE
    columns = tuple(arg(request, f"col{i}") for i in range(width))
    if not all(c in userimport.ATTRIBUTES for c in columns):
        columns = ()
    return userimport.ImportOptions(
        ignore_first_line=flag(request, "ignore_first_line"),
        update_existing=flag(request, "update_existing"),
        remove_missing=flag(request, "remove_missing"),
        passwords=mode,
        columns=columns,
    )


def register(app: Klein, web: Web) -> None:
    def page(request: Request, viewer: Viewer, code: int = 200, **values: Any) -> bytes:
        request.setResponseCode(code)
        defaults: dict[str, Any] = {
            "error": "",
            "problems": [],
            "content": "",
            "rows": [],
            "columns": (),
            "form": {"ignore_first_line": True, "passwords": "file"},
        }
        defaults.update(values)
        return web.renderer.page(
            "users_import.html",
            viewer=viewer,
            attributes=userimport.ATTRIBUTES,
            section="users",
            **defaults,
        )

    @app.route("/admin/users/import.html", methods=["GET"])
    async def import_form(request: Request) -> bytes:
        viewer = await web.admin_page(request)
        return page(request, viewer)

    @app.route("/admin/users/import.html", methods=["POST"])
    async def import_post(request: Request) -> bytes:
        viewer = await web.admin_page(request)
        text, problem = _file_text(request)
        form: dict[str, Any] = {
            "ignore_first_line": flag(request, "ignore_first_line"),
            "update_existing": flag(request, "update_existing"),
            "remove_missing": flag(request, "remove_missing"),
            "passwords": arg(request, "passwords", "file"),
        }
        if problem:
            return page(request, viewer, 400, error=problem, form=form)
        try:
            rows, columns = userimport.preview(text, form["ignore_first_line"])
        except userimport.ImportRefused as exc:
            return page(
                request,
                viewer,
                400,
                error="The file cannot be read.",
                problems=exc.problems,
                form=form,
            )
        options = _options(request, len(columns))
        shown = options.columns or columns
        if arg(request, "action") != "import":
            return page(request, viewer, content=text, rows=rows, columns=shown, form=form)
        try:
            result = await run_import(web, text, options, viewer.user.name)
        except userimport.ImportRefused as exc:
            return page(
                request,
                viewer,
                400,
                error="Nothing was imported: fix these lines and import the file again.",
                problems=exc.problems,
                content=text,
                rows=rows,
                columns=shown,
                form=form,
            )
        summary = (
            f"Import done: {len(result.created)} created, {len(result.updated)} updated, "
            f"{len(result.skipped)} left unchanged, {len(result.deleted)} removed."
        )
        web.flash(viewer, "ok", summary)
        if result.ignored_columns:
            web.flash(
                viewer,
                "warning",
                "Not imported (not supported yet): " + ", ".join(result.ignored_columns) + ".",
            )
        if result.random_passwords:
            data_dir = web.context.config.data_dir
            path = await web.db.call_in_pool(write_password_log, data_dir, result.random_passwords)
            web.flash(
                viewer, "ok", f"The generated passwords are in {path.name} in the data directory."
            )
        for name in result.deleted:
            web.sessions.end_user(name)
        raise web.redirect(request, "/admin/users.html")
