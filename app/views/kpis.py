"""The KPI cards: each summary figure's label and definition, written once for every page."""

from __future__ import annotations

# key: (label, definition over a chosen period, definition over a calendar month).
# The definitions restate spec §2 for the reader of the card.
KPI_TEXTS = {
    "totalOrganizations": (
        "Organizations",
        "created on or before the end date",
        "created by the end of the month",
    ),
    "activeOrganizations": (
        "Active organizations",
        "of those, active at the end of the end date",
        "of those, active at the end of the month",
    ),
    "totalIdentifications": (
        "Identifications",
        "sum of quantity of identification events",
        "sum of quantity of identification events",
    ),
    "creditsUsed": (
        "Credits used",
        "credits consumed by events in the period",
        "credits consumed by events in the month",
    ),
    "creditsRemaining": (
        "Credits remaining",
        "pool of the billing period holding the end date, minus what it used through that date",
        "pool of the billing period holding the month's last day, minus what it used by then",
    ),
    "organizationsWithActivity": (
        "Organizations with activity",
        "organizations with at least one event in the period",
        "organizations with at least one event in the month",
    ),
    "totalQuantity": (
        "Total quantity",
        "sum of quantity of all events",
        "sum of quantity of all events",
    ),
    "totalEvents": ("Events", "number of events in the period", "number of events in the month"),
}

# The overview leads with the organizations, the report with what the month consumed.
OVERVIEW_ORDER = (
    "totalOrganizations",
    "activeOrganizations",
    "totalIdentifications",
    "creditsUsed",
    "creditsRemaining",
    "organizationsWithActivity",
    "totalQuantity",
    "totalEvents",
)
REPORT_ORDER = (
    "totalIdentifications",
    "creditsUsed",
    "creditsRemaining",
    "totalEvents",
    "totalQuantity",
    "organizationsWithActivity",
    "totalOrganizations",
    "activeOrganizations",
)


def cards(order: tuple[str, ...], month: bool = False) -> tuple[tuple[str, str, str], ...]:
    """Return (key, label, definition) per card in order, defined over a month or a period."""
    return tuple((key, KPI_TEXTS[key][0], KPI_TEXTS[key][2 if month else 1]) for key in order)


OVERVIEW_KPIS = cards(OVERVIEW_ORDER)
REPORT_KPIS = cards(REPORT_ORDER, month=True)
