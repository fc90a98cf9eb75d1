"""The messages both servers are seeded with by the IMAP conformance test.

Each entry is (flags, INTERNALDATE, raw message). Together they exercise what FETCH
and SEARCH must take apart: a plain message, multipart/alternative, an attachment,
a nested message/rfc822, RFC 2047 encoded words, an 8-bit UTF-8 body, a reply
chain for THREAD (References / In-Reply-To), group addresses, a missing Date and a
large body for size keys, base-subject edge cases (RFC 5256 §2.1), a folded header,
an obsolete time zone, and Latin-1 quoted-printable and base64 bodies to decode.
"""

from __future__ import annotations

import base64

CRLF = "\r\n"


def _msg(*lines: str) -> bytes:
    return CRLF.join(lines).encode("utf-8")


PLAIN = _msg(
    "Date: Mon, 7 Feb 1994 21:52:25 -0800",
    "From: Fred Foobar <foobar@Blurdybloop.example>",
    "Subject: afternoon meeting",
    "To: mooch@owatagu.siam.edu.example",
    "Cc: Alice <alice@example.org>, bob@example.org",
    "Message-Id: <B27397-0100000@Blurdybloop.example>",
    "MIME-Version: 1.0",
    "Content-Type: TEXT/PLAIN; CHARSET=US-ASCII",
    "",
    "Hello Joe, do you think we can meet at 3:30 tomorrow?",
    "",
)

ALTERNATIVE = _msg(
    "Date: Tue, 8 Feb 1994 09:00:00 +0000",
    "From: =?UTF-8?Q?J=C3=B6rg_M=C3=BCller?= <joerg@example.de>",
    "To: mooch@owatagu.siam.edu.example",
    "Subject: =?UTF-8?B?R3LDvMOfZSBhdXMgTcO8bmNoZW4=?=",
    "Message-Id: <alt-1@example.de>",
    "MIME-Version: 1.0",
    'Content-Type: multipart/alternative; boundary="alt-boundary"',
    "",
    "This is a MIME message.",
    "--alt-boundary",
    "Content-Type: text/plain; charset=utf-8",
    "Content-Transfer-Encoding: quoted-printable",
    "",
    "Gr=C3=BC=C3=9Fe aus M=C3=BCnchen, the plain part.",
    "--alt-boundary",
    "Content-Type: text/html; charset=utf-8",
    "Content-Transfer-Encoding: 7bit",
    "",
    "<html><body><p>Greetings from Munich, the html part.</p></body></html>",
    "--alt-boundary--",
    "",
)

_PDF = base64.encodebytes(b"%PDF-1.4 fake document body " * 12).decode("ascii")

ATTACHMENT = _msg(
    "Date: Wed, 9 Feb 1994 10:15:00 +0100",
    "From: Carol <carol@example.net>",
    "To: mooch@owatagu.siam.edu.example, Dave <dave@example.net>",
    "Reply-To: carol-replies@example.net",
    "Subject: quarterly report",
    "Message-Id: <report-2@example.net>",
    "MIME-Version: 1.0",
    'Content-Type: multipart/mixed; boundary="mix"',
    "",
    "--mix",
    "Content-Type: text/plain; charset=us-ascii",
    "",
    "Report attached. Zebra keyword for the body search.",
    "--mix",
    'Content-Type: application/pdf; name="report.pdf"',
    "Content-Transfer-Encoding: base64",
    'Content-Disposition: attachment; filename="report.pdf"',
    "Content-Description: The quarterly report",
    "Content-Id: <part2@example.net>",
    "",
    _PDF.replace("\n", CRLF).rstrip(CRLF),
    "--mix--",
    "",
)

NESTED = _msg(
    "Date: Thu, 10 Feb 1994 12:00:00 -0500",
    "From: Eve <eve@example.com>",
    "To: mooch@owatagu.siam.edu.example",
    "Subject: Fwd: afternoon meeting",
    "Message-Id: <fwd-3@example.com>",
    "MIME-Version: 1.0",
    'Content-Type: multipart/mixed; boundary="outer"',
    "",
    "--outer",
    "Content-Type: text/plain",
    "",
    "Forwarded message below.",
    "--outer",
    "Content-Type: message/rfc822",
    "",
    "Date: Mon, 7 Feb 1994 21:52:25 -0800",
    "From: Fred Foobar <foobar@Blurdybloop.example>",
    "To: mooch@owatagu.siam.edu.example",
    "Subject: inner meeting",
    "Message-Id: <inner-4@Blurdybloop.example>",
    "MIME-Version: 1.0",
    'Content-Type: multipart/alternative; boundary="inner"',
    "",
    "--inner",
    "Content-Type: text/plain; charset=us-ascii",
    "",
    "Inner plain text.",
    "--inner",
    "Content-Type: text/html; charset=us-ascii",
    "",
    "<p>Inner html.</p>",
    "--inner--",
    "",
    "--outer--",
    "",
)

