"""The KPI cards: each summary figure's label and definition, written once for every page."""

from __future__ import annotations

from pydantic.alias_generators import to_camel

# field of metrics.Summary: (label, definition over a chosen period, over a calendar month).
# The definitions restate spec §2 for the reader of the card.
KPI_TEXTS = {
    "total_organizations": (
        "Organizations",
        "created on or before the end date",
        "created by the end of the month",
    ),
    "active_organizations": (
        "Active organizations",
        "of those, active at the end of the end date",
        "of those, active at the end of the month",
    ),
    "total_identifications": (
        "Identifications",
        "sum of quantity of identification events",
        "sum of quantity of identification events",
    ),
    "credits_used": (
        "Credits used",
        "credits consumed by events in the period",
        "credits consumed by events in the month",
    ),
    "credits_remaining": (
        "Credits remaining",
        "pool of the billing period holding the end date, minus what it used through that date",
        "pool of the billing period holding the month's last day, minus what it used by then",
    ),
    "organizations_with_activity": (
        "Organizations with activity",
        "organizations with at least one event in the period",
        "organizations with at least one event in the month",
    ),
    "total_quantity": (
        "Total quantity",
        "sum of quantity of all events",
        "sum of quantity of all events",
    ),
    "total_events": ("Events", "number of events in the period", "number of events in the month"),
}

# The overview leads with the organizations, the report with what the month consumed.
OVERVIEW_ORDER = (
    "total_organizations",
    "active_organizations",
    "total_identifications",
    "credits_used",
    "credits_remaining",
    "organizations_with_activity",
    "total_quantity",
    "total_events",
)
REPORT_ORDER = (
    "total_identifications",
    "credits_used",
    "credits_remaining",
    "total_events",
    "total_quantity",
    "organizations_with_activity",
    "total_organizations",
    "active_organizations",
)


def cards(order: tuple[str, ...], month: bool = False) -> tuple[tuple[str, str, str, str], ...]:
    """Return (field, key, label, definition) per card in order, over a month or a period.

    The key is the figure's API name (camelCase), which the page shows as data-metric.
    """
    return tuple(
        (name, to_camel(name), KPI_TEXTS[name][0], KPI_TEXTS[name][2 if month else 1])
        for name in order
    )


OVERVIEW_KPIS = cards(OVERVIEW_ORDER)
REPORT_KPIS = cards(REPORT_ORDER, month=True)
