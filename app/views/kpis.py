"""The KPI cards: each summary figure's label and definition, written once for every page."""

from __future__ import annotations

from dataclasses import dataclass

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

# One order for every page that shows these figures (issue 14, item 7): a headline row —
# identifications (which are the credits used: one card says both), credits remaining,
# the cost of the billing period so far, active organizations — then the rest. A page
# shows the cards of the figures it has, in this order.
ORDER = (
    "total_identifications",
    "credits_remaining",
    "estimated_cost",
    "active_organizations",
    "total_organizations",
    "organizations_with_activity",
    "total_quantity",
    "total_events",
)
HEADLINE = frozenset(ORDER[:4])
# Figures whose rise is neither good nor bad news: their change is drawn in a neutral
# colour (credits remaining fall as the period passes; cost follows usage).
NEUTRAL = frozenset({"credits_used", "credits_remaining", "estimated_cost"})
# A figure equal to another by definition, shown inside that figure's card.
ALSO = {"total_identifications": "credits_used"}
ALSO_TEXT = {"credits_used": "credits used (one per identification)"}
COST_TEXTS = (
    "Cost this billing period",
    "estimated from the pricing tiers, for the billing period so far",
    "estimated from the pricing tiers, for the month (the billing period)",
)


@dataclass(frozen=True)
class Card:
    """One KPI card: a summary figure (or the cost), how it is named, and how it is drawn."""

    field: str
    key: str  # the figure's API name (camelCase), which the page shows as data-metric
    label: str
    help: str
    headline: bool
    neutral: bool
    also: str | None = None
    also_key: str | None = None
    also_text: str | None = None


def cards(fields: tuple[str, ...] = ORDER, month: bool = False) -> tuple[Card, ...]:
    """Return the cards of the given figures in ORDER, worded for a month or a period."""
    out = []
    for name in ORDER:
        if name not in fields:
            continue
        label, over_period, over_month = COST_TEXTS if name == "estimated_cost" else KPI_TEXTS[name]
        also = ALSO.get(name)
        out.append(
            Card(
                field=name,
                key=to_camel(name),
                label=label,
                help=over_month if month else over_period,
                headline=name in HEADLINE,
                neutral=name in NEUTRAL,
                also=also,
                also_key=to_camel(also) if also else None,
                also_text=ALSO_TEXT[also] if also else None,
            )
        )
    return tuple(out)


OVERVIEW_KPIS = cards()
REPORT_KPIS = cards(month=True)
ORGANIZATION_KPIS = cards(("total_identifications", "total_quantity", "total_events"))
