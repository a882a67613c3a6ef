"""Settings, read from the environment once per process (never at import time)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

SERVICES = ("identity", "dossier", "queue", "notify", "rating")


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    mongo_url: str = "mongodb://127.0.0.1:27017/?directConnection=true"
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"
    data_dir: Path = Path(".motcua")
    db_prefix: str = "motcua_"
    admin_password: str | None = None
    identity_url: str = "http://127.0.0.1:8080"
    jwks_url: str | None = None
    sms_gateway_url: str | None = None
    # One secret per job (each leaks, and is rotated, on its own): the gateway's proof on
    # inbound SMS (identity), on delivery receipts (notify's POST /receipts), and the key
    # that signs Kannel's per-message report URLs (notify only; Kannel never holds it).
    sms_inbound_token: str | None = None
    sms_delivery_token: str | None = None
    sms_report_signing_key: str | None = None
    sms_unaccented: bool = False
    demo: bool = False
    timezone: str = "Asia/Ho_Chi_Minh"
    log_level: str = "INFO"
    token_ttl_seconds: int = 3600
    queue_type: str = "quorum"
    consumer_max_attempts: int = 5
    consumer_retry_delay_ms: int = 2000
    # A message the consumer never acknowledged (its worker died handling it) goes to the
    # dead-letter queue after this many deliveries (quorum queues' delivery limit).
    consumer_delivery_limit: int = 20
    relay_poll_seconds: float = 0.2
    sms_retry_window_seconds: int = 600
    trusted_proxies: int = 0
    # Self-registrations (web, anonymous) accepted per client address and hour: a ward's
    # public Wi-Fi stays far below; a script creating accounts, or probing which national
    # ids have one (the 409), does not. Load tests from one address raise it.
    registrations_per_client_hour: int = 30
    sms_registration_ward: str = ""
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: dict | None = None) -> "Settings":
        env = os.environ if env is None else env
        data_dir = Path(env.get("MOTCUA_DATA_DIR", ".motcua"))
        identity_url = env.get("IDENTITY_URL", "http://127.0.0.1:8080").rstrip("/")
        return cls(
            mongo_url=env.get("MONGO_URL", cls.mongo_url),
            amqp_url=env.get("AMQP_URL", cls.amqp_url),
            data_dir=data_dir,
            db_prefix=env.get("MOTCUA_DB_PREFIX", "motcua_"),
            admin_password=env.get("MOTCUA_ADMIN_PASSWORD") or None,
            identity_url=identity_url,
            jwks_url=env.get("JWKS_URL") or f"{identity_url}/identity/.well-known/jwks.json",
            sms_gateway_url=env.get("SMS_GATEWAY_URL") or None,
            sms_inbound_token=env.get("SMS_INBOUND_TOKEN") or None,
            sms_delivery_token=env.get("SMS_DELIVERY_TOKEN") or None,
            sms_report_signing_key=env.get("SMS_REPORT_SIGNING_KEY") or None,
            sms_unaccented=_flag(env.get("SMS_UNACCENTED")),
            demo=_flag(env.get("MOTCUA_DEMO")),
            timezone=env.get("MOTCUA_TIMEZONE", "Asia/Ho_Chi_Minh"),
            log_level=env.get("MOTCUA_LOG_LEVEL", "INFO").upper(),
            token_ttl_seconds=int(env.get("MOTCUA_TOKEN_TTL_SECONDS", "3600")),
            queue_type=env.get("MOTCUA_QUEUE_TYPE", "quorum"),
            consumer_max_attempts=int(env.get("MOTCUA_CONSUMER_MAX_ATTEMPTS", "5")),
            consumer_retry_delay_ms=int(env.get("MOTCUA_CONSUMER_RETRY_DELAY_MS", "2000")),
            consumer_delivery_limit=int(env.get("MOTCUA_CONSUMER_DELIVERY_LIMIT", "20")),
            relay_poll_seconds=float(env.get("MOTCUA_RELAY_POLL_SECONDS", "0.2")),
            sms_retry_window_seconds=int(env.get("SMS_RETRY_WINDOW_SECONDS", "600")),
            trusted_proxies=int(env.get("MOTCUA_TRUSTED_PROXIES", "0")),
            registrations_per_client_hour=int(env.get("MOTCUA_REGISTRATIONS_PER_CLIENT_HOUR", "30")),
            sms_registration_ward=env.get("SMS_REGISTRATION_WARD", ""),
        )

    def database_name(self, service: str) -> str:
        return f"{self.db_prefix}{service}"


def nameko_config(settings: Settings) -> dict:
    return {
        "AMQP_URI": settings.amqp_url,
        "serializer": "json",
        # Handlers run side by side per worker process; also the broker's prefetch per
        # consumer (nameko ties the two). MOTCUA_WORKER_MAX_WORKERS tunes it (bench/RESULTS.md).
        "max_workers": int(os.environ.get("MOTCUA_WORKER_MAX_WORKERS", "20")),
        # Detect a dead broker link in seconds, not nameko's default minute.
        "HEARTBEAT": 15,
        "MOTCUA_SETTINGS": settings,
    }
