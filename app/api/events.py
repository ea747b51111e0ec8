"""Ingestion: POST /partner/events, through the same app/ingest package as the CLI."""

from __future__ import annotations

from ..ingest import ingest_batch
from . import bp
from .guards import bulk_body, current_partner, ndjson_events
from .schemas import EventsBody, EventsOut
from .spec import doc, validated_json


@bp.post("/partner/events")
@bulk_body
@doc(EventsOut, json=EventsBody, tags=("events",))
def post_events() -> EventsOut:
    """Store a batch of at most 1,000 events (write), each exactly once.

    A repeated eventId is a duplicate and changes nothing, so any call may be retried.
    Invalid events are listed in rejected; the accepted events of a call are committed
    together or not at all, with the call's one entry in the audit log (its counts).

    Two more forms of the body, for bulk loads (this endpoint only):

    - NDJSON, with `Content-Type: application/x-ndjson`: UTF-8 text, one event (a JSON
      object) a line, lines ending with LF (CRLF is fine); blank lines, a final newline
      included, are skipped. At most 1,000 event lines (400 naming `events` above). Each
      event is validated as in the JSON form and the answer is the same, except that
      `index` in `rejected` is the 0-based line index in the body, blank lines counted
      (line `index + 1` in an editor). A line that is not JSON is rejected on its own
      with `invalid_json`, text with a NUL or a lone surrogate with `invalid_text`, an
      event nested deeper than 32 levels with `invalid_event`. A body that is not UTF-8
      or has no event line answers 400 naming `body`.
    - Gzip, with the header `Content-Encoding: gzip`, for either form. The 4 MiB body limit
      (413) applies to the inflated body too: inflating stops there. A body that is not
      gzip answers 400 naming `Content-Encoding`; another encoding (br, deflate) 415
      naming `Content-Encoding`. Other endpoints do not decode a Content-Encoding.
    """
    lines = ndjson_events()
    events = lines if lines is not None else enumerate(validated_json().events)
    result = ingest_batch(current_partner(), events, audited=True)
    return EventsOut.model_validate(result)
