"""Benchmarks: each `bench_*.py` runs on its own (`.venv/bin/python bench/bench_x.py`) and prints
its figures; `harness.py` is what those that run the hub in its own process share."""
