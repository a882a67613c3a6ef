import sys
from pathlib import Path

import pytest

# Test support lives beside the tests and is never installed with the platform
# (tests/support/motcua_testing): the suite runs against the installed wheel.
sys.path.insert(0, str(Path(__file__).resolve().parent / "tests" / "support"))

pytest_plugins = ["motcua_testing.fixtures"]


@pytest.fixture(autouse=True, scope="session")
def _cheap_password_hashing_in_process():
    """In-process tests hash hundreds of passwords: use argon2id's cheapest parameters there.
    Processes the tests start (tests/e2e, tests/browser) keep the real cost, and
    services/identity/tests/test_identity_domain.py checks what production uses."""
    from argon2 import PasswordHasher, profiles

    from motcua_identity import store

    real = store._hasher
    store._hasher = PasswordHasher.from_parameters(profiles.CHEAPEST)
    yield
    store._hasher = real
