"""Ingestion: validation, exactly-once storage, rollups kept in step."""

from datetime import date, datetime

from app import ingest, metrics
from app.periods import Period


def test_batch_stores_valid_events_and_counts_duplicates(make_partner, make_org, add_events,
                                                         freeze):
    freeze(datetime(2025, 10, 20, 12))
    partner = make_partner()
    org = make_org(partner, "Alpha", external_id="a-1")
    events = [
        {"eventId": "e1", "organizationId": org.id, "type": "identification",
         "quantity": 3, "occurredAt": "2025-10-01T10:00:00Z"},
        {"eventId": "e2", "externalId": "a-1", "type": "page_view",
         "occurredAt": "2025-10-01T11:00:00"},
        {"eventId": "e1", "organizationId": org.id, "type": "identification",
         "quantity": 3, "occurredAt": "2025-10-01T10:00:00Z"},
        {"eventId": "bad", "organizationId": org.id, "type": "Page-View",
         "occurredAt": "2025-10-01T10:00:00Z"},
    ]
    result = add_events(partner, events)
    assert (result.accepted, result.duplicates) == (2, 1)
    assert [(r.index, r.event_id, r.code) for r in result.rejected] == [(3, "bad",
                                                                         "invalid_type")]
    again = add_events(partner, events[:2])
    assert (again.accepted, again.duplicates) == (0, 2)
    figures = metrics.usage(partner, Period(date(2025, 10, 1), date(2025, 10, 1)))
    # e1 (3 identifications) + e2 (page_view, quantity defaults to 1)
    assert figures == {"totalQuantity": 4, "totalEvents": 2,
                       "byType": {"identification": {"quantity": 3, "events": 1},
                                  "page_view": {"quantity": 1, "events": 1}}}
    assert ingest.verify_rollups(partner.id) == []
