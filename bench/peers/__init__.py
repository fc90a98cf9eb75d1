"""Launchers for the servers under test: vpop3d and its established peers."""
