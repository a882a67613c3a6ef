"""Access tokens: identity signs short-lived JWTs (RS256) and publishes its public keys
(JWKS); every other service verifies locally with the cached keys.

Claims: sub (account id), role (citizen|officer|ward_admin|leader|admin|monitor|kiosk), ward_id,
mcp (must change password). Roles come from CONTRACT.md and DESIGN.md §3."""
from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "motcua-identity"
AUDIENCE = "motcua"
ALGORITHM = "RS256"
ROLES = ("citizen", "officer", "ward_admin", "leader", "admin", "monitor", "kiosk")
# A ward office's clock a few seconds behind the centre's must not refuse a fresh token
# ("issued in the future") nor cut a session short: exp, iat and nbf are checked with this
# much leeway.
CLOCK_LEEWAY_SECONDS = 30
# A key dropped from identity's JWKS is no longer trusted after this long at most.
MAX_KEY_AGE_SECONDS = 300
# The people who work for one ward, and with the platform admin everyone who may act on a
# ward's dossiers, tickets and numbers: one definition for every service.
# The leader (the ward's chairman or a deputy) works the ward's dossiers like its officers
# and alone approves and signs results.
WARD_STAFF_ROLES = ("officer", "ward_admin", "leader")
STAFF_ROLES = WARD_STAFF_ROLES + ("admin",)


@dataclass(frozen=True)
class Principal:
    subject: str
    role: str
    ward_id: str | None
    must_change_password: bool = False
    username: str | None = None
    # A citizen's own token carries the last four digits of their phone (never the number):
    # dossier stores them for the public lookup check without asking identity, so online
    # submission keeps working while the broker is down.
    phone_last4: str | None = None
    # When the token was issued (JWT iat, seconds): a session ended later refuses it
    # (revocations.py).
    issued_at: int | None = None

    def is_staff_of(self, ward_id: str) -> bool:
        """Officer or ward admin of `ward_id`, or a platform admin."""
        if self.role == "admin":
            return True
        return self.role in WARD_STAFF_ROLES and self.ward_id == ward_id

    def can_watch(self, ward_id: str) -> bool:
        """May read a ward's numbers: its staff, the monitoring centre, admins."""
        return self.role == "monitor" or self.is_staff_of(ward_id)


class AuthError(Exception):
    def __init__(self, code: str, detail: str, status: int = 401):
        super().__init__(detail)
        self.code, self.detail, self.status = code, detail, status


# ---------------------------------------------------------------- signing (identity)
class SigningKey:
    def __init__(self, private_key: rsa.RSAPrivateKey):
        self.private_key = private_key
        public_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private_key.public_key()))
        self.kid = jwt.PyJWK(public_jwk).key_id or _thumbprint(public_jwk)
        public_jwk.update({"kid": self.kid, "use": "sig", "alg": ALGORITHM})
        self.public_jwk = public_jwk

    @classmethod
    def load_or_create(cls, path: Path, honour_environment: bool = True) -> "SigningKey":
        """Load the PEM at `path`, or create it (0600) on first start.

        In a cluster the key comes from a Secret mounted at JWT_PRIVATE_KEY_FILE."""
        if honour_environment:
            path = Path(os.environ.get("JWT_PRIVATE_KEY_FILE") or path)
        if path.exists():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            return cls(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        try:
            # link() fails if the key exists: of two processes starting together, the
            # first wins and both then load the same key from disk.
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
        return cls(serialization.load_pem_private_key(path.read_bytes(), password=None))

    def jwks(self) -> dict:
        return {"keys": [self.public_jwk]}

    def issue(self, subject: str, role: str, ward_id: str | None, ttl_seconds: int,
              must_change_password: bool = False, username: str | None = None,
              phone_last4: str | None = None) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER, "aud": AUDIENCE, "sub": subject, "role": role, "ward_id": ward_id,
            "mcp": must_change_password, "iat": now, "nbf": now, "exp": now + ttl_seconds,
        }
        if username:
            claims["preferred_username"] = username
        if phone_last4:
            claims["phone_last4"] = phone_last4
        return jwt.encode(claims, self.private_key, algorithm=ALGORITHM, headers={"kid": self.kid})


