"""Wire protocols: pure grammar and session state machines plus thin Twisted adapters."""
