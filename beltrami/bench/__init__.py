"""Benchmark command line and measurement helpers."""
