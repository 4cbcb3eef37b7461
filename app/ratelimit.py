"""Rate limits for the public self-referral form: per client address and overall, shared by
every worker process and replica.

The counts live in the database (``rate_limit_windows``): one row per bucket per fixed
one-minute window, bumped by one atomic ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` per
bucket (PostgreSQL and SQLite alike), so ``frontdoor serve --workers N`` and several replicas
enforce the configured limits together rather than N times over. Each check runs in a short
transaction of its own (a session of its own from the factory), never in the request's: a
refused or failed request cannot roll its count back, and a slow request holds no counter lock.

Fairness: an address over its own limit is refused *before* it counts against the overall
limit, so one sender can use at most its per-address allowance of everyone's budget, and a
flood from one address cannot lock the form for others.

Client addresses are personal data: the table holds an HMAC of the address (keyed by the
service's signing secret), never the address. Rows of past windows are deleted when a new window
begins. Time comes from an injected function (the app clock), so tests move time, never sleep.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
from collections.abc import Callable

from fastapi import Depends, Request
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import insert_on_conflict
from app.errors import TooManyRequests
from app.models import RateLimitWindow

WINDOW_SECONDS = 60
# IPv6 clients usually hold a whole /64, so one bucket covers the prefix, not each address.
IPV6_PREFIX_BITS = 64
OVERALL_BUCKET = "overall"
ADDRESS_BUCKET_PREFIX = "addr:"


async def _count(session: AsyncSession, bucket: str, window_start: int) -> int:
    """Add one to ``bucket``'s count in the window and return the new count (one statement)."""
    table = RateLimitWindow.__table__
    statement = (
        insert_on_conflict(session, table)
        .values(bucket=bucket, window_start=window_start, count=1)
        .on_conflict_do_update(
            index_elements=[table.c.bucket, table.c.window_start],
            set_={"count": table.c.count + 1},
        )
        .returning(table.c.count)
    )
    return int((await session.execute(statement)).scalar_one())


class SelfReferralLimiter:
    """Per-address and overall limits over fixed one-minute windows, counted in the database."""

    def __init__(
        self,
        *,
        per_address_per_minute: int,
        overall_per_minute: int,
        time_source: Callable[[], float],
    ) -> None:
        self._per_address = per_address_per_minute
        self._overall = overall_per_minute
        self._time = time_source
        # The latest time seen: a clock stepping back must not reopen an old, deleted window.
        self._latest = float("-inf")

    async def acquire(
        self, session_factory: async_sessionmaker[AsyncSession], address_bucket: str
    ) -> float:
        """Count one request from ``address_bucket`` (see ``address_bucket``) and return 0, or
        the seconds until the window ends when it is over either limit."""
        now = self._latest = max(self._time(), self._latest)
        window_start = int(now // WINDOW_SECONDS) * WINDOW_SECONDS
        wait = max(1.0, window_start + WINDOW_SECONDS - now)
        async with session_factory() as session:
            if await _count(session, address_bucket, window_start) > self._per_address:
                await session.commit()
                return wait  # refused before it touches everyone's allowance
            overall = await _count(session, OVERALL_BUCKET, window_start)
            if overall == 1:
                # The first request of a window clears the windows before it.
                await session.execute(
                    delete(RateLimitWindow).where(RateLimitWindow.window_start < window_start)
                )
            await session.commit()
        return wait if overall > self._overall else 0.0


def address_bucket(address: str, settings: Settings) -> str:
    """The bucket name for a client address: an HMAC of it, never the address itself."""
    key = hmac.new(
        settings.signing_secret.get_secret_value().encode(),
        b"frontdoor rate-limit address",
        hashlib.sha256,
    ).digest()
    digest = hmac.new(key, address.encode(), hashlib.sha256).hexdigest()
    return ADDRESS_BUCKET_PREFIX + digest[:48]


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
    bucket = address_bucket(client_address(request, settings), settings)
    wait = await _limiter(request).acquire(request.app.state.session_factory, bucket)
    if wait > 0:
        raise TooManyRequests(
            "Too many self-referrals were sent just now. Please try again in a minute. "
            "If you are in danger now, call 999.",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )


SelfReferralRateLimit = Depends(limit_self_referrals)