REPLY = _msg(
    "Date: Fri, 11 Feb 1994 08:30:00 -0800",
    "From: mooch@owatagu.siam.edu.example",
    "To: Fred Foobar <foobar@Blurdybloop.example>",
    "Subject: Re: afternoon meeting",
    "Message-Id: <reply-5@owatagu.siam.edu.example>",
    "In-Reply-To: <B27397-0100000@Blurdybloop.example>",
    "References: <B27397-0100000@Blurdybloop.example>",
    "",
    "3:30 is fine.",
    "",
)

UTF8_BODY = _msg(
    "Date: Sat, 12 Feb 1994 14:00:00 +0000",
    "From: Zoë <zoe@example.org>",
    "To: mooch@owatagu.siam.edu.example",
    "Subject: =?ISO-8859-1?Q?caf=E9?= and tea",
    "Message-Id: <utf8-6@example.org>",
    "MIME-Version: 1.0",
    "Content-Type: text/plain; charset=utf-8",
    "Content-Transfer-Encoding: 8bit",
    "",
    "Straße und Größe: the café is open.",
    "",
)

GROUP = _msg(
    "From: Sender One <one@example.com>",
    "Sender: secretary@example.com",
    "To: undisclosed-recipients:;",
    "Cc: Team: ann@example.com, ben@example.com;, solo@example.com",
    "Subject: Re: Re: afternoon meeting",
    "Message-Id: <group-7@example.com>",
    "In-Reply-To: <reply-5@owatagu.siam.edu.example>",
    "References: <B27397-0100000@Blurdybloop.example> <reply-5@owatagu.siam.edu.example>",
    "",
    "No Date header in this one.",
    "",
)

LARGE = _msg(
    "Date: Sun, 13 Feb 1994 23:59:59 +1300",
    "From: Bulk <bulk@example.com>",
    "To: mooch@owatagu.siam.edu.example",
    "Subject: big newsletter",
    "Message-Id: <big-8@example.com>",
    "X-Mailer: conformance-corpus",
    "",
    *[f"Line {n:04d} of the newsletter, padding padding padding padding." for n in range(120)],
    "",
)

EDGE_SUBJECT = _msg(
    "Date: 16 Feb 1994 10:00:00 EST",
    'From: "Last, First" <first.last@example.com>',
    "To: a@example.com,",
    " b@example.com,",
    "\tc@example.com",
    "Subject: [PATCH] Re: Fwd: afternoon meeting (fwd)",
    "Message-Id: <edge-9@example.com>",
    "In-Reply-To: <unknown-parent@example.com>",
    "",
    "Folded To header, obsolete zone, list tag subject.",
    "",
)

LATIN1_QP = _msg(
    "Date: Thu, 17 Feb 1994 11:11:11 +0000",
    "From: Chef <chef@example.fr>",
    "To: mooch@owatagu.siam.edu.example",
    "Subject: RE:   afternoon    meeting",
    "Message-Id: <latin1-10@example.fr>",
    "MIME-Version: 1.0",
    'Content-Type: text/plain; charset="iso-8859-1"',
    "Content-Transfer-Encoding: quoted-printable",
    "",
    "Le caf=E9 cr=E8me est pr=EAt.",
    "",
)

BASE64_TEXT = _msg(
    "Date: Fri, 18 Feb 1994 12:00:00 +0000",
    "From: Encoder <enc@example.com>",
    "To: mooch@owatagu.siam.edu.example",
    "Subject: encoded body",
    "Message-Id: <b64-11@example.com>",
    "MIME-Version: 1.0",
    "Content-Type: text/plain; charset=us-ascii",
    "Content-Transfer-Encoding: base64",
    "",
    base64.b64encode(b"The secret word is xylophone.\r\n").decode("ascii"),
    "",
)

# (flags, INTERNALDATE, message): INTERNALDATEs are distinct days so SINCE/BEFORE/ON and
# SORT ARRIVAL have an unambiguous answer.
CORPUS: list[tuple[str, str, bytes]] = [
    ("(\\Seen)", "07-Feb-1994 21:52:25 -0800", PLAIN),
    ("()", "08-Feb-1994 09:00:00 +0000", ALTERNATIVE),
    ("(\\Seen \\Flagged)", "09-Feb-1994 10:15:00 +0100", ATTACHMENT),
    ("(\\Answered $Forwarded)", "10-Feb-1994 12:00:00 -0500", NESTED),
    ("(\\Seen \\Answered)", "11-Feb-1994 08:30:00 -0800", REPLY),
    ("(\\Draft)", "12-Feb-1994 14:00:00 +0000", UTF8_BODY),
    ("(\\Deleted \\Seen)", "14-Feb-1994 06:00:00 +0000", GROUP),
    ("(work)", "15-Feb-1994 18:45:00 +0000", LARGE),
    ("()", "16-Feb-1994 15:00:00 +0000", EDGE_SUBJECT),
    ("(\\Seen work)", "17-Feb-1994 11:11:11 +0000", LATIN1_QP),
    ("(\\Flagged)", "18-Feb-1994 12:00:00 +0000", BASE64_TEXT),
]
