"""Signing-key rotation: the old key stays published until its tokens expire."""
from motcua_common.auth import AuthError, TokenVerifier
from motcua_identity.keys import SKEW_SECONDS, KeyRing

import pytest


class Clock:
    def __init__(self):
        self.t = 1_800_000_000.0

    def __call__(self):
        return self.t


def test_rotation_keeps_old_tokens_valid_until_they_expire(tmp_path):
    clock = Clock()
    ring = KeyRing(tmp_path, token_ttl_seconds=3600, clock=clock)
    old_token = ring.issue("c1", "citizen", "w", 3600)
    old_kid = ring.active.kid
    other_process = KeyRing(tmp_path, token_ttl_seconds=3600, clock=clock)

    clock.t += 10
    new_kid = ring.rotate()
    assert new_kid != old_kid
    assert other_process.active.kid == new_kid            # noticed without a restart
    assert {k["kid"] for k in ring.jwks()["keys"]} == {old_kid, new_kid}
    verifier = TokenVerifier(ring.jwks)
    assert verifier.verify(old_token).subject == "c1"
    assert verifier.verify(ring.issue("c2", "citizen", "w", 60)).subject == "c2"

    clock.t += 3600 + SKEW_SECONDS + 1
    assert {k["kid"] for k in ring.jwks()["keys"]} == {new_kid}
    ring.rotate()
    assert len(list(tmp_path.glob("signing-*.pem"))) == 2   # the first key was pruned
    with pytest.raises(AuthError):
        TokenVerifier(ring.jwks).verify(old_token)
