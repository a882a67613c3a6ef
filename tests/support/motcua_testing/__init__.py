"""Test support, never installed: pytest fixtures (fixtures.py, loaded as a plugin by the
root conftest), fault injection (chaos.py) and the served-page reader (pagecheck.py)."""
