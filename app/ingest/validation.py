"""Event validation (spec §1): the rules every event meets before it is stored, and the
fast path that accepts well-formed events with fewer checks (same verdicts, same rows)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select

from ..extensions import db
from ..models import Organization
from ..periods import TIMESTAMP_START_RE, local_date_function, zone

MAX_BATCH = 1000
MAX_QUANTITY = 1_000_000_000
MAX_EVENT_ID_LENGTH = 255
# Patterns are applied with fullmatch: "$" would also match before a final newline.
# {0,63} keeps a type within usage_event.type (String(64)).
TYPE_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
# A quantity written as text: ASCII digits only (no sign, no spaces, no other numerals).
QUANTITY_TEXT_RE = re.compile(r"[0-9]{1,10}")
EARLIEST_EVENT = datetime(2000, 1, 1)
# Senders' clocks drift; an event up to this far ahead of ours is accepted.
FUTURE_TOLERANCE = timedelta(hours=1)


@dataclass
class Rejection:
    """Why one event was not stored: its position (API index or file line) and reason."""

    index: int
    event_id: str | None
    code: str
    message: str
    field: str | None = None

    def as_json(self) -> dict[str, Any]:
        """Return the rejection as the API answers it."""
        out: dict[str, Any] = {
            "index": self.index,
            "eventId": self.event_id,
            "code": self.code,
            "message": self.message,
        }
        if self.field:
            out["field"] = self.field
        return out


@dataclass
class IngestResult:
    """Counts of one ingestion: stored, repeated and rejected events."""

    accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    # Rejections counted; equals len(rejected) unless a stream handed them out as it went.
    rejected_count: int = 0


class OrgResolver:
    """Look up a partner's organizations by id or externalId, loading them once."""

    def __init__(self, partner_id: str) -> None:
        rows = db.session.execute(
            select(Organization.id, Organization.external_id).where(
                Organization.partner_id == partner_id
            )
        ).all()
        self.ids = {row.id for row in rows}
        self.by_external = {row.external_id: row.id for row in rows if row.external_id}

    def resolve(self, organization_id: Any, external_id: Any) -> tuple[str | None, Rejection]:
        """Return (organization id, None) or (None, a rejection with index 0 to fill in)."""
        if organization_id in (None, "") and external_id in (None, ""):
            return None, Rejection(
                0,
                None,
                "missing_organization",
                "organizationId or externalId is required",
                "organizationId",
            )
        found: str | None = None
        if organization_id not in (None, ""):
            if not isinstance(organization_id, str) or organization_id not in self.ids:
                return None, Rejection(
                    0,
                    None,
                    "unknown_organization",
                    f"no organization with id {str(organization_id)[:100]!r}",
                    "organizationId",
                )
            found = organization_id
        if external_id not in (None, ""):
            by_ext = self.by_external.get(external_id) if isinstance(external_id, str) else None
            if by_ext is None:
                return None, Rejection(
                    0,
                    None,
                    "unknown_organization",
                    f"no organization with externalId {str(external_id)[:100]!r}",
                    "externalId",
                )
            if found is not None and found != by_ext:
                return None, Rejection(
                    0,
                    None,
                    "organization_mismatch",
                    "organizationId and externalId name different organizations",
                    "externalId",
                )
            found = by_ext
        return found, _NO_REJECTION


_NO_REJECTION = Rejection(0, None, "", "")


