"""POP3 (RFC 1939, 2449, 5034): grammar, session, Twisted adapter, client."""
