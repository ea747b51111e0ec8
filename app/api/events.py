"""Ingestion: POST /partner/events, through the same app/ingest package as the CLI."""

from __future__ import annotations

from ..ingest import ingest_batch
from . import bp
from .guards import current_partner
from .schemas import EventsBody, EventsOut
from .spec import doc, validated_json


@bp.post("/partner/events")
@doc(EventsOut, json=EventsBody, tags=("events",))
def post_events() -> EventsOut:
    """Store a batch of at most 1,000 events (write), each exactly once.

    A repeated eventId is a duplicate and changes nothing, so any call may be retried.
    Invalid events are listed in rejected; the accepted events of a call are committed
    together or not at all, with the call's one entry in the audit log (its counts).
    """
    result = ingest_batch(current_partner(), enumerate(validated_json().events), audited=True)
    return EventsOut.model_validate(result)
