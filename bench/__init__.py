"""Benchmarks of the platform against baselines measured in the same run (issue 9).

`python -m bench` (or `python bench/run.py`) runs them all and writes bench/results.json,
bench/results.png; bench/RESULTS.md reads them. Not part of the test suite."""
