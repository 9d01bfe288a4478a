"""Benchmarks: numbers for BENCHMARKS.md, measured with a baseline in the same run."""
