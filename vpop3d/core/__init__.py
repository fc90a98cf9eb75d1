"""Pure domain: addresses, replies, envelopes, messages, SASL. Stdlib only, no I/O."""