class FastPath:
    """Accept a well-formed event with a handful of cheap checks, or answer None.

    None means "not sure": the caller then runs validate_event, which gives the verdict
    and the exact rejection. Every event accepted here is one validate_event accepts,
    with the same stored row; the checks are the same rules, reordered and memoized
    (known types and quantity texts, the UTC offset per hour).
    """

    def __init__(self, resolver: OrgResolver, tz: str, now: datetime) -> None:
        self.ids = resolver.ids
        self.by_external = resolver.by_external
        self.types: set[str] = set()
        self.quantities: dict[str | int, int] = {}
        self.upper = now + FUTURE_TOLERANCE
        self.local_date = local_date_function(tz)

    def row(self, raw: dict[str, Any]) -> dict[str, Any] | None:
        """Return the row to store for raw, or None to ask validate_event."""
        event_id = raw.get("eventId")
        if (
            type(event_id) is not str
            or not event_id
            or len(event_id) > MAX_EVENT_ID_LENGTH
            or event_id.isspace()
            or not event_id.isascii()
            or "\x00" in event_id
        ):
            return None
        org_id = raw.get("organizationId")
        external_id = raw.get("externalId")
        if org_id is None or org_id == "":
            if type(external_id) is not str or external_id == "":
                return None
            org_id = self.by_external.get(external_id)
            if org_id is None:
                return None
        elif type(org_id) is not str or org_id not in self.ids:
            return None
        elif (
            external_id is not None
            and external_id != ""
            and (type(external_id) is not str or self.by_external.get(external_id) != org_id)
        ):
            return None
        etype = raw.get("type")
        if type(etype) is not str:
            return None
        if etype not in self.types:
            if not TYPE_RE.fullmatch(etype):
                return None
            self.types.add(etype)
        quantity = raw.get("quantity", 1)
        # Memoized per value of parse_quantity's rule; type() is exact, so True (equal
        # to 1 as a key) and int subclasses always go through the rule.
        memo = type(quantity) is str or type(quantity) is int
        known = self.quantities.get(quantity) if memo else None
        if known is None:
            try:
                known = parse_quantity(quantity)
            except QuantityError:
                return None
            if memo and len(self.quantities) < 10_000:
                self.quantities[quantity] = known
        quantity = known
        stamp = raw.get("occurredAt")
        if type(stamp) is not str or not TIMESTAMP_START_RE.match(stamp) or stamp[-1].isspace():
            return None
        try:
            if stamp[-1] == "Z":
                # The common case: UTC written with Z, parsed straight to naive UTC.
                occurred = datetime.fromisoformat(stamp[:-1])
                if occurred.tzinfo is not None:  # "...+01:00Z" is for validate_event
                    return None
            else:
                occurred = datetime.fromisoformat(stamp)
                if occurred.tzinfo is not None:
                    occurred = occurred.astimezone(UTC).replace(tzinfo=None)
        except (ValueError, OverflowError):
            return None
        if occurred < EARLIEST_EVENT or occurred > self.upper:
            return None
        return event_row(org_id, event_id, etype, quantity, occurred, self.local_date(occurred))


def event_row(
    org_id: str, event_id: str, etype: str, quantity: int, occurred: datetime, local_date: date
) -> dict[str, Any]:
    """Return a valid event as storage takes it (naive UTC occurred_at, its local day)."""
    return {
        "organization_id": org_id,
        "event_id": event_id,
        "type": etype,
        "quantity": quantity,
        "occurred_at": occurred,
        "local_date": local_date,
    }


