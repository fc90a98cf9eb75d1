"""Load generators: blocking stdlib clients, one per worker process (spawned).

Every function returns ``(started, finished, latencies, units, errors)``: wall-clock
bounds, per-operation latencies in seconds, the work done (messages, commands, ...)
and the commands the server answered with a temporary failure (counted, not fatal:
the table shows them next to the throughput).
"""

from __future__ import annotations

import contextlib
import imaplib
import poplib
import re
import smtplib
import time
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar

from bench import corpus

Result = tuple[float, float, list[float], int, int]
PASSWORD = "benchpass1"


def smtp_client(port: int, rcpt: str, count: int, size: int) -> Result:
    """One connection sending ``count`` corpus messages back to back."""
    messages = corpus.smtp_messages(size)
    latencies: list[float] = []
    started = time.time()
    with smtplib.SMTP("127.0.0.1", port, timeout=120) as smtp:
        smtp.ehlo("client.remote.test")
        for n in range(count):
            before = time.perf_counter()
            smtp.sendmail("bench@remote.test", [rcpt], messages[n % len(messages)])
            latencies.append(time.perf_counter() - before)
    return started, time.time(), latencies, count, 0


def pop3_client(port: int, user: str, sessions: int) -> Result:
    """``sessions`` times: USER/PASS, STAT, UIDL, RETR every message, QUIT (kept)."""
    latencies: list[float] = []
    octets = 0
    started = time.time()
    for _ in range(sessions):
        before = time.perf_counter()
        pop = poplib.POP3("127.0.0.1", port, timeout=120)
        pop.user(user)
        pop.pass_(PASSWORD)
        count, _ = pop.stat()
        pop.uidl()
        for number in range(1, count + 1):
            octets += pop.retr(number)[2]
        pop.quit()
        latencies.append(time.perf_counter() - before)
    return started, time.time(), latencies, sessions, 0


class TemporaryFailure(RuntimeError):
    """A tagged NO [UNAVAILABLE] (RFC 5530): the server's own error, session usable."""


def _check(typ: str, data: object) -> None:
    if typ == "NO" and b"EXPUNGEISSUED" in b"".join(d for d in data if isinstance(d, bytes)):  # type: ignore[attr-defined]
        return  # RFC 5530: a sibling session expunged its own APPEND meanwhile; allowed
    if typ == "NO" and b"[UNAVAILABLE]" in b"".join(d for d in data if isinstance(d, bytes)):  # type: ignore[attr-defined]
        raise TemporaryFailure(f"IMAP {typ}: {data!r}")
    if typ not in ("OK", "BYE"):  # LOGOUT answers BYE then OK
        raise RuntimeError(f"IMAP {typ}: {data!r}")


def imap_mixed_client(port: int, user: str, rounds: int, seed: int) -> Result:
    """Per round: LOGIN, SELECT, FETCH flags+envelope, FETCH a body, STORE, APPEND,
    STORE \\Deleted on the appended one, EXPUNGE, LOGOUT; latency per command."""
    latencies: list[float] = []
    appended = corpus.message("multipart", 20_000, seed)
    started = time.time()
    commands = errors = 0

    def timed(call, *args):  # type: ignore[no-untyped-def]
        nonlocal commands
        before = time.perf_counter()
        typ, data = call(*args)
        latencies.append(time.perf_counter() - before)
        commands += 1
        _check(typ, data)
        return data

    for r in range(rounds):
        client = imaplib.IMAP4("127.0.0.1", port, timeout=120)
        try:
            _mixed_round(client, timed, user, seed, r, appended)
        except TemporaryFailure:
            errors += 1  # the round stops there; the session is still usable
            client.logout()
    return started, time.time(), latencies, commands - errors, errors


def _mixed_round(client, timed, user, seed, r, appended):  # type: ignore[no-untyped-def]
    """One round of imap_mixed_client on a fresh connection."""
    timed(client.login, user, PASSWORD)
    exists = min(20, int(timed(client.select, "INBOX")[0]))  # the corpus, never expunged
    timed(client.fetch, "1:*", "(UID FLAGS ENVELOPE RFC822.SIZE)")
    timed(client.fetch, str(1 + (seed + r) % exists), "(BODY.PEEK[])")
    timed(client.store, str(1 + (seed + 3 * r) % exists), "+FLAGS", "(\\Seen)")
    reply = timed(client.append, "INBOX", "", None, appended)
    uid = re.search(rb"APPENDUID \d+ (\d+)", reply[0] or b"")  # RFC 4315 UIDPLUS
    if uid is None:
        raise RuntimeError(f"no APPENDUID in {reply!r}")
    timed(client.uid, "STORE", uid.group(1).decode(), "+FLAGS", "(\\Deleted)")
    timed(client.expunge)
    timed(client.logout)