def _thumbprint(jwk: dict) -> str:
    import base64
    import hashlib

    canonical = json.dumps({k: jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


# ---------------------------------------------------------------- verifying (everyone)
class TokenVerifier:
    """Verifies bearer tokens with keys from a JWKS document.

    Keys are cached; an unknown kid triggers one refetch (key rotation), at most every
    30 s. When identity is unreachable the cached keys keep working."""

    def __init__(self, jwks_source, refetch_interval: float = 30.0, max_age: float = MAX_KEY_AGE_SECONDS,
                 leeway: float = CLOCK_LEEWAY_SECONDS):
        # jwks_source: a callable returning the JWKS dict (identity uses its own key,
        # the others fetch over HTTP).
        self._source = jwks_source
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = 0.0
        self._tried_at = float("-inf")
        self._refetch_interval = refetch_interval
        self._max_age = max_age
        self.leeway = leeway
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, timeout: float = 3.0, cache_file: str | None = None) -> "TokenVerifier":
        import requests

        def fetch() -> dict:
            response = requests.get(url, timeout=timeout)
            response.raise_for_status()
            return response.json()

        # MOTCUA_JWKS_CACHE_FILE (set by the edge profile): keep the keys on disk as well,
        # so a restart while identity is unreachable still verifies tokens.
        cache_file = cache_file or os.environ.get("MOTCUA_JWKS_CACHE_FILE")
        if cache_file:
            from .jwks_cache import on_disk

            return cls(on_disk(fetch, Path(cache_file)))
        return cls(fetch)

    def _refresh(self, force: bool = False) -> None:
        """Fetch the keys when there are none, when a token names an unknown kid (a new
        key), or when the copy is older than max_age: a key identity dropped from its JWKS
        (retired or compromised) stops being trusted then, without waiting for an unknown
        kid. At most one attempt per refetch_interval; while identity cannot be reached
        the cached keys keep working.

        Keys that are merely old are refreshed by one thread while the others go on with
        them: the fetch goes through identity's API, which beside the other APIs (one
        machine) may itself wait for a free thread, and every authenticated request of the
        process stood behind it (seen in py-spy dumps during the province's simulated day)."""
        if self._keys and not force:
            if time.monotonic() - self._fetched_at < self._max_age:
                return
            if not self._lock.acquire(blocking=False):
                return  # another thread is fetching; the old keys still verify meanwhile
        else:
            self._lock.acquire()
        try:
            now = time.monotonic()
            fresh = now - self._fetched_at < self._max_age
            if self._keys and fresh and not force:
                return
            if self._keys and now - self._tried_at < self._refetch_interval:
                return
            self._tried_at = now
            try:
                document = self._source()
            except Exception as exc:
                if self._keys:
                    return  # keep serving with the cached keys
                raise AuthError("auth_unavailable", "Không kiểm tra được phiên đăng nhập, vui lòng thử lại.", 503) from exc
            self._keys = {k["kid"]: jwt.PyJWK(k) for k in document.get("keys", []) if "kid" in k}
            self._fetched_at = now
        finally:
            self._lock.release()

    def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthError("invalid_token", "Mã truy cập không hợp lệ.") from exc
        kid = header.get("kid")
        self._refresh()
        if kid not in self._keys:
            self._refresh(force=True)
        key = self._keys.get(kid)
        if key is None:
            raise AuthError("invalid_token", "Mã truy cập không hợp lệ.")
        try:
            claims = jwt.decode(token, key.key, algorithms=[ALGORITHM], audience=AUDIENCE, issuer=ISSUER,
                                options={"require": ["exp", "sub", "iat"]}, leeway=self.leeway)
        except jwt.ExpiredSignatureError as exc:
            raise AuthError("token_expired", "Phiên đăng nhập đã hết hạn, vui lòng đăng nhập lại.") from exc
        except jwt.PyJWTError as exc:
            raise AuthError("invalid_token", "Mã truy cập không hợp lệ.") from exc
        if claims.get("role") not in ROLES:
            raise AuthError("invalid_token", "Mã truy cập không hợp lệ.")
        return Principal(
            subject=claims["sub"], role=claims["role"], ward_id=claims.get("ward_id"),
            must_change_password=bool(claims.get("mcp")), username=claims.get("preferred_username"),
            phone_last4=claims.get("phone_last4"), issued_at=claims.get("iat"),
        )
