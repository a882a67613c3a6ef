"""Which gateway a message goes through: the configured gateways in priority order, each
behind its own rate limit, the next one taking over while one keeps failing.

Failover must not become a second SMS. A try that ended without knowing whether the
gateway took the message (a timeout after the request went out, a connection reset) is
"ambiguous": that message stays pinned to that gateway, whose Idempotency-Key dedupes
the retry, and never moves to another gateway, which knows nothing of the key. Only a
clear failure (refused connection, 5xx, 429) lets a message go elsewhere.

A gateway that asks us to wait (429, or 503, with Retry-After) gets no request at all
until that time has passed: not only the message it answered waits, every message for that
gateway does (it is held back without a request, or goes to another gateway if it may).

Circuit state and rate limits live in the worker process: with several workers each keeps
its own, so a gateway's limit should be set per worker (documented in README). A pause
lives here too, and the sender shares it with every worker through the database."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import urlparse

from .gateways import ConsoleGateway, HttpGateway, Outcome, OutboundSms, route_name
from .kannel import KannelConfig, KannelGateway


class RateLimiter:
    """A token bucket: at most `per_second` messages a second, a burst of at most one
    second's worth. `acquire` waits (a green thread's sleep in the worker) for its turn."""

    def __init__(self, per_second: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.per_second = per_second
        self.capacity = max(1.0, per_second)
        self.tokens = self.capacity
        self.clock, self.sleep = clock, sleep
        self.updated = clock()
        self._lock = threading.Lock()

    def _reserve(self) -> float:
        """Take a token now or reserve the next one; how long to wait for it."""
        with self._lock:
            now = self.clock()
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.per_second)
            self.updated = now
            self.tokens -= 1
            return 0.0 if self.tokens >= 0 else -self.tokens / self.per_second

    def acquire(self) -> None:
        if self.per_second <= 0:
            return   # no limit configured
        wait = self._reserve()
        if wait > 0:
            self.sleep(wait)


@dataclass
class Breaker:
    """Open after `threshold` transient failures in a row; after `cooldown_seconds` one
    message may try again (half-open) and, if it goes through, the gateway is back."""

    threshold: int = 3
    cooldown_seconds: float = 30.0
    failures: int = 0
    open_until: float = 0.0

    def allows(self, now: float) -> bool:
        return self.failures < self.threshold or now >= self.open_until

    def record(self, outcome: Outcome, now: float) -> None:
        if outcome.accepted:
            self.failures, self.open_until = 0, 0.0
        elif outcome.retryable:
            self.failures += 1
            if self.failures >= self.threshold:
                self.open_until = now + self.cooldown_seconds
        # A rejection is the message's fault, not the gateway's: the breaker ignores it.


@dataclass
class Route:
    name: str                     # safe to log: scheme, host and port, never a credential
    gateway: object
    limiter: RateLimiter
    breaker: Breaker = field(default_factory=Breaker)
    # Until when the gateway asked us to send nothing (Retry-After), on the pool's clock.
    paused_until: float = 0.0

    def paused_for(self, now: float) -> float:
        return max(0.0, self.paused_until - now)

    def record(self, outcome: Outcome, now: float) -> None:
        self.breaker.record(outcome, now)
        if outcome.retry_after:
            self.paused_until = max(self.paused_until, now + outcome.retry_after)


@dataclass(frozen=True)
class Delivery:
    outcome: Outcome
    gateway: str      # the route that was tried
    receipts: bool    # whether that gateway reports delivery (the console does not)
    # Not sent at all: the gateway had asked us to wait (Retry-After) and that time is not up.
    held: bool = False


class GatewayPool:
    def __init__(self, routes: list[Route], clock: Callable[[], float] = time.monotonic):
        if not routes:
            raise ValueError("at least one gateway")
        self.routes, self.clock = routes, clock
        self._lock = threading.Lock()

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.routes]

    def choose(self, pinned: str | None = None) -> Route:
        """The pinned route if the message must stay on one; else the first route in
        priority order that is neither failing (its breaker) nor paused (Retry-After);
        else the one free soonest (the first in order among those free now)."""
        if pinned:
            for route in self.routes:
                if route.name == pinned:
                    return route
        now = self.clock()
        with self._lock:
            for route in self.routes:
                if route.breaker.allows(now) and not route.paused_for(now):
                    return route
            return min(self.routes, key=lambda route: route.paused_for(now))

    def pause(self, name: str, seconds: float) -> None:
        """Send nothing to gateway `name` for `seconds` (a Retry-After another worker got)."""
        now = self.clock()
        with self._lock:
            for route in self.routes:
                if route.name == name:
                    route.paused_until = max(route.paused_until, now + seconds)

    def paused_for(self) -> float:
        """How long until some gateway may be sent to again: 0 while one may be now."""
        now = self.clock()
        with self._lock:
            return min(route.paused_for(now) for route in self.routes)

    def send(self, sms: OutboundSms, pinned: str | None = None) -> Delivery:
        route = self.choose(pinned)
        receipts = getattr(route.gateway, "receipts", False)
        with self._lock:
            wait = route.paused_for(self.clock())
        if wait:
            # The gateway asked for quiet and that time is not up: no request, the message
            # waits as long (a message pinned to it, or every gateway paused).
            return Delivery(Outcome.retry("held back: the gateway asked to wait (Retry-After)", wait),
                            route.name, receipts, held=True)
        route.limiter.acquire()
        outcome = route.gateway.send(sms)
        with self._lock:
            route.record(outcome, self.clock())
        return Delivery(outcome, route.name, receipts)

    def close(self) -> None:
        for route in self.routes:
            close = getattr(route.gateway, "close", None)
            if close is not None:
                close()


def gateway_for(url: str | None, timeout_seconds: float = 10.0):
    """The HTTP gateway for an http(s) URL, an SMPP client for smpp://, the console without one."""
    if not url:
        return ConsoleGateway()
    scheme = urlparse(url).scheme
    if scheme == "smpp":
        from .smpp import SmppGateway
        return SmppGateway.from_url(url, timeout_seconds)
    if scheme not in ("http", "https"):
        # Name the scheme only: the URL may carry a credential.
        raise ValueError(f"an SMS gateway URL must be http(s):// or smpp://, not {scheme or 'one without a scheme'}")
    return HttpGateway(url, timeout_seconds)


