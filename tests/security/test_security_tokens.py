"""Forged, expired and algorithm-confused tokens are refused by every service."""
from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from motcua_common.auth import AUDIENCE, ISSUER

WARD = "dn-hai-chau"
# One officer-only endpoint per service.
GUARDED = {
    "identity": ("GET", f"/identity/api/v1/wards/{WARD}/coverage"),
    "dossier": ("GET", f"/dossier/api/v1/wards/{WARD}/stats"),
    "queue": ("GET", f"/queue/api/v1/wards/{WARD}/kiosks"),
    "notify": ("GET", f"/notify/api/v1/notifications?ward_id={WARD}"),
    "rating": ("GET", f"/rating/api/v1/wards/{WARD}/stats"),
}


def _claims(**over):
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "intruder", "role": "admin", "ward_id": None,
              "mcp": False, "iat": now, "nbf": now, "exp": now + 600}
    claims.update(over)
    return claims


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def forged_tokens(signing_key) -> dict[str, str]:
    kid = signing_key.kid
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = signing_key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    genuine = signing_key.issue("officer-1", "officer", WARD, 600)
    header, payload, signature = genuine.split(".")
    promoted = _b64({**json.loads(base64.urlsafe_b64decode(payload + "==")), "role": "admin"})
    return {
        "another key, our kid": jwt.encode(_claims(), stranger, algorithm="RS256", headers={"kid": kid}),
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{_b64(_claims())}.",
        "HS256 keyed with the public key": _hs256(_claims(), public_pem, kid),
        "claims edited after signing": f"{header}.{promoted}.{signature}",
        "expired": signing_key.issue("officer-1", "admin", None, -120),
        "not yet valid": jwt.encode(_claims(nbf=int(time.time()) + 3600), signing_key.private_key,
                                    algorithm="RS256", headers={"kid": kid}),
        "another audience": jwt.encode(_claims(aud="someone-else"), signing_key.private_key, algorithm="RS256",
                                       headers={"kid": kid}),
        "another issuer": jwt.encode(_claims(iss="evil"), signing_key.private_key, algorithm="RS256",
                                     headers={"kid": kid}),
        "unknown role": jwt.encode(_claims(role="superuser"), signing_key.private_key, algorithm="RS256",
                                   headers={"kid": kid}),
        "no expiry": jwt.encode({k: v for k, v in _claims().items() if k != "exp"}, signing_key.private_key,
                                algorithm="RS256", headers={"kid": kid}),
        "garbage": "not.a.token",
    }


def _hs256(claims: dict, secret: bytes, kid: str) -> str:
    """PyJWT refuses to HMAC with a PEM key, which is the point; an attacker would not use it."""
    import hashlib
    import hmac

    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{_b64(claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


@pytest.mark.parametrize("service", sorted(GUARDED))
def test_forged_expired_and_confused_tokens_are_refused(service, clients, signing_key, token):
    method, path = GUARDED[service]
    client = clients[service]
    genuine = client.open(path, method=method, headers=token("admin"))
    assert genuine.status_code == 200, genuine.get_json()  # the endpoint works with a real token
    for name, forged in forged_tokens(signing_key).items():
        response = client.open(path, method=method, headers={"Authorization": f"Bearer {forged}"})
        assert response.status_code == 401, f"{name}: {response.status_code}"
        problem = response.get_json()
        assert problem["code"] == ("token_expired" if name == "expired" else "invalid_token"), name
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
