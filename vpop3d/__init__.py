"""vpop3d: an all-in-one mail server (SMTP, POP3, IMAP4, webmail, web admin) on Twisted."""

__version__ = "0.1.0"
