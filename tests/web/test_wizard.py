"""The Setup Wizard over HTTP: the offer (check 4), pages, Cancel, Finish (check 5)."""

from __future__ import annotations

from tests.web.support import field_value
from vpop3d.app import wizard
from vpop3d.store import connectors, domains, settings

ANSWERS = {
    1: {"connection": "lan"},
    2: {"isp_name": "TestISP"},
    3: {
        "send_method": "relay",
        "relay_servers": "127.0.0.1:2525",
        "relay_auth": "on",
        "relay_username": "isp-user",
        "relay_password": "isp-pass",
    },
    4: {
        "collect": "pop3",
        "pop3_server": "pop.isp.test",
        "pop3_auth": "apop",
        "pop3_username": "acct",
        "pop3_password": "acct-pw",
        "routing": "parse",
        "accepted_domains": "a.test;b.test",
    },
    5: {"local_domains": "a.test;b.test"},
    6: {"times": "24h", "days": "all", "interval": "10"},
    7: {},
}


def _state(stack):
    def read(conn):
        return (
            connectors.list_connections(conn),
            connectors.list_senders(conn),
            connectors.list_schedule(conn),
            sorted(d.name for d in domains.list_all(conn)),
            settings.get(conn, wizard.COLLECTORS_KEY),
        )

    return stack.db.read_sync(read)


def _step(client, page, action="next", **extra):
    form = {"csrf": client.csrf(), "page": str(page), "action": action}
    form.update(ANSWERS[page])
    form.update(extra)
    return client.post("/admin/wizard.html", form)


def _fresh_admin(stack, new_client):
    stack.add_user("boss", "bosspass", is_admin=True)
    client = new_client()
    assert client.login("boss", "bosspass").code == 303
    return client


def test_check_4_offer_skip_and_dont_ask(stack, new_client, web_context):
    """Unconfigured: login offers Run/Skip; Skip + Don't ask again stops the offer;
    ?firstconfig=1 shows page 1 again."""
    client = _fresh_admin(stack, new_client)
    offer = client.get("/admin/index.html")
    for word in ("Run", "Skip", "Don't ask again"):
        assert word in offer.text
    client.post("/admin/wizard/offer", {"csrf": client.csrf(), "action": "skip", "dont_ask": "on"})
    assert stack.db.read_sync(settings.get, wizard.DONT_ASK_KEY) is True
    again = new_client()
    again.login("boss", "bosspass")
    assert "Dashboard" in again.get("/admin/index.html").text
    start = again.get("/admin/index.html?firstconfig=1")
    assert again.get(start.location).location == "/admin/wizard.html?page=1"
    assert "Setup Wizard (Page 1 of 7)" in again.get("/admin/wizard.html?page=1").text


def test_skip_without_dont_ask_offers_again_next_login(stack, new_client):
    """Skip alone only skips for this login."""
    client = _fresh_admin(stack, new_client)
    client.post("/admin/wizard/offer", {"csrf": client.csrf(), "action": "skip"})
    assert "Dashboard" in client.get("/admin/index.html").text
    again = new_client()
    again.login("boss", "bosspass")
    assert "Don't ask again" in again.get("/admin/index.html").text


def test_check_5_wizard_creates_the_configuration(stack, new_client):
    """Seven pages then Finish: 1 Connection TestISP, its Sender, 1 Collector, the
    local domains {a.test, b.test} and 1 schedule item; nothing before Finish."""
    client = _fresh_admin(stack, new_client)
    before = _state(stack)
    client.get("/admin/wizard.html?start=1")
    for page in range(1, 7):
        reply = _step(client, page)
        assert reply.location == f"/admin/wizard.html?page={page + 1}", (page, reply.text)
        assert _state(stack) == before
    assert "Setup Wizard (Page 7 of 7)" in client.get("/admin/wizard.html?page=7").text
    assert _step(client, 7, action="finish").location == "/admin/index.html"
    conns, senders, schedule, names, collectors = _state(stack)
    assert [c["name"] for c in conns] == ["TestISP"]
    assert len(senders) == 1
    assert senders[0]["connection_id"] == conns[0]["id"]
    assert senders[0]["method"] == "relay"
    assert senders[0]["relay_servers"] == "127.0.0.1:2525"
    assert senders[0]["auth_required"]
    assert senders[0]["username"] == "isp-user"
    assert names == ["a.test", "b.test"]
    assert len(collectors) == 1
    assert collectors[0]["connection_id"] == conns[0]["id"]
    assert collectors[0]["auth"] == "apop"
    assert len(schedule) == 1
    item = schedule[0]
    assert (item["interval_min"], item["start_min"], item["end_min"], item["days_mask"]) == (
        10,
        0,
        1439,
        127,
    )
    assert item["connection_ids"] == str(conns[0]["id"])
    assert stack.db.read_sync(settings.get, wizard.DONE_KEY) is True


def test_cancel_on_page_6_changes_nothing(stack, new_client):
    """Check 5: Cancel on page 6 leaves the database as it was."""
    client = _fresh_admin(stack, new_client)
    before = _state(stack)
    client.get("/admin/wizard.html?start=1")
    for page in range(1, 6):
        _step(client, page)
    reply = _step(client, 6, action="cancel")
    assert reply.location == "/admin/index.html"
    assert _state(stack) == before
    assert "nothing was changed" in client.get("/admin/index.html").text


def test_wizard_page_errors_are_explained(stack, new_client):
    """A page with a missing answer stays, with a message saying what to enter."""
    client = _fresh_admin(stack, new_client)
    client.get("/admin/wizard.html?start=1")
    _step(client, 1)
    reply = _step(client, 2, isp_name="")
    assert reply.code == 400
    assert "Enter the name of your ISP" in reply.text
    _step(client, 2)
    reply = _step(client, 3, relay_servers="relay.test:notaport")
    assert reply.code == 400
    assert "SMTP Relay Servers" in reply.text
    _step(client, 3)
    reply = _step(client, 4, pop3_server="")
    assert "POP3 Server Address" in reply.text
    _step(client, 4)
    reply = _step(client, 5, local_domains="not a domain!")
    assert "Local Domains" in reply.text


def test_back_keeps_answers(stack, new_client):
    """<< Back goes to the previous page with the answers kept."""
    client = _fresh_admin(stack, new_client)
    client.get("/admin/wizard.html?start=1")
    _step(client, 1)
    _step(client, 2)
    assert _step(client, 3, action="back").location == "/admin/wizard.html?page=2"
    page = client.get("/admin/wizard.html?page=2")
    assert field_value(page.text, "isp_name") == "TestISP"


def test_rerun_updates_instead_of_adding(stack, new_client):
    """Running the wizard twice still leaves one Connection and one wizard schedule item."""
    client = _fresh_admin(stack, new_client)
    for name in ("TestISP", "OtherISP"):
        client.get("/admin/wizard.html?start=1")
        for page in range(1, 7):
            _step(client, page, **({"isp_name": name} if page == 2 else {}))
        _step(client, 7, action="finish")
    conns, _senders, schedule, _names, _collectors = _state(stack)
    assert [c["name"] for c in conns] == ["OtherISP"]
    assert len(schedule) == 1
