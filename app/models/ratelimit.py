"""Shared rate-limit counters: one row per bucket per fixed window (``app/ratelimit.py``)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class RateLimitWindow(Base):
    """How many requests a bucket (a hashed client address, or everyone) made in the window
    starting at ``window_start`` (seconds since the epoch). Shared by every worker process and
    replica; rows of past windows are deleted as new windows begin."""

    __tablename__ = "rate_limit_windows"

    # "overall", or "addr:" + HMAC-SHA256 of the client address (never the address itself).
    bucket: Mapped[str] = mapped_column(String(80), primary_key=True)
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(Integer)
