"""In-memory HTTP tests of the web app: treq over an in-memory agent, synchronous store.

``SyncDatabase`` runs each repository call on the calling thread and returns an
already-fired Deferred, so a request completes within ``StubTreq.flush()`` and tests
need no reactor turns.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

from treq.client import HTTPClient
from treq.testing import RequestTraversalAgent, _SynchronousProducer
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.python.failure import Failure

from vpop3d.store.db import Database


class SyncDatabase:
    """The ``Database`` calls the web app makes, run synchronously."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def read(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]:
        return maybeDeferred(self._db.read_sync, fn, *args, **kwargs)

    def write(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]:
        return maybeDeferred(self._db.run_sync, fn, *args, **kwargs)

    def call_in_pool(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]:
        return maybeDeferred(fn, *args, **kwargs)

    def call_cpu(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]:
        return maybeDeferred(fn, *args, **kwargs)

    def write_grouped(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]:
        return self.write(fn, *args, **kwargs)

    def read_sync(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return self._db.read_sync(fn, *args, **kwargs)

    def run_sync(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return self._db.run_sync(fn, *args, **kwargs)


@dataclass
class Reply:
    code: int
    headers: dict[str, list[str]]
    body: bytes

    @property
    def text(self) -> str:
        """The body with HTML entities resolved, as a person reads it."""
        return html.unescape(self.body.decode("utf-8"))

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None

    @property
    def location(self) -> str | None:
        return self.header("location")


class Client:
    """A browser-like client: keeps cookies, reads CSRF tokens from pages."""

    def __init__(self, resource: Any) -> None:
        self.agent = RequestTraversalAgent(resource)
        # Cookies are this client's own (tests edit them): treq's jar accepts none.
        jar = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
        self.http = HTTPClient(
            self.agent,
            cookiejar=jar,  # type: ignore[arg-type]
            data_to_body_producer=_SynchronousProducer,
        )
        self.cookies: dict[str, str] = {}

    def _wait(self, d: Deferred[Any]) -> Any:
        results: list[Any] = []
        d.addBoth(results.append)
        for _ in range(50):
            if results:
                break
            self.agent.flush()
        assert results, "the request did not complete"
        if isinstance(results[0], Failure):
            results[0].raiseException()
        return results[0]

    def request(self, method: str, path: str, **kwargs: Any) -> Reply:
        headers = dict(kwargs.pop("headers", {}) or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if "json" in kwargs:
            kwargs["data"] = json.dumps(kwargs.pop("json")).encode()
            headers.setdefault("Content-Type", "application/json")
        response = self._wait(
            self.http.request(
                method, "http://localhost" + path, headers=headers, allow_redirects=False, **kwargs
            )
        )
        body = self._wait(response.content())
        raw = {
            k.decode().lower(): [v.decode() for v in vs]
            for k, vs in response.headers.getAllRawHeaders()
        }
        for cookie in raw.get("set-cookie", []):
            name, _, rest = cookie.partition("=")
            value = rest.split(";", 1)[0]
            if "max-age=0" in cookie.lower() or not value:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return Reply(response.code, raw, body)

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, data: dict[str, str] | None = None, **kwargs: Any) -> Reply:
        return self.request("POST", path, data=data or {}, **kwargs)

    def login(self, username: str, password: str, remember: bool = False) -> Reply:
        page = self.get("/admin/index.html")
        token = field_value(page.text, "token")
        form = {"username": username, "password": password, "token": token}
        if remember:
            form["remember"] = "on"
        return self.post("/admin/login", form)

    def csrf(self) -> str:
        page = self.get("/webmail/")
        return field_value(page.text, "csrf")


def field_value(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no field {name} in the page"
    return found.group(1)
