"""The sandbox's knobs, fixed when the app is built.

One frozen object so a test can see at a glance what kind of upstream it is talking to, and so
that two apps built from equal configs serve byte-identical demo data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = ["SandboxConfig"]


@dataclass(frozen=True, kw_only=True)
class SandboxConfig:
    """How the sandbox behaves.

    Attributes:
        latency_ms: Added to every ``/v1`` request (``asyncio.sleep``), to make fan-out visible.
        rate_limit_per_minute: Requests per key per 60-second window; 0 turns the limit off.
            Cliniko's documented budget is 200 per user per minute.
        fault_rate: Probability (0..1) that a ``/v1`` request answers 503, drawn from a
            ``random.Random(seed)`` so a run is reproducible.
        seed: Seeds the demo data and the fault generator.
        db_path: ``None`` keeps the data in memory; a path keeps it in an SQLite file, seeded
            only when the file holds no data yet.
        anchor: The instant the demo data is laid out around (UTC, timezone-aware). ``None``
            means Monday 00:00 UTC of the current week, so the data is stable within a week.
    """

    latency_ms: float = 0
    rate_limit_per_minute: int = 200
    fault_rate: float = 0.0
    seed: int = 1
    db_path: str | None = None
    anchor: datetime | None = None

    def __post_init__(self) -> None:
        if isinstance(self.latency_ms, bool) or not isinstance(self.latency_ms, int | float):
            raise ValueError(
                f"latency_ms must be a number of milliseconds, got {self.latency_ms!r}."
            )
        if not math.isfinite(self.latency_ms) or self.latency_ms < 0:
            raise ValueError(f"latency_ms must be a finite number >= 0, got {self.latency_ms!r}.")
        if isinstance(self.rate_limit_per_minute, bool) or not isinstance(
            self.rate_limit_per_minute, int
        ):
            raise ValueError(
                f"rate_limit_per_minute must be an integer, got {self.rate_limit_per_minute!r}."
            )
        if self.rate_limit_per_minute < 0:
            raise ValueError(
                "rate_limit_per_minute must be >= 0 (0 turns the limit off), "
                f"got {self.rate_limit_per_minute!r}."
            )
        if isinstance(self.fault_rate, bool) or not isinstance(self.fault_rate, int | float):
            raise ValueError(f"fault_rate must be a probability, got {self.fault_rate!r}.")
        if not 0.0 <= self.fault_rate <= 1.0:
            raise ValueError(f"fault_rate must be between 0.0 and 1.0, got {self.fault_rate!r}.")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer, got {self.seed!r}.")
        if self.db_path is not None and (not isinstance(self.db_path, str) or not self.db_path):
            raise ValueError(f"db_path must be a non-empty path or None, got {self.db_path!r}.")
        if self.anchor is not None:
            if not isinstance(self.anchor, datetime):
                raise ValueError(f"anchor must be a datetime or None, got {self.anchor!r}.")
            if self.anchor.tzinfo is None or self.anchor.utcoffset() is None:
                raise ValueError(f"anchor must be timezone-aware (UTC), got {self.anchor!r}.")

    def resolved_anchor(self, now: datetime | None = None) -> datetime:
        """The anchor as a UTC datetime with whole seconds."""
        if self.anchor is not None:
            return self.anchor.astimezone(UTC).replace(microsecond=0)
        current = (now or datetime.now(UTC)).astimezone(UTC)
        monday = current - timedelta(days=current.weekday())
        return monday.replace(hour=0, minute=0, second=0, microsecond=0)