def as_pool(gateway) -> GatewayPool:
    """A pool as it is, or one gateway alone in a pool of its own, without a limit."""
    if isinstance(gateway, GatewayPool):
        return gateway
    return GatewayPool([Route(route_name(getattr(gateway, "url", None)), gateway, RateLimiter(0))])


def pool_from_env(primary_url: str | None, env: dict, timeout_seconds: float) -> GatewayPool:
    """The gateways of the deployment, in priority order:

      SMS_GATEWAY=kannel            Kannel's sendsms first (kannel.py, the KANNEL_* settings)
      SMS_GATEWAY_URL               the preferred one (CONTRACT.md); unset: the console
      SMS_FALLBACK_GATEWAY_URLS     comma-separated, tried in order while the ones before fail
      SMS_GATEWAY_RATE_PER_SECOND   messages a second, one value for all or one per gateway
                                    in the same order (0: no limit) [0]
      NOTIFY_FAILOVER_AFTER         transient failures in a row before a gateway is passed over [3]
      NOTIFY_FAILOVER_COOLDOWN_SECONDS  how long it is passed over before one message tries it [30]
    """
    urls = [primary_url or None] + [u.strip() for u in env.get("SMS_FALLBACK_GATEWAY_URLS", "").split(",")
                                    if u.strip()]
    kannel = _kannel_from_env(env, timeout_seconds)
    if kannel is not None:
        # Kannel first; SMS_GATEWAY_URL, when also set, becomes the first fallback.
        urls = [kannel] + [u for u in urls if u]
    if urls[0] is None and len(urls) > 1:
        raise ValueError("SMS_FALLBACK_GATEWAY_URLS needs SMS_GATEWAY_URL: the console is no fallback")
    rates = [r.strip() for r in env.get("SMS_GATEWAY_RATE_PER_SECOND", "0").split(",") if r.strip()] or ["0"]
    if len(rates) not in (1, len(urls)):
        raise ValueError("SMS_GATEWAY_RATE_PER_SECOND: one value, or one per gateway")
    threshold = int(env.get("NOTIFY_FAILOVER_AFTER", "3"))
    cooldown = float(env.get("NOTIFY_FAILOVER_COOLDOWN_SECONDS", "30"))
    routes = []
    for index, url in enumerate(urls):
        rate = float(rates[index] if len(rates) > 1 else rates[0])
        gateway = url if isinstance(url, KannelGateway) else gateway_for(url, timeout_seconds)
        name = url.url if isinstance(url, KannelGateway) else route_name(url)
        routes.append(Route(name, gateway, RateLimiter(rate), Breaker(threshold, cooldown)))
    if len({r.name for r in routes}) != len(routes):
        raise ValueError("the same SMS gateway is configured twice")
    return GatewayPool(routes)


def _kannel_from_env(env: dict, timeout_seconds: float) -> KannelGateway | None:
    """SMS_GATEWAY=kannel: smsbox's sendsms (kannel.py), configured by the KANNEL_* settings."""
    choice = (env.get("SMS_GATEWAY") or "").strip().lower()
    if choice in ("", "http", "console", "smpp"):
        return None   # the gateways SMS_GATEWAY_URL names
    if choice != "kannel":
        raise ValueError(f"SMS_GATEWAY: kannel, or unset for SMS_GATEWAY_URL; not {choice}")
    return KannelGateway(KannelConfig.from_env(env), timeout_seconds)
