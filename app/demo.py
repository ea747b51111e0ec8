"""The demo partner: ~40 organizations over ~13 months with growth, seasonality and churn."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select

from . import accounts, audit, auth
from .database import partner_transaction
from .extensions import db
from .ingest import OrgResolver, store_rows, validate_event
from .models import ApiKey, Organization, Partner, User
from .periods import add_months
from .timeutil import utcnow

DEMO_SLUG = "demo"
DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "demo-password"  # noqa: S105  (a published demo login, local data only)
DEMO_KEY_NAME = "demo key"

NAMES = [
    "Acme Outdoor",
    "Bluebird Bakery",
    "Cobalt Legal",
    "Driftwood Travel",
    "Evergreen Dental",
    "Foxglove Florists",
    "Granite Fitness",
    "Harbor Realty",
    "Ironclad Security",
    "Juniper Health",
    "Keystone Motors",
    "Lumen Lighting",
    "Maple & Co",
    "Nimbus Software",
    "Orchid Spa",
    "Pioneer Insurance",
    "Quartz Analytics",
    "Redwood Furniture",
    "Summit Climbing",
    "Tidewater Marine",
    "Umber Coffee",
    "Vantage Recruiting",
    "Willow Pediatrics",
    "Xenon Labs",
    "Yellowtail Sushi",
    "Zephyr Cycling",
    "Atlas Logistics",
    "Beacon Schools",
    "Cedar Accounting",
    "Delta Plumbing",
    "Ember Pizza",
    "Falcon Drones",
    "Garnet Jewelry",
    "Helix Biotech",
    "Indigo Apparel",
    "Jasper Pets",
    "Kite Marketing",
    "Lotus Yoga",
    "Meridian Hotels",
    "Nova Solar",
]


@dataclass
class _Plan:
    """One demo client: when it joined, how busy it gets, and its tier."""

    i: int
    name: str
    joined: date
    scale: float
    tier: str
    org: Organization | None = None


@dataclass
class SeedOutcome:
    """What seed_demo did."""

    created: bool
    organizations: int
    events: int
    api_key: str


def seed_demo(today: date | None = None, seed: int = 20251101) -> SeedOutcome:
    """Create the demo partner with its history once; on later runs only rotate its API key."""
    partner = db.session.execute(
        select(Partner).where(Partner.slug == DEMO_SLUG)
    ).scalar_one_or_none()
    created = partner is None
    orgs = events = 0
    # The demo's own setup is not audited: its log starts with what the visitor does.
    with audit.suppressed():
        if partner is None:
            rng = random.Random(seed)  # noqa: S311  (reproducible demo data, not secrets)
            partner, orgs, events = _build(today or utcnow().date(), rng)
        if db.session.execute(select(User).where(User.email == DEMO_EMAIL)).first() is None:
            auth.create_user(partner, DEMO_EMAIL, DEMO_PASSWORD)
        for old in db.session.execute(
            select(ApiKey).where(
                ApiKey.partner_id == partner.id,
                ApiKey.name == DEMO_KEY_NAME,
                ApiKey.revoked_at.is_(None),
            )
        ).scalars():
            auth.revoke_api_key(old)
        _key, plain = auth.create_api_key(partner, DEMO_KEY_NAME, [])
    return SeedOutcome(created, orgs, events, plain)


def _build(today: date, rng: random.Random) -> tuple[Partner, int, int]:
    start = add_months(today, -13)
    partner = accounts.create_partner(
        "Northwind Digital (demo)",
        DEMO_SLUG,
        pool=1,
        billing_day=1,
        timezone="UTC",
    )
    partner.created_at = datetime.combine(start - timedelta(days=10), time(9))
    db.session.commit()
    span = (today - start).days
    plans = []
    for i, name in enumerate(NAMES):
        # Eight founding clients, then steady growth: later clients join later.
        joined = start + timedelta(days=0 if i < 8 else int((i - 8) / 32 * span * 0.9))
        scale = rng.lognormvariate(3.3, 0.7)  # mean daily identifications at maturity
        tier = "trial" if i % 9 == 4 else "paid"
        plans.append(_Plan(i, name, joined, scale, tier))
    # Churned clients leave a while after they joined (never before).
    churn = {
        i: max(plans[i].joined + timedelta(days=60), today - timedelta(days=back))
        for i, back in ((5, 120), (17, 45), (29, 30))
    }
    suspended = {11: today - timedelta(days=20)}
    low_credit = 3  # allocation well below its monthly use

    monthly_total = 0.0
    for plan in plans:
        monthly_total += plan.scale * 31
    partner.credit_pool_total = int(math.ceil(monthly_total * 1.6 / 1000.0) * 1000)
    db.session.commit()

    resolver_orgs = []
    for plan in plans:
        credits = 500 if plan.tier == "trial" else int(plan.scale * 31 * 1.3 / 10) * 10
        if plan.i == low_credit:
            credits = int(plan.scale * 31 * 0.85 / 10) * 10
        org = accounts.create_organization(
            partner,
            plan.name,
            external_id=f"crm-{1000 + plan.i}",
            initial_credits=credits,
            tier=plan.tier,
            product_type="B2C" if plan.i % 4 == 1 else "B2B",
            metadata={"plan": plan.tier, "region": rng.choice(["NA", "EU", "APAC"])},
            created_at=datetime.combine(plan.joined, time(10)),
        )
        plan.org = org
        resolver_orgs.append(org)
    for i, day in churn.items():
        accounts.set_status(partner, _org(plans[i]), "canceled", at=datetime.combine(day, time(15)))
    for i, day in suspended.items():
        accounts.set_status(
            partner, _org(plans[i]), "suspended", at=datetime.combine(day, time(15))
        )

    resolver = OrgResolver(partner.id)
    now = utcnow()
    total_events = 0
    rows: list[dict] = []
    for plan in plans:
        org_id = _org(plan).id
        stop = churn.get(plan.i) or suspended.get(plan.i) or today + timedelta(days=1)
        day = plan.joined
        while day <= today and day < stop:
            age = (day - plan.joined).days
            ramp = min(1.0, 0.25 + age / 120)  # new clients ramp up over ~4 months
            weekly = 0.55 if day.weekday() >= 5 else 1.0
            yearly = 1.0 + 0.25 * math.cos((day.timetuple().tm_yday - 340) / 365 * 2 * math.pi)
            mean = plan.scale * ramp * weekly * yearly
            idents = max(0, int(rng.gauss(mean, mean * 0.2)))
            views = int(idents * rng.uniform(6, 9))
            sessions = int(idents * rng.uniform(1.5, 2.5))
            for etype, qty, parts in (
                ("identification", idents, 3),
                ("page_view", views, 2),
                ("session", sessions, 1),
            ):
                if qty == 0:
                    continue
                chunk = qty // parts
                for part in range(parts):
                    amount = chunk if part < parts - 1 else qty - chunk * (parts - 1)
                    if amount <= 0:
                        continue
                    occurred = datetime.combine(day, time(8 + 4 * part, rng.randrange(60)))
                    if occurred > now:
                        continue
                    raw = {
                        "eventId": f"demo-{plan.i}-{day.isoformat()}-{etype}-{part}",
                        "organizationId": org_id,
                        "type": etype,
                        "quantity": amount,
                        "occurredAt": occurred.replace(tzinfo=UTC).isoformat(),
                    }
                    row, rejection = validate_event(raw, resolver, partner.timezone, now)
                    if row is None:
                        continue
                    # Most events arrive minutes later; a few arrive days late.
                    delay = timedelta(minutes=rng.randrange(1, 30))
                    if rng.random() < 0.01:
                        delay = timedelta(days=rng.randrange(2, 9))
                    row["received_at"] = min(occurred + delay, now)
                    rows.append(row)
            day += timedelta(days=1)
        if len(rows) > 5000:
            total_events += _flush(partner.id, rows, now, partner.timezone)
            rows = []
    total_events += _flush(partner.id, rows, now, partner.timezone)
    return partner, len(plans), total_events


def _org(plan: _Plan) -> Organization:
    assert plan.org is not None
    return plan.org


def _flush(partner_id: str, rows: list[dict], now: datetime, tz: str) -> int:
    if not rows:
        return 0
    with partner_transaction(partner_id):
        return store_rows(partner_id, rows, now, tz)
