"""The clock and UTC conversions; tests freeze the clock with set_frozen_now()."""

from __future__ import annotations

from datetime import UTC, datetime

_frozen: datetime | None = None


def utcnow() -> datetime:
    """Return the current time as a naive UTC datetime (how the database stores time)."""
    if _frozen is not None:
        return _frozen
    return datetime.now(UTC).replace(tzinfo=None)


def set_frozen_now(moment: datetime | None) -> None:
    """Freeze the clock at moment (naive UTC, or aware), or unfreeze it with None."""
    global _frozen
    if moment is not None and moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    _frozen = moment


def to_utc_naive(moment: datetime) -> datetime:
    """Return moment in naive UTC; a naive moment is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def iso_z(moment: datetime | None) -> str | None:
    """Format a naive-UTC moment as ISO 8601 with a Z suffix."""
    if moment is None:
        return None
    return to_utc_naive(moment).isoformat(timespec="seconds") + "Z"
