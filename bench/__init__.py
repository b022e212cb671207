"""Benchmarks: runnable scripts whose figures are recorded in bench/README.md."""
