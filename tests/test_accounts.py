"""accounts: partial updates are all-or-nothing."""

import pytest
from sqlalchemy import func, select

from app import accounts
from app.errors import AppError
from app.extensions import db
from app.models import OrganizationStatusChange


def test_refused_tier_change_leaves_status_and_name_unchanged(make_partner, make_org):
    partner = make_partner(pool=10_000)
    org = make_org(partner, "Paid Co", tier="paid", initial_credits=800)
    # trial caps allocations at 500; this org holds 800, so tier=trial must be refused,
    # and the status and name changes sent with it must not happen either.
    with pytest.raises(AppError) as refused:
        accounts.update_organization(
            partner, org, {"status": "suspended", "tier": "trial", "name": "Renamed"}
        )
    assert refused.value.code == "UnprocessableEntity"
    db.session.expire_all()
    assert (org.status, org.tier, org.name) == ("active", "paid", "Paid Co")
    changes = db.session.execute(
        select(func.count())
        .select_from(OrganizationStatusChange)
        .where(OrganizationStatusChange.organization_id == org.id)
    ).scalar()
    assert changes == 1  # only the initial "active"


def test_cancel_and_trial_in_one_update_is_accepted(make_partner, make_org):
    partner = make_partner(pool=10_000)
    org = make_org(partner, "Paid Co", tier="paid", initial_credits=800)
    # canceling releases the 800 credits first, so the trial cap is then respected
    accounts.update_organization(partner, org, {"status": "canceled", "tier": "trial"})
    db.session.expire_all()
    assert (org.status, org.tier, org.credits_allocated) == ("canceled", "trial", 0)


def test_reactivation_respects_max_organizations(make_partner, make_org):
    partner = make_partner(pool=10_000, max_organizations=1)
    first = make_org(partner, "First")
    accounts.set_status(partner, first, "canceled")
    make_org(partner, "Second")  # the canceled one freed its place
    # Bringing the first back would make two live organizations against a limit of 1.
    with pytest.raises(AppError) as refused:
        accounts.set_status(partner, first, "active")
    assert refused.value.code == "UnprocessableEntity"
    assert refused.value.details["maxOrganizations"] == 1
    db.session.expire_all()
    assert first.status == "canceled"


def test_status_change_cannot_predate_creation(make_partner, make_org):
    from datetime import datetime

    partner = make_partner()
    org = make_org(partner, "New", created_at=datetime(2025, 6, 1, 12))
    with pytest.raises(AppError) as refused:
        accounts.set_status(partner, org, "canceled", at=datetime(2025, 5, 1))
    assert refused.value.details["field"] == "changedAt"
    db.session.expire_all()
    assert org.status == "active"
