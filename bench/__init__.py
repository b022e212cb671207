"""Benchmarks: runnable scripts whose figures are recorded in docs/benchmarks.md."""
