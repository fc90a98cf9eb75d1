"""IMAP4rev1/rev2: grammar, session, Twisted adapter."""
