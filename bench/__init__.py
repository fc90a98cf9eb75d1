"""Benchmarks: ``python -m bench`` runs vpop3d against established mail servers (issue 10)."""
