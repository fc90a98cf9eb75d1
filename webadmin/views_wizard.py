"""The Setup Wizard pages (seed-1 §4, checks 4-5): offer at login, 7 pages, Finish.

Answers live in the login session until Finish; Cancel forgets them, so the
database is untouched until the last page [L775].
"""

from __future__ import annotations

from klein import Klein
from sqlalchemy import Connection
from twisted.web.server import Request

from vpop3d.app import accounts, wizard
from vpop3d.store import users
from webadmin.forms import arg, flag
from webadmin.guard import Viewer, Web

# Checkbox fields per page: an unticked box is absent from the form.
CHECKBOXES = {3: ("relay_auth",), 4: ("use_etrn",)}
PAGE_FIELDS = {
    1: ("connection",),
    2: ("isp_name",),
    3: ("send_method", "relay_servers", "relay_username", "relay_password", "dns_servers"),
    4: (
        "collect",
        "pop3_server",
        "pop3_auth",
        "pop3_username",
        "pop3_password",
        "routing",
        "accepted_domains",
        "target_user",
        "target_address",
        "target_server",
        "smtp_domains",
        "smtp_wait",
        "etrn_server",
        "etrn_parameters",
    ),
    5: ("local_domains",),
    6: ("times", "days", "interval"),
    7: (),
}


def should_offer(web: Web, viewer: Viewer) -> bool:
    """Offer the wizard at login on a server that has not been set up [L471-473]."""
    if web.settings.get_bool(wizard.DONE_KEY, False):
        return False
    if web.settings.get_bool(wizard.DONT_ASK_KEY, False):
        return False
    return not (viewer.session and viewer.session.wizard_skipped)


def offer_page(web: Web, viewer: Viewer) -> bytes:
    return web.renderer.page("wizard_offer.html", viewer=viewer, section="dashboard")


def _answers(viewer: Viewer) -> wizard.Answers:
    assert viewer.session is not None
    answers = viewer.session.wizard
    return answers if isinstance(answers, wizard.Answers) else wizard.Answers()


def _render(web: Web, viewer: Viewer, page: int, error: str, user_names: list[str]) -> bytes:
    return web.renderer.page(
        "wizard.html",
        viewer=viewer,
        page=page,
        pages=wizard.PAGES,
        a=_answers(viewer),
        error=error,
        users=user_names,
        section="dashboard",
    )


def _user_names(conn: Connection) -> list[str]:
    return [u.name for u in users.list_all(conn)]


def _page_number(request: Request) -> int:
    text = arg(request, "page", "1")
    return min(max(int(text), 1), wizard.PAGES) if text.isdigit() else 1


def register(app: Klein, web: Web) -> None:
    @app.route("/admin/wizard/offer", methods=["POST"])
    async def wizard_offer(request: Request) -> bytes:
        viewer = await web.admin_page(request)
        assert viewer.session is not None
        if arg(request, "action") == "run":
            raise web.redirect(request, "/admin/wizard.html?start=1")
        viewer.session.wizard_skipped = True
        if flag(request, "dont_ask"):
            await web.settings.put(wizard.DONT_ASK_KEY, True)
        raise web.redirect(request, "/admin/index.html")

    @app.route("/admin/wizard.html", methods=["GET"])
    async def wizard_page(request: Request) -> bytes:
        viewer = await web.admin_page(request)
        assert viewer.session is not None
        if arg(request, "start") == "1" or not isinstance(viewer.session.wizard, wizard.Answers):
            viewer.session.wizard = await web.db.read(wizard.prefill)
            raise web.redirect(request, "/admin/wizard.html?page=1")
        return _render(web, viewer, _page_number(request), "", await web.db.read(_user_names))

    @app.route("/admin/wizard.html", methods=["POST"])
    async def wizard_step(request: Request) -> bytes:
        viewer = await web.admin_page(request)
        assert viewer.session is not None
        page = _page_number(request)
        action = arg(request, "action")
        if action == "cancel":
            viewer.session.wizard = None
            viewer.session.wizard_skipped = True
            web.flash(viewer, "ok", "Setup Wizard cancelled; nothing was changed.")
            raise web.redirect(request, "/admin/index.html")
        values: dict[str, str | bool] = {name: arg(request, name) for name in PAGE_FIELDS[page]}
        values.update({name: flag(request, name) for name in CHECKBOXES.get(page, ())})
        answers = _answers(viewer).updated(values)
        viewer.session.wizard = answers
        if action == "back":
            raise web.redirect(request, f"/admin/wizard.html?page={max(page - 1, 1)}")
        try:
            wizard.check_page(page, answers)
            if action == "finish":
                await web.db.write(wizard.finish, answers)
        except (wizard.WizardError, accounts.AdminError) as exc:
            request.setResponseCode(400)
            return _render(web, viewer, page, str(exc), await web.db.read(_user_names))
        if action == "finish":
            viewer.session.wizard = None
            await web.settings.refresh()
            web.flash(
                viewer,
                "ok",
                "The basic configuration has been created. Enable scheduling on the "
                "Schedule page when the rest of the settings are ready.",
            )
            raise web.redirect(request, "/admin/index.html")
        raise web.redirect(request, f"/admin/wizard.html?page={min(page + 1, wizard.PAGES)}")
