"""Benchmarks (run as scripts: `python bench/signin.py`)."""
