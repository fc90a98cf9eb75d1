"""SMTP: grammar, server session, Twisted adapter and outbound client."""