def imap_large_client(port: int, user: str, repeats: int) -> dict[str, list[float]]:
    """SELECT, FETCH 1:* (FLAGS), UID SEARCH UNSEEN on the big folder, ``repeats`` times."""
    times: dict[str, list[float]] = {"SELECT": [], "FETCH 1:* FLAGS": [], "UID SEARCH UNSEEN": []}
    for _ in range(repeats):
        client = imaplib.IMAP4("127.0.0.1", port, timeout=600)
        _check(*client.login(user, PASSWORD))
        for name, call, args in (
            ("SELECT", client.select, ("INBOX", True)),
            ("FETCH 1:* FLAGS", client.fetch, ("1:*", "(FLAGS)")),
            ("UID SEARCH UNSEEN", client.uid, ("SEARCH", "UNSEEN")),
        ):
            before = time.perf_counter()
            _check(*call(*args))
            times[name].append(time.perf_counter() - before)
        client.logout()
    return times


def web_client(port: int, requests: int) -> Result:
    """Admin login, then ``requests`` GETs of the users grid (10,000 users)."""
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    base = f"http://127.0.0.1:{port}"
    page = opener.open(base + "/admin/index.html", timeout=60).read().decode()
    token = re.search(r'name="token" value="([^"]+)"', page)
    if token is None:
        raise RuntimeError("no login form")
    form = {"username": "postmaster", "password": "admin", "token": token.group(1)}
    opener.open(base + "/admin/login", urllib.parse.urlencode(form).encode(), timeout=60).read()
    latencies: list[float] = []
    started = time.time()
    for _ in range(requests):
        before = time.perf_counter()
        with opener.open(base + "/admin/users.html", timeout=60) as response:
            body = response.read()
            if response.status != 200 or b"user00001" not in body:
                raise RuntimeError(f"users grid: {response.status}")
        latencies.append(time.perf_counter() - before)
    return started, time.time(), latencies, requests, 0


def idle_clients(port: int, user: str, count: int, ready: object, done: object) -> None:
    """Open ``count`` sessions that LOGIN, SELECT INBOX and IDLE; hold them until
    ``done`` (an Event) is set. ``ready`` (a Queue) gets the per-session setup times."""
    import socket

    sockets: list[socket.socket] = []
    times: list[float] = []

    def until(sock: socket.socket, marker: bytes) -> None:
        data = b""
        while marker not in data:
            if b" NO " in data or b" BAD " in data:
                raise RuntimeError(f"refused before {marker!r}: {data[-200:]!r}")
            chunk = sock.recv(65536)
            if not chunk:
                raise RuntimeError(f"closed before {marker!r}: {data[-200:]!r}")
            data += chunk

    try:
        for _ in range(count):
            before = time.perf_counter()
            sock = socket.create_connection(("127.0.0.1", port), timeout=120)
            sockets.append(sock)
            until(sock, b"\r\n")
            sock.sendall(f"a LOGIN {user} {PASSWORD}\r\n".encode())
            until(sock, b"a OK")
            sock.sendall(b"b SELECT INBOX\r\n")
            until(sock, b"b OK")
            sock.sendall(b"c IDLE\r\n")
            until(sock, b"+ ")
            times.append(time.perf_counter() - before)
    except (OSError, RuntimeError) as exc:
        ready.put(f"connection {len(times) + 1}: {exc}")  # type: ignore[attr-defined]
        raise
    ready.put(times)  # type: ignore[attr-defined]
    done.wait(600)  # type: ignore[attr-defined]
    for sock in sockets:
        sock.close()


def sink(port: int, expected: int, ready: object, out: object, timeout: float) -> None:
    """An SMTP sink on 127.0.0.1:``port`` that answers 250 to everything (PIPELINING
    offered) and puts the arrival times (time.time(), one per message, at the final
    dot) on ``out`` once ``expected`` messages came in, or after ``timeout`` s."""
    import asyncio

    arrivals: list[float] = []

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 sink.remote.test ESMTP\r\n")
        in_data = False
        try:
            while line := await reader.readline():
                if in_data:
                    if line in (b".\r\n", b".\n"):
                        in_data = False
                        arrivals.append(time.time())
                        writer.write(b"250 2.0.0 queued\r\n")
                        if len(arrivals) >= expected:
                            done.set()
                    continue
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    writer.write(b"250-sink.remote.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
                elif verb == b"DATA":
                    in_data = True
                    writer.write(b"354 go ahead\r\n")
                elif verb == b"QUIT":
                    writer.write(b"221 2.0.0 bye\r\n")
                    await writer.drain()
                    break
                else:
                    writer.write(b"250 2.0.0 ok\r\n")
                if not in_data:
                    await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass  # the sink is shutting down, or the client went away
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(session, "127.0.0.1", port, backlog=100)
        ready.put(True)  # type: ignore[attr-defined]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), timeout)
        server.close()

    done = asyncio.Event()
    asyncio.run(main())
    out.put(arrivals)  # type: ignore[attr-defined]
