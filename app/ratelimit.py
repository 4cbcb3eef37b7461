"""Rate limits for the public self-referral form: token buckets per client address and overall.

The buckets live in this process's memory. With several worker processes (``frontdoor serve
--workers N``) or several replicas, each has its own buckets, so the effective limits are N
times the configured ones; put a shared limiter (the reverse proxy, or a shared store) in front
when that matters. What this one guarantees is that a single process cannot be flooded
through the form, and that one address cannot crowd out everyone else.

Time comes from an injected function (the app clock), so tests move time instead of sleeping.
"""

from __future__ import annotations

import ipaddress
import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Depends, Request

from app.config import Settings
from app.errors import TooManyRequests

SECONDS_PER_MINUTE = 60.0
# Addresses remembered at once; the least recently seen are forgotten first (a forgotten address
# starts again with a full bucket, and the overall bucket still applies).
MAX_TRACKED_ADDRESSES = 10_000
# IPv6 clients usually hold a whole /64, so one bucket covers the prefix, not each address.
IPV6_PREFIX_BITS = 64


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated_at: float


class TokenBucket:
    """``capacity`` requests at once, refilled evenly at ``capacity`` per minute."""

    def __init__(self, capacity: int, now: float) -> None:
        self.capacity = float(capacity)
        self.refill_per_second = capacity / SECONDS_PER_MINUTE
        self._state = _Bucket(tokens=self.capacity, updated_at=now)

    def _refill(self, now: float) -> None:
        # A clock that steps backwards adds nothing (never a negative refill).
        elapsed = max(0.0, now - self._state.updated_at)
        self._state.tokens = min(
            self.capacity, self._state.tokens + elapsed * self.refill_per_second
        )
        self._state.updated_at = max(now, self._state.updated_at)

    def wait_seconds(self, now: float) -> float:
        """0 when a request may go now, else how long until one may."""
        self._refill(now)
        if self._state.tokens >= 1.0:
            return 0.0
        return (1.0 - self._state.tokens) / self.refill_per_second

    def take(self) -> None:
        self._state.tokens -= 1.0


class SelfReferralLimiter:
    """One bucket per client address and one for everyone, in this process only."""

    def __init__(
        self,
        *,
        per_address_per_minute: int,
        overall_per_minute: int,
        time_source: Callable[[], float],
        max_tracked_addresses: int = MAX_TRACKED_ADDRESSES,
    ) -> None:
        self._per_address = per_address_per_minute
        self._time = time_source
        self._overall = TokenBucket(overall_per_minute, time_source())
        self._addresses: OrderedDict[str, TokenBucket] = OrderedDict()
        self._max_tracked = max_tracked_addresses

    def acquire(self, address: str) -> float:
        """Take a token from both buckets and return 0, or take none and return the seconds to
        wait (a refused request does not use up the overall allowance)."""
        now = self._time()
        bucket = self._addresses.get(address)
        if bucket is None:
            bucket = TokenBucket(self._per_address, now)
            self._addresses[address] = bucket
            if len(self._addresses) > self._max_tracked:
                self._addresses.popitem(last=False)
        else:
            self._addresses.move_to_end(address)
        wait = max(bucket.wait_seconds(now), self._overall.wait_seconds(now))
        if wait > 0:
            return wait
        bucket.take()
        self._overall.take()
        return 0.0


def client_address(request: Request, settings: Settings) -> str:
    """The address to limit by: the TCP peer, or (behind ``forwarded_for_trusted_hops``
    proxies) the address the outermost trusted proxy saw. IPv6 is grouped by /64."""
    address = request.client.host if request.client else "unknown"
    hops = settings.forwarded_for_trusted_hops
    if hops:
        forwarded = [
            part.strip()
            for value in request.headers.getlist("x-forwarded-for")
            for part in value.split(",")
            if part.strip()
        ]
        # Each trusted proxy appends the address it saw; entries left of those are client-set.
        if len(forwarded) >= hops:
            address = forwarded[-hops]
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/{IPV6_PREFIX_BITS}", strict=False))
    return str(ip)


def _limiter(request: Request) -> SelfReferralLimiter:
    state = request.app.state
    limiter: SelfReferralLimiter | None = getattr(state, "self_referral_limiter", None)
    if limiter is None:
        # Built on first use (no await in between, so one per app); tests may set their own.
        settings: Settings = state.settings
        limiter = SelfReferralLimiter(
            per_address_per_minute=settings.self_referral_per_address_per_minute,
            overall_per_minute=settings.self_referral_overall_per_minute,
            time_source=lambda: state.clock.now().timestamp(),
        )
        state.self_referral_limiter = limiter
    return limiter


async def limit_self_referrals(request: Request) -> None:
    """429 with ``Retry-After`` when this address, or everyone together, is over the limit."""
    settings: Settings = request.app.state.settings
    wait = _limiter(request).acquire(client_address(request, settings))
    if wait > 0:
        raise TooManyRequests(
            "Too many self-referrals were sent just now. Please try again in a minute. "
            "If you are in danger now, call 999.",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )


SelfReferralRateLimit = Depends(limit_self_referrals)
