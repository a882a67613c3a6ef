"""Benchmarks of the platform against baselines measured in the same run (issue 9).

`python -m bench` (or `python bench/run.py`) runs them all and writes bench/results.json,
bench/results.png; bench/RESULTS.md reads them. Not part of the test suite."""
import sys
from pathlib import Path

# The test support (tests/support/motcua_testing) is never installed with the platform.
_SUPPORT = str(Path(__file__).resolve().parents[1] / "tests" / "support")
if _SUPPORT not in sys.path:
    sys.path.insert(0, _SUPPORT)
