"""Protocol replies as values, and the error that carries one up to a command boundary.

Sessions and use cases raise :class:`ReplyError`; the Twisted adapter of each protocol
catches it at the command boundary and writes the reply (SMTP ``550 5.1.1 ...``,
POP3 ``-ERR [AUTH] ...``, IMAP tagged ``NO [ALERT] ...``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Reply:
    """An SMTP-style reply: basic code, optional enhanced status code (RFC 3463), text."""

    code: int
    enhanced: str
    text: str

    @property
    def is_success(self) -> bool:
        return 200 <= self.code < 400

    @property
    def is_transient(self) -> bool:
        return 400 <= self.code < 500

    @property
    def is_permanent(self) -> bool:
        return self.code >= 500

    def lines(self) -> list[str]:
        """Render as wire lines without CRLF, using ``-`` continuation for multi-line text."""
        parts = self.text.split("\n") if self.text else [""]
        out: list[str] = []
        for index, part in enumerate(parts):
            sep = " " if index == len(parts) - 1 else "-"
            prefix = f"{self.code}{sep}"
            if self.enhanced:
                prefix += f"{self.enhanced} "
            out.append(prefix + part)
        return out

    def __str__(self) -> str:
        return "\r\n".join(self.lines())


class ReplyError(Exception):
    """Raised anywhere below a protocol adapter to refuse a command with ``reply``."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(str(reply))
        self.reply = reply

    @classmethod
    def of(cls, code: int, enhanced: str, text: str) -> ReplyError:
        return cls(Reply(code, enhanced, text))


class LoginFailed(Exception):
    """Credentials were wrong, the account is disabled, or the source is banned.

    ``response_code`` is the RFC 2449/5530 code a protocol may show (``AUTH``,
    ``SYS/TEMP``, ``IN-USE``), ``text`` a reason safe to show the client.
    """

    def __init__(self, text: str = "Authentication failed", response_code: str = "AUTH"):
        super().__init__(text)
        self.text = text
        self.response_code = response_code


class MailboxInUse(Exception):
    """The POP3 maildrop is locked by another session (RFC 2449 ``[IN-USE]``)."""


# Texts the manual fixes (seed-1 §11.2); kept together so tests can import them.
SMTP_RECIPIENT_UNKNOWN = Reply(550, "5.1.1", "Recipient not recognised")
SMTP_RELAY_DENIED = Reply(550, "5.7.1", "Relaying denied")
SMTP_TEMP_FAILURE = Reply(451, "4.3.0", "Temporary server error, please try again later")