def storable_text(value: str) -> bool:
    """Tell whether both databases can store value (no NUL, no lone surrogate)."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class QuantityError(ValueError):
    """A quantity that is not a whole number from 0 to MAX_QUANTITY."""


def parse_quantity(value: Any) -> int:
    """Return an event's quantity (absent or null means 1); raise QuantityError.

    The one quantity rule of the API, the file import and the fast path: a JSON integer
    from 0 to MAX_QUANTITY (not a boolean, not a float), or text (a CSV cell) of one to
    ten ASCII digits in the same range: no sign, no spaces, no other scripts' digits.
    """
    if value is None:
        return 1
    if isinstance(value, str):
        if not QUANTITY_TEXT_RE.fullmatch(value):
            if value.isascii() and value.isdigit():
                raise QuantityError(f"quantity must be at most {MAX_QUANTITY:,}")
            if value[:1] == "-" and value[1:].isascii() and value[1:].isdigit():
                raise QuantityError("quantity must not be negative")
            raise QuantityError(
                "quantity must be a whole number written with the digits 0-9 "
                "only (no sign, spaces or other numerals)"
            )
        number = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raise QuantityError("quantity must be a whole number")
    if number < 0:
        raise QuantityError("quantity must not be negative")
    if number > MAX_QUANTITY:
        raise QuantityError(f"quantity must be at most {MAX_QUANTITY:,}")
    return number


def _reject(code: str, message: str, fld: str) -> Rejection:
    return Rejection(0, None, code, message, fld)


def parse_occurred_at(value: Any) -> datetime:
    """Parse an ISO 8601 timestamp to naive UTC (no offset means UTC); raise ValueError."""
    if not isinstance(value, str) or not TIMESTAMP_START_RE.match(value.strip()):
        raise ValueError("occurredAt must be an ISO 8601 timestamp such as 2025-10-01T12:00:00Z")
    moment = datetime.fromisoformat(value.strip())
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def validate_event(
    raw: Any, resolver: OrgResolver, tz: str, now: datetime
) -> tuple[dict[str, Any] | None, Rejection | None]:
    """Check one event against spec §1; return the row to store or the rejection."""
    if not isinstance(raw, dict):
        return None, _reject("invalid_event", "each event must be a JSON object", "event")
    event_id = raw.get("eventId")
    if isinstance(event_id, int) and not isinstance(event_id, bool):
        event_id = str(event_id)
    if not isinstance(event_id, str) or not event_id.strip():
        return None, _reject(
            "invalid_event_id", "eventId is required (a non-empty string)", "eventId"
        )
    if len(event_id) > MAX_EVENT_ID_LENGTH:
        return None, _reject(
            "invalid_event_id",
            f"eventId is longer than {MAX_EVENT_ID_LENGTH} characters",
            "eventId",
        )
    if not storable_text(event_id):
        # A file read by the CLI can carry these; the databases cannot store them.
        return None, _reject(
            "invalid_event_id", "eventId contains a NUL character or invalid Unicode", "eventId"
        )

    def fail(rej: Rejection) -> tuple[None, Rejection]:
        rej.event_id = event_id
        return None, rej

    org_id, rej = resolver.resolve(raw.get("organizationId"), raw.get("externalId"))
    if org_id is None:
        return fail(rej)

    etype = raw.get("type")
    if not isinstance(etype, str) or not TYPE_RE.fullmatch(etype):
        return fail(
            _reject(
                "invalid_type",
                "type must be [a-z][a-z0-9_]{0,63}, nothing before or after (for example "
                "identification, page_view)",
                "type",
            )
        )

    try:
        quantity = parse_quantity(raw.get("quantity"))
    except QuantityError as exc:
        return fail(_reject("invalid_quantity", str(exc), "quantity"))

    try:
        occurred = parse_occurred_at(raw.get("occurredAt"))
    except (ValueError, OverflowError) as exc:
        message = str(exc) if "occurredAt" in str(exc) else "occurredAt is not a valid timestamp"
        return fail(_reject("invalid_occurred_at", message, "occurredAt"))
    if occurred < EARLIEST_EVENT:
        return fail(_reject("invalid_occurred_at", "occurredAt is before 2000-01-01", "occurredAt"))
    if occurred > now + FUTURE_TOLERANCE:
        return fail(_reject("invalid_occurred_at", "occurredAt is in the future", "occurredAt"))

    local_date = occurred.replace(tzinfo=UTC).astimezone(zone(tz)).date()
    return event_row(org_id, event_id, etype, quantity, occurred, local_date), None


def prepare_batch(
    events: Iterable[tuple[int, Any]],
    resolver: OrgResolver,
    tz: str,
    now: datetime,
    result: IngestResult,
) -> list[dict[str, Any]]:
    """Validate (position, raw event) pairs; return the rows to store.

    Rejections and repeats inside the batch are counted in result. Needs no database, so
    the pipelined file import runs it in its reader process.
    """
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    fast = FastPath(resolver, tz, now).row
    for position, raw in events:
        rejection: Rejection | None = None
        row = fast(raw) if type(raw) is dict else None
        if row is not None:
            pass
        elif isinstance(raw, Rejection):
            rejection = raw
        else:
            row, rejection = validate_event(raw, resolver, tz, now)
        if rejection is not None:
            rejection.index = position
            result.rejected.append(rejection)
            result.rejected_count += 1
            continue
        assert row is not None
        if row["event_id"] in seen:
            result.duplicates += 1
            continue
        seen.add(row["event_id"])
        rows.append(row)
    return rows
