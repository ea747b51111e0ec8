"""Shared by the dashboard tests: the "acme" data set worked out by hand, login, page readers."""

from __future__ import annotations

import html
import json
import re
from datetime import datetime
from typing import Any

# Thursday 20 Nov 2025, noon UTC: "today" for every dashboard test.
NOW = datetime(2025, 11, 20, 12, 0)
PASSWORD = "correct horse battery"
FORMULA_NAME = "=cmd|' /C calc'!A0"


def ev(event_id: str, org: Any, etype: str, quantity: int, at: str) -> dict[str, Any]:
    return {
        "eventId": event_id,
        "organizationId": org.id,
        "type": etype,
        "quantity": quantity,
        "occurredAt": at,
    }


def build_acme(
    freeze: Any, make_partner: Any, make_org: Any, add_events: Any, make_user: Any
) -> dict[str, Any]:
    """UTC partner, pool 1000, billing day 1, default tiers; three organizations, seven events.

    Bluebird Bakery (paid, 400 credits): identification 10 on Nov 14, 5 on Nov 20,
        page_view 30 on Nov 15.
    Cobalt Legal (trial, 300 credits): identification 7 on Nov 10, 3 on Nov 18, session 2 on
        Nov 18.
    FORMULA_NAME (trial, 10 credits, externalId "@risk"): identification 9 on Nov 3.
    """
    freeze(NOW)
    partner = make_partner("acme", pool=1000, name="Acme Agency", created_at=datetime(2025, 9, 1))
    bluebird = make_org(
        partner,
        "Bluebird Bakery",
        external_id="crm-1",
        initial_credits=400,
        tier="paid",
        created_at=datetime(2025, 9, 1),
    )
    cobalt = make_org(
        partner,
        "Cobalt Legal",
        external_id="crm-2",
        initial_credits=300,
        created_at=datetime(2025, 9, 1),
    )
    formula = make_org(
        partner,
        FORMULA_NAME,
        external_id="@risk",
        initial_credits=10,
        created_at=datetime(2025, 10, 1),
    )
    result = add_events(
        partner,
        [
            ev("b1", bluebird, "identification", 10, "2025-11-14T10:00:00Z"),
            ev("b2", bluebird, "identification", 5, "2025-11-20T09:00:00Z"),
            ev("b3", bluebird, "page_view", 30, "2025-11-15T10:00:00Z"),
            ev("c1", cobalt, "identification", 7, "2025-11-10T10:00:00Z"),
            ev("c2", cobalt, "identification", 3, "2025-11-18T10:00:00Z"),
            ev("c3", cobalt, "session", 2, "2025-11-18T11:00:00Z"),
            ev("f1", formula, "identification", 9, "2025-11-03T10:00:00Z"),
        ],
    )
    assert result.rejected == []
    user = make_user(partner, "ops@acme.test", PASSWORD)
    return {
        "partner": partner,
        "bluebird": bluebird,
        "cobalt": cobalt,
        "formula": formula,
        "user": user,
    }


def csrf_token(page: str) -> str:
    """Return the CSRF token of the first form on a page."""
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert found, "no CSRF token on the page"
    return found.group(1)


def login(
    client: Any, email: str = "ops@acme.test", password: str = PASSWORD, next_url: str = ""
) -> Any:
    """Sign in through the form, as a browser does."""
    token = csrf_token(client.get("/login").get_data(as_text=True))
    return client.post(
        "/login", data={"email": email, "password": password, "csrf_token": token, "next": next_url}
    )


def kpis(page: str) -> dict[str, int]:
    """Return {metric: value} of the KPI cards (data-value is the exact number shown)."""
    return {m: int(v) for m, v in re.findall(r'data-metric="(\w+)" data-value="(-?\d+)"', page)}


def kpi_changes(page: str) -> dict[str, float | None]:
    """Return {metric: change} of the KPI cards (None where the previous value was 0)."""
    out: dict[str, float | None] = {}
    for metric, change in re.findall(
        r'data-metric="(\w+)" data-value="-?\d+"\s+data-previous="-?\d+" '
        r'data-change="([^"]*)"',
        page,
    ):
        out[metric] = float(change) if change else None
    return out


def shown_kpi(page: str, metric: str) -> str:
    """Return the text of a KPI card's big number."""
    found = re.search(
        rf'data-metric="{metric}"[^>]*>.*?<p class="kpi__value">([^<]*)</p>', page, re.S
    )
    assert found, metric
    return found.group(1).strip()


def field_error(page: str, name: str) -> str | None:
    """Return the message shown beside a form field, or None."""
    found = re.search(rf'data-error-for="{name}">([^<]*)<', page)
    return html.unescape(found.group(1)) if found else None


def figures(page: str) -> dict[str, dict[str, Any]]:
    """Return the Plotly figures a page embeds, by chart name."""
    return {
        name: json.loads(body)
        for name, body in re.findall(
            r'<script type="application/json" class="js-figure" data-target="chart-([\w-]+)">'
            r"(.*?)</script>",
            page,
            re.S,
        )
    }


def cells(page: str, field: str) -> list[str]:
    """Return the texts of the table cells marked data-field=field, in order."""
    return [html.unescape(t).strip() for t in re.findall(rf'data-field="{field}">([^<]*)<', page)]


def number(text: str) -> int:
    """Turn '1,234' (or '−5') back into an int."""
    return int(text.replace(",", "").replace("−", "-").split()[0])
