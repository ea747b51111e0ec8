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
        accounts.update_organization(partner, org, {"status": "suspended", "tier": "trial",
                                                    "name": "Renamed"})
    assert refused.value.code == "UnprocessableEntity"
    db.session.expire_all()
    assert (org.status, org.tier, org.name) == ("active", "paid", "Paid Co")
    changes = db.session.execute(select(func.count()).select_from(OrganizationStatusChange)
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
