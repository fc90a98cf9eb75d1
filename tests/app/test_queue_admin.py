"""Queue admin actions (seed-2 §5) and the ``vpop3d queue`` / ``vpop3d dkim`` CLI verbs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.app.queue_support import START, enqueue, states
from tests.support.server import write_config
from tests.support.stack import Stack
from vpop3d.app import outqueue
from vpop3d.app.dkim import DKIMSigner
from vpop3d.cli import main
from vpop3d.store import queue as queue_repo


def test_bounce_fails_open_recipients_with_one_dsn(stack: Stack) -> None:
    """Bounce: every open recipient fails, the sender gets one DSN, the entry goes."""
    qid = enqueue(stack, ["a@x.test", "b@x.test"], sender="someone@remote.test")
    count = stack.db.run_sync(
        lambda conn: outqueue.bounce(
            conn, stack.blobs, qid, reporting_mta="mail.example.test", now=START
        )
    )
    assert count == 2
    assert states(stack, qid) == {}
    (notice,) = stack.db.run_sync(queue_repo.entries)
    assert notice.sender == ""
    assert notice.recipients[0][0] == "someone@remote.test"


def test_retry_hold_delete(stack: Stack) -> None:
    """Retry makes recipients due now; hold keeps an entry from claims; delete drops it."""
    qid = enqueue(stack, ["a@x.test"], now=START + 100)
    assert stack.db.run_sync(outqueue.retry, qid, START) == 1
    stack.db.run_sync(outqueue.hold, qid, True)
    claimed = stack.db.run_sync(
        lambda conn: queue_repo.claim_due(conn, now=START, owner="t", ttl=10)
    )
    assert claimed == []
    stack.db.run_sync(outqueue.delete, qid)
    with pytest.raises(outqueue.QueueError):
        stack.db.run_sync(outqueue.show, qid)


def test_cli_queue_list_show_retry(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str], stack: Stack
) -> None:
    """`vpop3d queue list|show|retry|delete` print the queue and act on it."""
    config, _ports = write_config(tmp_path, stack.db.engine.url.render_as_string(False))
    qid = enqueue(stack, ["bob@x.test"])
    assert main(["-c", str(config), "queue", "list"]) == 0
    out = capsys.readouterr().out
    assert f"{qid}\tinternet" in out
    assert "bob@x.test (pending)" in out
    assert main(["-c", str(config), "queue", "show", str(qid)]) == 0
    assert "to: <bob@x.test> pending attempts=0" in capsys.readouterr().out
    assert main(["-c", str(config), "queue", "retry", str(qid)]) == 0
    assert "1 recipient(s)" in capsys.readouterr().out
    assert main(["-c", str(config), "queue", "delete", str(qid)]) == 0
    assert main(["-c", str(config), "queue", "show", str(qid)]) == 2
    assert f"no queue entry {qid}" in capsys.readouterr().err


def test_cli_dkim_keygen_and_signing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], stack: Stack
) -> None:
    """`vpop3d dkim keygen` writes a key, prints the TXT record; mail is then signed."""
    import dkim  # type: ignore[import-untyped]  # dkimpy ships no type information

    config, _ports = write_config(tmp_path, stack.db.engine.url.render_as_string(False))
    assert main(["-c", str(config), "dkim", "keygen", "example.test", "--bits", "1024"]) == 0
    out = capsys.readouterr().out
    assert 'vpop3d._domainkey.example.test. IN TXT ( "v=DKIM1; k=rsa; p=' in out
    signer = DKIMSigner(tmp_path / "data" / "dkim")
    message = b"From: alice@example.test\r\nTo: bob@x.test\r\nSubject: hi\r\n\r\nHello\r\n"
    signed = signer.sign(message, "example.test")
    assert signed.startswith(b"DKIM-Signature: v=1;")
    record = out.split("( ", 1)[1].rsplit(" )", 1)[0].replace('"', "").replace(" ", "")
    txt = record.replace("v=DKIM1;k=rsa;", "v=DKIM1; k=rsa; ").encode()
    assert dkim.verify(signed, dnsfunc=lambda name, timeout=5: txt)
    assert signer.sign(message, "other.test") == message
