"""Benchmarks for Front Door (not timed tests). See ``bench/README.md`` and ``bench/RESULTS.md``."""
