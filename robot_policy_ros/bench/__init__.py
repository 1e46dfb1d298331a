"""Benchmarks of the stack against the usual way (``make bench``); figures, not tests."""
