"""Temporal workflows: state and time, deterministic, no I/O (activities do the I/O)."""
