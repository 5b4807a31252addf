"""Helpers for tests and benchmarks: starting the real infrastructure, tiny models."""
