"""Fixtures for web admin tests: the app over a synchronous store, and clients."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.support.stack import Stack
from tests.web.support import Client, SyncDatabase
from vpop3d.app.auth import AccountAuthenticator
from vpop3d.app.settings import Settings
from vpop3d.config import defaults
from vpop3d.context import ServerContext
from vpop3d.store import users
from webadmin.site import make_site


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def seconds(self) -> float:
        return self.now


@pytest.fixture
def web_context(stack: Stack) -> ServerContext:
    """A ServerContext whose database calls complete synchronously."""
    db: Any = SyncDatabase(stack.db)
    settings = Settings(db)
    settings.load_sync()
    return ServerContext(
        config=defaults(stack.data_dir),
        reactor=FakeClock(),
        database=db,
        settings=settings,
        blob_store=stack.blobs,
        bus=stack.bus,
        authenticator=AccountAuthenticator(db, settings),
        tls=None,
    )


@pytest.fixture
def new_client(web_context: ServerContext) -> Callable[[], Client]:
    resource = make_site(web_context).resource
    return lambda: Client(resource)


@pytest.fixture
def admin(stack: Stack, new_client: Callable[[], Client], web_context: ServerContext) -> Client:
    """A client logged in as an administrator who has set a password (wizard not offered)."""
    stack.add_user("boss", "bosspass", is_admin=True)
    stack.put_setting("wizard.dont_ask", True)
    web_context.settings.load_sync()
    client = new_client()
    reply = client.login("boss", "bosspass")
    assert reply.code == 303
    return client


@pytest.fixture
def unchange_postmaster(stack: Stack) -> None:
    user = stack.db.run_sync(users.by_name, "postmaster")
    assert user is not None
    stack.db.run_sync(users.update_fields, user.id, must_change_password=False)
