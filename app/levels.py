"""One colour rule for how much of an allocation is used: warn from 80 %, over from 100 %."""

from __future__ import annotations

from typing import Literal

# From this share (%) of its allocation an organization is amber, from the whole of it red.
WARN_AT = 80
OVER_AT = 100

Level = Literal["ok", "warn", "over"]


def usage_percent(used: int, allocated: int) -> float | None:
    """Return used as a percent of allocated, rounded to 0.1 as pages show it; None when
    there is no allocation to measure against."""
    if allocated <= 0:
        return None
    return round(used * 100 / allocated, 1)


def usage_level(percent: float | None) -> Level:
    """Return the level of a usage percent as shown (0.1 steps): ok below WARN_AT, warn
    from WARN_AT, over from OVER_AT; ok when there is no percent."""
    if percent is None or percent < WARN_AT:
        return "ok"
    return "warn" if percent < OVER_AT else "over"


def allocation_level(used: int, allocated: int) -> Level:
    """Return the level of an organization's use of its allocation: with no allocation,
    over as soon as anything is used."""
    if allocated <= 0:
        return "over" if used > 0 else "ok"
    return usage_level(usage_percent(used, allocated))
