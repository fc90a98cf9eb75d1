"""Web admin and webmail (Klein) on one port."""
